//! A nemesis that strikes at the risky moments of a Raft run rather than at random times: right after an
//! election, right after a leader's commit index advances, while a leader holds entries nobody has acknowledged
//! yet, right after it sends a snapshot. The sweep arms one [`Nemesis`] at a time; the cluster notices the moment inside its event loop and
//! strikes the leader concerned before any other event runs.

/// When to strike. Each is seen on a leader, the node the strike then hits (or cuts a follower from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// A node has just become leader and sent its first heartbeats.
    Elected,
    /// A leader has just advanced its commit index (followers have not heard of it yet).
    CommitAdvanced,
    /// A leader has just appended a proposal that no follower holds yet.
    Uncommitted,
    /// A leader has just sent a follower its snapshot (InstallSnapshot).
    SnapshotSent,
    /// A leader has just sent entries ahead of its own fsync of them (Raft thesis 10.2.1). A crash strike lands
    /// before that fsync: followers may hold, and commit, entries the leader's disk never got.
    SentAheadOfFsync,
}

/// What to do to the leader at that moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strike {
    /// Crash it: volatile state and in-flight messages to it are lost.
    Crash,
    /// Crash it in the middle of its next persist, before the update is durable.
    TornPersist,
    /// Disconnect it from everyone.
    Disconnect,
    /// Crash and restart it at once from its durable state.
    Restart,
    /// Cut both directions between it and one follower only; the follower still hears everyone else.
    CutOffFollower,
    /// One follower's election timer fires now (its clock ran fast, or it missed heartbeats in a pause): it
    /// campaigns in the next term, which deposes the leader; the leader often wins the term after, while
    /// answers to what it sent before are still on their way.
    FollowerTimesOut,
    /// The leader sends every follower a message any correct leader may send but keel's flow control would not:
    /// an AppendEntries from a random point of its log, or its snapshot (see `legal_traffic.rs`).
    UnpromptedAppends,
    /// The network delivers to the leader very late copies of replies it received in earlier terms (see
    /// `late_replies.rs`).
    LateReplies,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nemesis {
    pub moment: Moment,
    pub strike: Strike,
}

impl Nemesis {
    pub const MOMENTS: [Moment; 5] =
        [Moment::Elected, Moment::CommitAdvanced, Moment::Uncommitted, Moment::SnapshotSent, Moment::SentAheadOfFsync];
    pub const STRIKES: [Strike; 8] = [
        Strike::Crash,
        Strike::TornPersist,
        Strike::Disconnect,
        Strike::Restart,
        Strike::CutOffFollower,
        Strike::FollowerTimesOut,
        Strike::UnpromptedAppends,
        Strike::LateReplies,
    ];
}
