//! Quorum arithmetic.
use crate::types::Index;

/// Votes needed out of `voters`.
pub(crate) fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// The largest index that a majority of `match_indexes` have reached.
pub fn committed_index(match_indexes: &mut [Index]) -> Index {
    if match_indexes.is_empty() {
        return 0;
    }
    match_indexes.sort_unstable_by(|a, b| b.cmp(a));
    match_indexes[majority(match_indexes.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_match() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
        assert_eq!(committed_index(&mut [5, 1, 3]), 3);
        assert_eq!(committed_index(&mut [5, 1, 3, 4]), 3);
        assert_eq!(committed_index(&mut [2, 9, 9, 0, 0]), 2);
        assert_eq!(committed_index(&mut [7]), 7);
    }
}
