//! The simulated network: which links are up, and the fault model of 6.824's labrpc.
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

pub struct Network {
    /// A disconnected node can neither send nor receive.
    connected: Vec<bool>,
    /// Nodes talk only within their partition group.
    group: Vec<u32>,
    pub reliable: bool,
    pub long_reordering: bool,
}

/// What happens to one message.
pub enum Fate {
    Drop,
    DeliverAfterMs(u64),
}

impl Network {
    pub fn new(nodes: usize) -> Network {
        Network { connected: vec![true; nodes], group: vec![0; nodes], reliable: true, long_reordering: false }
    }

    pub fn link_up(&self, from: usize, to: usize) -> bool {
        self.connected[from] && self.connected[to] && self.group[from] == self.group[to]
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

    /// Decides the fate of a message sent now on a link that is up.
    pub fn fate(&self, rng: &mut Rng, is_request: bool) -> Fate {
        let mut delay_ms = rng.range(BASE_LATENCY_MS.0, BASE_LATENCY_MS.1 + 1);
        if !self.reliable {
            delay_ms += rng.range(0, UNRELIABLE_EXTRA_DELAY_MS);
            if rng.chance(UNRELIABLE_DROP_PER_MILLE, 1000) {
                return Fate::Drop;
            }
        }
        if !is_request && self.long_reordering && rng.chance(LONG_REORDER_NUMERATOR, LONG_REORDER_DENOMINATOR) {
            let spread = rng.range(0, LONG_REORDER_SPREAD_MS);
            delay_ms += LONG_REORDER_BASE_MS + rng.range(0, 1 + spread);
        }
        Fate::DeliverAfterMs(delay_ms)
    }
}
