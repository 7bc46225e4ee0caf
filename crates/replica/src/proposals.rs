//! Proposals in flight, from the moment the leader appends them until their fate is known.
//!
//! A proposal is an entry this node appended as leader, at (index, term). Its fate:
//!
//! ```text
//!                 applied at its index with its term ──> Applied(output)
//!   Pending ──┤   applied at its index with another term ──> NotApplied (another leader's entry won)
//!                 this node stops leading that term, or installs a snapshot past it, or stops
//!                                          ──> Unknown (it may still commit: retry, idempotently)
//! ```
//!
//! Every proposal gets exactly one outcome, and gets it without waiting on anything that may never happen: a
//! deposed leader cannot know whether its entry will commit, so it says so at once rather than leave the caller
//! waiting for a commit that may never come.
use std::collections::BTreeMap;

use keel_raft::{Index, Term};

/// An entry this node proposed: where it sits in the log if it commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Proposal {
    pub index: Index,
    pub term: Term,
}

/// How a proposal ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<O> {
    /// It committed and was applied; this is what the service returned for it.
    Applied(O),
    /// Another entry committed at its index: it will never apply.
    NotApplied,
    /// This node can no longer tell: the entry may still commit through another leader. Retry the request with the
    /// same identity, so the service applies it at most once.
    Unknown(UnknownReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownReason {
    /// This node stopped leading the proposal's term.
    LeadershipLost,
    /// A snapshot from another leader replaced the log through the proposal's index.
    SnapshotInstalled,
    /// The replica stopped (shutdown or a fatal error).
    Stopped,
}

/// Proposals awaiting their outcome, by index.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    by_index: BTreeMap<Index, Term>,
}

impl Pending {
    pub fn insert(&mut self, proposal: Proposal) {
        let replaced = self.by_index.insert(proposal.index, proposal.term);
        // A leader appends each index once in its term; an older term's proposal at this index was resolved when
        // that leadership ended.
        assert!(replaced.is_none(), "proposal {proposal:?} replaces a pending one at its index");
    }

    /// The entry at `index` was applied with `term`: the outcome of the proposal there, if there is one.
    pub fn applied<O>(&mut self, index: Index, term: Term, output: O) -> Option<(Proposal, Outcome<O>)> {
        let proposed_term = self.by_index.remove(&index)?;
        let proposal = Proposal { index, term: proposed_term };
        Some(if proposed_term == term { (proposal, Outcome::Applied(output)) } else { (proposal, Outcome::NotApplied) })
    }

    /// Every pending proposal at or below `index` gets `Unknown(reason)`.
    pub fn unknown_through<O>(&mut self, index: Index, reason: UnknownReason) -> Vec<(Proposal, Outcome<O>)> {
        let rest = self.by_index.split_off(&index.saturating_add(1));
        let through = std::mem::replace(&mut self.by_index, rest);
        through.into_iter().map(|(index, term)| (Proposal { index, term }, Outcome::Unknown(reason))).collect()
    }

    /// Every pending proposal not of `term` (a leadership that ended) gets `Unknown(LeadershipLost)`; with
    /// `term == None` (not leading at all), every one does.
    pub fn lost_leadership<O>(&mut self, leading: Option<Term>) -> Vec<(Proposal, Outcome<O>)> {
        let mut lost = Vec::new();
        self.by_index.retain(|&index, &mut term| {
            let keep = leading == Some(term);
            if !keep {
                lost.push((Proposal { index, term }, Outcome::Unknown(UnknownReason::LeadershipLost)));
            }
            keep
        });
        lost
    }
}
