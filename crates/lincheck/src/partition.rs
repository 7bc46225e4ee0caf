//! Splitting a history by key. A history is linearizable if and only if each key's sub-history is (the KV model
//! is P-compositional), and checking several small sub-histories is exponentially cheaper than one large one.
use std::collections::BTreeMap;

use crate::history::Operation;
use crate::model::Model;

/// The positions (in the history) of each key's operations, keys in order. Timed-out read-only operations are
/// left out: nobody saw their answer and they change nothing, so they can neither help nor hurt.
pub fn by_key<M: Model>(model: &M, history: &[Operation<M::Input, M::Output>]) -> BTreeMap<M::Key, Vec<usize>> {
    let mut partitions: BTreeMap<M::Key, Vec<usize>> = BTreeMap::new();
    for (position, op) in history.iter().enumerate() {
        if op.output().is_none() && model.is_read_only(&op.input) {
            continue;
        }
        partitions.entry(model.key(&op.input)).or_default().push(position);
    }
    partitions
}
