//! The Raft configuration the simulated nodes run with. The catalogue uses the defaults (6.824's timing); the
//! sweep draws every field from its seed, so every shape a user can configure is a shape the sweep explores.
use keel_raft::{
    Config, DEFAULT_ELECTION_TIMEOUT_TICKS_MAX, DEFAULT_ELECTION_TIMEOUT_TICKS_MIN, DEFAULT_HEARTBEAT_INTERVAL_TICKS,
    DEFAULT_MAX_BYTES_PER_APPEND, DEFAULT_MAX_ENTRIES_PER_APPEND,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftOptions {
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub heartbeat_interval_ticks: u32,
    pub election_timeout_ticks_min: u32,
    pub election_timeout_ticks_max: u32,
    pub max_entries_per_append: usize,
    pub max_bytes_per_append: usize,
}

impl RaftOptions {
    /// The paper's Figure 2 with keel's default timing and limits.
    pub const FIGURE_2: RaftOptions = RaftOptions {
        pre_vote: false,
        check_quorum: false,
        heartbeat_interval_ticks: DEFAULT_HEARTBEAT_INTERVAL_TICKS,
        election_timeout_ticks_min: DEFAULT_ELECTION_TIMEOUT_TICKS_MIN,
        election_timeout_ticks_max: DEFAULT_ELECTION_TIMEOUT_TICKS_MAX,
        max_entries_per_append: DEFAULT_MAX_ENTRIES_PER_APPEND,
        max_bytes_per_append: DEFAULT_MAX_BYTES_PER_APPEND,
    };

    /// Default timing and limits, with PreVote and CheckQuorum as given.
    pub const fn with_extensions(pre_vote: bool, check_quorum: bool) -> RaftOptions {
        RaftOptions { pre_vote, check_quorum, ..RaftOptions::FIGURE_2 }
    }

    pub fn apply_to(&self, config: &mut Config) {
        config.pre_vote = self.pre_vote;
        config.check_quorum = self.check_quorum;
        config.heartbeat_interval_ticks = self.heartbeat_interval_ticks;
        config.election_timeout_ticks_min = self.election_timeout_ticks_min;
        config.election_timeout_ticks_max = self.election_timeout_ticks_max;
        config.max_entries_per_append = self.max_entries_per_append;
        config.max_bytes_per_append = self.max_bytes_per_append;
    }
}

impl Default for RaftOptions {
    fn default() -> RaftOptions {
        RaftOptions::FIGURE_2
    }
}
