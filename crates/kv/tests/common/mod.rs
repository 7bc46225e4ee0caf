//! Helpers shared by the integration tests: keel-kv's operations and replies in the checker's terms.
#![allow(dead_code)] // each test file uses its own subset

use keel_kv::{Op, Reply};
use keel_lincheck::{IndexedKvInput as In, IndexedKvOutput as Out};

/// `None`: an operation the model does not cover (`List`).
pub fn checked_input(op: &Op) -> Option<In> {
    Some(match op.clone() {
        Op::Get { key } => In::Get { key },
        Op::Put { key, value } => In::Put { key, value },
        Op::Append { key, value } => In::Append { key, value },
        Op::Delete { key } => In::Delete { key },
        Op::PutIf { key, value, expected_index } => In::PutIf { key, value, expected_index },
        Op::List { .. } => return None,
    })
}

/// `None`: a reply the model does not cover (a listing, or a rejection: nothing was executed).
pub fn checked_output(reply: &Reply) -> Option<Out> {
    Some(match reply.clone() {
        Reply::Value { value, modified_index } => Out::Value { value, modified_index },
        Reply::NotFound => Out::NotFound,
        Reply::Written { index } => Out::Written { index },
        Reply::Deleted { index } => Out::Deleted { index },
        Reply::CasFailed { current_index } => Out::CasFailed { current_index },
        Reply::Listed { .. } | Reply::Rejected { .. } => return None,
    })
}

pub fn as_checked(op: &Op, reply: &Reply) -> Option<(In, Out)> {
    Some((checked_input(op)?, checked_output(reply)?))
}

/// SplitMix64: a few lines, so a seed means the same run forever.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
