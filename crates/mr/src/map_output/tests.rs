use std::path::Path;

use super::*;
use crate::apps::WordCount;
use crate::map_file::{MapFileWriter, locate_partition};
use crate::records::RecordReader;

/// Partition `r` of the map output file at `path`, read through its index.
fn read_partition(path: &Path, r: u32, reduces: u32) -> Vec<(String, String)> {
    let (file, segment) = locate_partition(path, r, reduces).unwrap();
    let mut reader = RecordReader::from_segment(file, path, segment.offset_bytes, segment.len_bytes).unwrap();
    let mut records = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        records.push(record);
    }
    records
}

fn emit_words(out: &mut MapOutput<'_>, n: usize) {
    for i in 0..n {
        out.emit(&format!("w{}", i % 97), "1");
    }
}

/// Everything written, all partitions, as one sorted list.
fn collect(path: &Path, reduces: u32) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for r in 0..reduces {
        let part = read_partition(path, r, reduces);
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

    let (a_scratch, b_scratch) = (a.join("scratch"), b.join("scratch"));
    let mut roomy = MapOutput::new(3, Some(&WordCount), 1 << 30, &a_scratch);
    emit_words(&mut roomy, 10_000);
    let roomy_stats = roomy.finish(MapFileWriter::create(&a.join("map"), 3).unwrap()).unwrap();
    assert_eq!(roomy_stats.spills, 0);
    assert!(!a_scratch.exists(), "no spill, no scratch directory");

    // A budget of a few entries forces many spills (more than the merge fan-in).
    let mut tight = MapOutput::new(3, Some(&WordCount), 2_000, &b_scratch);
    emit_words(&mut tight, 10_000);
    let tight_stats = tight.finish(MapFileWriter::create(&b.join("map"), 3).unwrap()).unwrap();
    assert!(tight_stats.spills > MERGE_FAN_IN_MAX as u64, "spills: {}", tight_stats.spills);

    let combined = collect(&a.join("map"), 3);
    assert_eq!(combined.len(), 97);
    assert!(combined.iter().all(|(_, v)| v == "103" || v == "104"));
    assert_eq!(collect(&b.join("map"), 3), combined);
    let leftovers: Vec<_> = fs::read_dir(&b_scratch).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(leftovers.is_empty(), "spill files are removed: {leftovers:?}");
}

#[test]
fn without_a_combiner_every_pair_is_kept_in_emission_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = MapOutput::new(2, None, 500, &dir.path().join("scratch"));
    for i in 0..300 {
        out.emit(&format!("k{}", i % 3), &i.to_string());
    }
    let stats = out.finish(MapFileWriter::create(&dir.path().join("map"), 2).unwrap()).unwrap();
    assert!(stats.spills > 0);
    assert_eq!(stats.records_emitted, 300);
    let mut all = Vec::new();
    for r in 0..2 {
        all.extend(read_partition(&dir.path().join("map"), r, 2));
    }
    for k in 0..3 {
        let values: Vec<u32> =
            all.iter().filter(|(key, _)| *key == format!("k{k}")).map(|(_, v)| v.parse().unwrap()).collect();
        let expected: Vec<u32> = (0..300).filter(|i| i % 3 == k).collect();
        assert_eq!(values, expected);
    }
}
