use std::path::Path;

use super::*;
use crate::apps::WordCount;
use crate::records::read_all_records;

fn emit_words(out: &mut MapOutput<'_>, n: usize) {
    for i in 0..n {
        out.emit(&format!("w{}", i % 97), "1");
    }
}

/// Everything written, all partitions, as one sorted list.
fn collect(dir: &Path, reduces: u32) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for r in 0..reduces {
        let part = read_all_records(&dir.join(format!("part-{r}"))).unwrap();
        assert!(part.windows(2).all(|w| w[0].0 <= w[1].0), "partition {r} is sorted");
        assert!(part.iter().all(|(k, _)| partition_of(k, reduces) == r), "keys in their partition");
        all.extend(part);
    }
    all.sort();
    all
}

#[test]
fn without_spills_and_with_spills_the_output_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();

    let mut roomy = MapOutput::new(3, Some(&WordCount), 1 << 30, &a);
    emit_words(&mut roomy, 10_000);
    let roomy_stats = roomy.finish(|r| a.join(format!("part-{r}"))).unwrap();
    assert_eq!(roomy_stats.spills, 0);

    // A budget of a few entries forces many spills (more than the merge fan-in).
    let mut tight = MapOutput::new(3, Some(&WordCount), 2_000, &b);
    emit_words(&mut tight, 10_000);
    let tight_stats = tight.finish(|r| b.join(format!("part-{r}"))).unwrap();
    assert!(tight_stats.spills > MERGE_FAN_IN_MAX as u64, "spills: {}", tight_stats.spills);

    let combined = collect(&a, 3);
    assert_eq!(combined.len(), 97);
    assert!(combined.iter().all(|(_, v)| v == "103" || v == "104"));
    assert_eq!(collect(&b, 3), combined);
    let leftovers: Vec<_> = fs::read_dir(&b).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 3, "spill files are removed: {leftovers:?}");
}

#[test]
fn without_a_combiner_every_pair_is_kept_in_emission_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = MapOutput::new(2, None, 500, dir.path());
    for i in 0..300 {
        out.emit(&format!("k{}", i % 3), &i.to_string());
    }
    let stats = out.finish(|r| dir.path().join(format!("part-{r}"))).unwrap();
    assert!(stats.spills > 0);
    assert_eq!(stats.records_emitted, 300);
    let mut all = Vec::new();
    for r in 0..2 {
        all.extend(read_all_records(&dir.path().join(format!("part-{r}"))).unwrap());
    }
    for k in 0..3 {
        let values: Vec<u32> =
            all.iter().filter(|(key, _)| *key == format!("k{k}")).map(|(_, v)| v.parse().unwrap()).collect();
        let expected: Vec<u32> = (0..300).filter(|i| i % 3 == k).collect();
        assert_eq!(values, expected);
    }
}
