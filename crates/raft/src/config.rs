//! Static configuration of one Raft node.
use crate::types::NodeId;

/// Timing is in ticks: the driver decides how long a tick is (the simulator's is 10 ms of virtual time).
#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    /// Every member of the cluster, including `id`.
    pub members: Vec<NodeId>,
    /// Election timeouts are drawn uniformly from `[min, max)` after every reset (Raft section 5.2). The range
    /// must hold at least two values: with one, every node times out after the same number of ticks, and split
    /// votes can repeat forever.
    pub election_timeout_ticks_min: u32,
    pub election_timeout_ticks_max: u32,
    /// A leader sends AppendEntries to every follower at least this often.
    pub heartbeat_interval_ticks: u32,
    /// Limits on one AppendEntries, so a far-behind follower is caught up in bounded messages.
    pub max_entries_per_append: usize,
    pub max_bytes_per_append: usize,
    /// Seeds the generator the node owns (election timeouts). Same seed and inputs, same outputs.
    pub seed: u64,
    /// Ask for PreVotes before campaigning, and refuse PreVotes while a leader is heard from (Raft thesis 9.6).
    /// A node that is partitioned away or rejoining then never raises the term and never deposes a working
    /// leader. Off by default: the default is the paper's Figure 2, read literally.
    pub pre_vote: bool,
    /// A leader that has not heard from a majority within an election timeout steps down (Raft thesis 6.2), so a
    /// leader cut off with a minority stops accepting proposals it can never commit. Off by default.
    pub check_quorum: bool,
}

/// 10 ticks = 100 ms at a 10 ms tick: at most 10 heartbeats per second per follower, as 6.824 asks.
pub const DEFAULT_HEARTBEAT_INTERVAL_TICKS: u32 = 10;
/// 300-600 ms: well above the heartbeat interval and typical round trips, so a healthy leader is rarely deposed,
/// yet low enough that a new leader is in place within a second or two of a crash.
pub const DEFAULT_ELECTION_TIMEOUT_TICKS_MIN: u32 = 30;
pub const DEFAULT_ELECTION_TIMEOUT_TICKS_MAX: u32 = 60;
/// Enough to catch up 6.824's 50-entry backlogs in a couple of round trips.
pub const DEFAULT_MAX_ENTRIES_PER_APPEND: usize = 512;
/// 1 MiB bounds a message so one slow follower cannot make the leader build enormous frames.
pub const DEFAULT_MAX_BYTES_PER_APPEND: usize = 1 << 20;

impl Config {
    pub fn new(id: NodeId, members: Vec<NodeId>, seed: u64) -> Config {
        Config {
            id,
            members,
            election_timeout_ticks_min: DEFAULT_ELECTION_TIMEOUT_TICKS_MIN,
            election_timeout_ticks_max: DEFAULT_ELECTION_TIMEOUT_TICKS_MAX,
            heartbeat_interval_ticks: DEFAULT_HEARTBEAT_INTERVAL_TICKS,
            max_entries_per_append: DEFAULT_MAX_ENTRIES_PER_APPEND,
            max_bytes_per_append: DEFAULT_MAX_BYTES_PER_APPEND,
            seed,
            pre_vote: false,
            check_quorum: false,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), crate::ConfigError> {
        use crate::ConfigError::*;
        if !self.members.contains(&self.id) {
            return Err(NotAMember(self.id));
        }
        let mut sorted = self.members.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.members.len() {
            return Err(DuplicateMember);
        }
        if self.heartbeat_interval_ticks == 0
            || self.election_timeout_ticks_min <= self.heartbeat_interval_ticks
            || self.election_timeout_ticks_max < self.election_timeout_ticks_min.saturating_add(2)
        {
            return Err(BadTimeouts);
        }
        if self.max_entries_per_append == 0 {
            return Err(BadAppendLimit);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConfigError;

    #[test]
    fn only_configurations_a_cluster_can_run_with_are_accepted() {
        let good = Config::new(1, vec![1, 2, 3], 7);
        assert_eq!(good.validate(), Ok(()));
        let with = |change: &dyn Fn(&mut Config)| {
            let mut c = good.clone();
            change(&mut c);
            c.validate()
        };
        assert_eq!(with(&|c| c.members = vec![2, 3]), Err(ConfigError::NotAMember(1)));
        assert_eq!(with(&|c| c.members = vec![1, 2, 2]), Err(ConfigError::DuplicateMember));
        assert_eq!(with(&|c| c.heartbeat_interval_ticks = 0), Err(ConfigError::BadTimeouts));
        assert_eq!(with(&|c| c.election_timeout_ticks_min = c.heartbeat_interval_ticks), Err(ConfigError::BadTimeouts));
        // One value to draw from is no randomization: split votes could repeat forever.
        assert_eq!(
            with(&|c| c.election_timeout_ticks_max = c.election_timeout_ticks_min + 1),
            Err(ConfigError::BadTimeouts)
        );
        assert_eq!(with(&|c| c.election_timeout_ticks_max = c.election_timeout_ticks_min + 2), Ok(()));
        assert_eq!(with(&|c| c.election_timeout_ticks_min = c.heartbeat_interval_ticks + 1), Ok(()));
        assert_eq!(with(&|c| c.max_entries_per_append = 0), Err(ConfigError::BadAppendLimit));
        assert_eq!(with(&|c| c.max_bytes_per_append = 0), Ok(()), "a byte limit below one entry still sends one");
    }
}
