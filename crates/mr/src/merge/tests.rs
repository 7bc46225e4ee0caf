use std::path::PathBuf;

use super::*;
use crate::apps::WordCount;
use crate::records::read_all_records;

fn run_file(dir: &Path, name: &str, records: &[(&str, &str)]) -> PathBuf {
    let path = dir.join(name);
    let mut w = RecordWriter::create(&path).unwrap();
    for (k, v) in records {
        w.append(k, v).unwrap();
    }
    w.finish().unwrap();
    path
}

#[test]
fn groups_come_out_in_key_order_with_values_in_run_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_file(dir.path(), "a", &[("apple", "a1"), ("cherry", "a2")]);
    let b = run_file(dir.path(), "b", &[("apple", "b1"), ("banana", "b2"), ("cherry", "b3")]);
    let mut merged = MergedRuns::open(&[a, b]).unwrap();
    let mut groups = Vec::new();
    merged
        .for_each_group(|key, values| -> Result<(), RecordError> {
            groups.push((key.to_string(), values.collect::<Vec<_>>()));
            Ok(())
        })
        .unwrap();
    let expected = vec![
        ("apple".to_string(), vec!["a1".to_string(), "b1".to_string()]),
        ("banana".to_string(), vec!["b2".to_string()]),
        ("cherry".to_string(), vec!["a2".to_string(), "b3".to_string()]),
    ];
    assert_eq!(groups, expected);
}

#[test]
fn a_reducer_that_stops_early_does_not_shift_the_next_key() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_file(dir.path(), "a", &[("k", "1"), ("k", "2"), ("k", "3"), ("z", "9")]);
    let mut merged = MergedRuns::open(&[a]).unwrap();
    let mut keys = Vec::new();
    merged
        .for_each_group(|key, values| -> Result<(), RecordError> {
            keys.push((key.to_string(), values.next()));
            Ok(())
        })
        .unwrap();
    assert_eq!(keys, vec![("k".into(), Some("1".into())), ("z".into(), Some("9".into()))]);
}

#[test]
fn many_runs_merge_in_passes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    let mut expected = Vec::new();
    for r in 0..23 {
        let records: Vec<(String, String)> =
            (0..50).map(|i| (format!("k{:03}", (i * 7 + r) % 40), format!("{r}-{i}"))).collect();
        let mut sorted = records.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let refs: Vec<(&str, &str)> = sorted.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        runs.push(run_file(dir.path(), &format!("run{r}"), &refs));
        expected.extend(sorted);
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal keys stay in run order
    let narrowed = narrow_runs(runs.clone(), 3, dir.path(), "scratch", None).unwrap();
    assert!(narrowed.len() <= 3);
    let out = dir.path().join("out");
    merge_into(&narrowed, &out, None, Durability::Durable).unwrap();
    assert_eq!(read_all_records(&out).unwrap(), expected);
}

#[test]
fn merging_with_a_combiner_folds_equal_keys() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_file(dir.path(), "a", &[("the", "3"), ("zebra", "1")]);
    let b = run_file(dir.path(), "b", &[("a", "2"), ("the", "4")]);
    let out = dir.path().join("out");
    merge_into(&[a, b], &out, Some(&WordCount), Durability::Durable).unwrap();
    let expected: Vec<(String, String)> =
        [("a", "2"), ("the", "7"), ("zebra", "1")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(read_all_records(&out).unwrap(), expected);
}

#[test]
fn an_unsorted_run_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = run_file(dir.path(), "a", &[("b", "1"), ("a", "1")]);
    let mut merged = MergedRuns::open(&[a]).unwrap();
    assert!(merged.next_record().is_err());
}
