//! The simulated network: which links are up, and the fault model of 6.824's labrpc plus the harsher faults a
//! real transport brings (duplicates, requests reordered too, one-way links, bursts of loss).
use keel_raft::Rng;

/// Delay every message takes on a healthy link: a LAN round trip.
pub const BASE_LATENCY_MS: (u64, u64) = (1, 4);
/// Unreliable links add 0-26 ms (labrpc's `rand % 27`).
pub const UNRELIABLE_EXTRA_DELAY_MS: u64 = 27;
/// Unreliable links drop 10% of requests and 10% of replies.
pub const UNRELIABLE_DROP_PER_MILLE: u64 = 100;
/// Long reordering delays two thirds of replies by 200 + rand(0 .. 1 + rand(0 .. 2000)) ms, skewed short.
pub const LONG_REORDER_NUMERATOR: u64 = 600;
pub const LONG_REORDER_DENOMINATOR: u64 = 900;
pub const LONG_REORDER_BASE_MS: u64 = 200;
pub const LONG_REORDER_SPREAD_MS: u64 = 2000;
/// During a burst of loss, this share of messages is dropped: enough to break every round trip for a while
/// (heartbeats, votes, acknowledgements) without cutting the link outright.
pub const LOSS_BURST_DROP_PER_MILLE: u64 = 800;

/// Faults beyond labrpc's, each off by default (the 6.824 catalogue runs without them) and switched on per seed
/// by the sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HarshFaults {
    /// A message is delivered twice (a reconnecting transport resends what it is not sure arrived), the copy
    /// after its own independent delay. Per mille of messages.
    pub duplicate_per_mille: u64,
    /// Long reordering delays requests as well as replies, so an old AppendEntries or RequestVote can arrive
    /// hundreds of milliseconds after newer ones.
    pub reorder_requests: bool,
    /// labrpc's rule: a message that passed the link check when it was sent is delivered even if the link goes
    /// down before it arrives (the handler of a request that got through still runs; a late reply still reaches
    /// a node that has since been disconnected). Without it, a message is also dropped if its link is down at
    /// delivery.
    pub deliver_in_flight: bool,
}

pub struct Network {
    /// A disconnected node can neither send nor receive.
    connected: Vec<bool>,
    /// Nodes talk only within their partition group.
    group: Vec<u32>,
    /// `cut[from][to]`: the one-way link from `from` to `to` is down (asymmetric faults: A hears B, B not A).
    cut: Vec<Vec<bool>>,
    pub reliable: bool,
    pub long_reordering: bool,
    pub harsh: HarshFaults,
    /// Until this virtual time, most messages are lost.
    pub loss_burst_until_ms: u64,
}

/// What happens to one message.
pub enum Fate {
    Drop,
    /// Delivered after the first delay, and again after the second if the network duplicated it.
    DeliverAfterMs(u64, Option<u64>),
}

impl Network {
    pub fn new(nodes: usize) -> Network {
        Network {
            connected: vec![true; nodes],
            group: vec![0; nodes],
            cut: vec![vec![false; nodes]; nodes],
            reliable: true,
            long_reordering: false,
            harsh: HarshFaults::default(),
            loss_burst_until_ms: 0,
        }
    }

    pub fn link_up(&self, from: usize, to: usize) -> bool {
        self.connected[from] && self.connected[to] && self.group[from] == self.group[to] && !self.cut[from][to]
    }

    /// Whether a message sent earlier may still be delivered now (see [`HarshFaults::deliver_in_flight`]).
    pub fn deliverable(&self, from: usize, to: usize) -> bool {
        self.harsh.deliver_in_flight || self.link_up(from, to)
    }

    pub fn is_connected(&self, node: usize) -> bool {
        self.connected[node]
    }

    pub fn set_connected(&mut self, node: usize, connected: bool) {
        self.connected[node] = connected;
    }

    /// Splits the nodes into groups; `groups[i]` is node i's group. Heal with all zeros.
    pub fn set_partition(&mut self, groups: &[u32]) {
        self.group.copy_from_slice(groups);
    }

    /// Cuts (or restores) the one-way link `from -> to`.
    pub fn set_cut(&mut self, from: usize, to: usize, cut: bool) {
        self.cut[from][to] = cut;
    }

    /// Restores every one-way link.
    pub fn clear_cuts(&mut self) {
        for row in &mut self.cut {
            row.fill(false);
        }
    }

    /// One-way links currently cut, as (from, to).
    pub fn cuts(&self) -> Vec<(usize, usize)> {
        let n = self.cut.len();
        (0..n).flat_map(|f| (0..n).map(move |t| (f, t))).filter(|&(f, t)| self.cut[f][t]).collect()
    }

    /// Decides the fate of a message sent at `now_ms` on a link that is up.
    pub fn fate(&self, rng: &mut Rng, is_request: bool, now_ms: u64) -> Fate {
        if now_ms < self.loss_burst_until_ms && rng.chance(LOSS_BURST_DROP_PER_MILLE, 1000) {
            return Fate::Drop;
        }
        let first = match self.delay_ms(rng, is_request) {
            Some(delay_ms) => delay_ms,
            None => return Fate::Drop,
        };
        let copy = if self.harsh.duplicate_per_mille > 0 && rng.chance(self.harsh.duplicate_per_mille, 1000) {
            self.delay_ms(rng, is_request)
        } else {
            None
        };
        Fate::DeliverAfterMs(first, copy)
    }

    /// One copy's trip: dropped (`None`) or delayed.
    fn delay_ms(&self, rng: &mut Rng, is_request: bool) -> Option<u64> {
        let mut delay_ms = rng.range(BASE_LATENCY_MS.0, BASE_LATENCY_MS.1 + 1);
        if !self.reliable {
            delay_ms += rng.range(0, UNRELIABLE_EXTRA_DELAY_MS);
            if rng.chance(UNRELIABLE_DROP_PER_MILLE, 1000) {
                return None;
            }
        }
        let reorders = !is_request || self.harsh.reorder_requests;
        if reorders && self.long_reordering && rng.chance(LONG_REORDER_NUMERATOR, LONG_REORDER_DENOMINATOR) {
            let spread = rng.range(0, LONG_REORDER_SPREAD_MS);
            delay_ms += LONG_REORDER_BASE_MS + rng.range(0, 1 + spread);
        }
        Some(delay_ms)
    }
}
