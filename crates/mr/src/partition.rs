//! Which reduce task a key goes to.

/// 6.824's `ihash(key) % nReduce`: FNV-1a 32-bit, top bit cleared. Keeping the same function means a
/// key lands in the same `mr-out-<r>` as in the labs.
pub fn partition_of(key: &str, reduce_tasks: u32) -> u32 {
    debug_assert!(reduce_tasks > 0);
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.as_bytes() {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash & 0x7fff_ffff) % reduce_tasks
}

#[cfg(test)]
mod tests {
    use super::partition_of;

    #[test]
    fn matches_fnv1a_reference_values() {
        // FNV-1a 32 of "a" is 0xe40c292c; cleared top bit gives 0x640c292c = 1678518572.
        assert_eq!(partition_of("a", u32::MAX), 1_678_518_572);
        assert_eq!(partition_of("a", 10), 1_678_518_572 % 10);
        assert_eq!(partition_of("", 10), (0x811c_9dc5u32 & 0x7fff_ffff) % 10);
        assert!((0..1000).all(|i| partition_of(&i.to_string(), 7) < 7));
    }
}
