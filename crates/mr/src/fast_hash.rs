//! A fast non-cryptographic hasher (the Fx hash of rustc and Firefox) for the map side's combine table,
//! which is looked up once per emitted pair: with std's SipHash that lookup was the largest cost of a `wc`
//! map task. The table lives for one map task on the user's own data, so hash flooding would only slow
//! down the user's own job, which is why giving up SipHash's DoS resistance is acceptable here.
use std::hash::{BuildHasher, Hasher};

const MULTIPLIER: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Clone, Copy, Debug, Default)]
pub struct FxBuildHasher;

impl BuildHasher for FxBuildHasher {
    type Hasher = FxHasher;

    fn build_hasher(&self) -> FxHasher {
        FxHasher { hash: 0 }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn write_u64(&mut self, word: u64) {
        self.add(word);
    }

    fn write_usize(&mut self, word: usize) {
        self.add(word as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::FxBuildHasher;

    #[test]
    fn distinct_short_keys_rarely_collide() {
        let hashes: HashSet<u64> = (0..100_000).map(|i| FxBuildHasher.hash_one(format!("w{i}"))).collect();
        assert!(hashes.len() > 99_990);
        assert_ne!(FxBuildHasher.hash_one("ab"), FxBuildHasher.hash_one("ab\0"));
    }
}
