use super::*;
use crate::apps::WordCount;
use crate::records::read_all_records;

fn run_file(dir: &Path, name: &str, records: &[(&str, &str)]) -> Run {
    let path = dir.join(name);
    let mut w = RecordWriter::create(&path).unwrap();
    for (k, v) in records {
        w.append(k, v).unwrap();
    }
    w.finish().unwrap();
    Run::File(path)
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

#[test]
fn many_small_segments_merge_in_one_pass_and_the_caller_s_files_stay() {
    // 600 maps' partitions of a few bytes each: more than MERGE_FAN_IN_MAX, few enough bytes to open at
    // once, as a reduce over thousands of small maps sees them.
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    let mut expected = Vec::new();
    for m in 0..600 {
        let path = dir.path().join(format!("map-{m}"));
        let mut file = crate::map_file::MapFileWriter::create(&path, 2).unwrap();
        file.write_partition(|w| w.append("ignored", "x")).unwrap();
        let key = format!("k{:02}", m % 50);
        file.write_partition(|w| w.append(&key, &m.to_string())).unwrap();
        file.finish().unwrap();
        let (_, segment) = crate::map_file::locate_partition(&path, 1, 2).unwrap();
        runs.push(Run::Segment { path, segment });
        expected.push((key, m.to_string()));
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let narrowed = narrow_runs(runs.clone(), MERGE_OPEN_RUNS_MAX, dir.path(), "scratch", None).unwrap();
    assert!(narrowed.len() <= MERGE_OPEN_RUNS_MAX && narrowed.len() >= 2, "{} runs", narrowed.len());
    let out = dir.path().join("out");
    merge_into(&narrowed, &out, None, Durability::Scratch).unwrap();
    assert_eq!(read_all_records(&out).unwrap(), expected, "values of a key in map order");
    for run in &runs {
        let Run::Segment { path, .. } = run else { unreachable!() };
        assert!(path.exists(), "narrowing removed the caller's {}", path.display());
    }
}

#[test]
fn a_caller_s_run_passed_through_a_pass_alone_is_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<Run> = (0..7).map(|r| run_file(dir.path(), &format!("run{r}"), &[("k", "v")])).collect();
    // Fan-in 3: 7 runs are 3 + 3 + 1; the last passes through a pass alone.
    let narrowed = narrow_runs(runs.clone(), 3, dir.path(), "scratch", None).unwrap();
    assert!(narrowed.len() <= 3);
    for run in &runs {
        let Run::File(path) = run else { unreachable!() };
        assert!(path.exists(), "{} removed", path.display());
    }
}

/// 2,000 maps' partitions read into memory (what a reduce over thousands of small maps holds): one merge
/// takes them all, with no scratch file and no descriptor each, in map order; damage in one is an error
/// naming its file, as from disk.
#[test]
fn partitions_in_memory_merge_in_one_pass_and_damage_is_still_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    let mut expected = Vec::new();
    for m in 0..2000 {
        let path = dir.path().join(format!("map-{m}"));
        let mut file = crate::map_file::MapFileWriter::create(&path, 1).unwrap();
        let key = format!("k{:02}", m % 50);
        file.write_partition(|w| w.append(&key, &m.to_string())).unwrap();
        file.finish().unwrap();
        let (file, segment) = crate::map_file::locate_partition(&path, 0, 1).unwrap();
        let mut in_memory = 0;
        let run = crate::reduce_input::reduce_input_run(&file, path.clone(), segment, &mut in_memory).unwrap();
        assert!(matches!(run, Run::Memory { .. }) && in_memory == segment.len_bytes);
        std::fs::remove_file(&path).unwrap(); // nothing reads the file again
        runs.push(run);
        expected.push((key, m.to_string()));
    }
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(fits_one_merge(&runs, MERGE_OPEN_RUNS_MAX), "runs in memory need no descriptor each");
    let out = dir.path().join("out");
    merge_into(&runs, &out, None, Durability::Scratch).unwrap();
    assert_eq!(read_all_records(&out).unwrap(), expected, "values of a key in map order");

    let Run::Memory { path, offset_bytes, bytes } = &runs[7] else { unreachable!() };
    let mut damaged = bytes.as_ref().clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 1;
    let run = Run::Memory { path: path.clone(), offset_bytes: *offset_bytes, bytes: Arc::new(damaged) };
    let error = merge_into(&[run], &dir.path().join("out2"), None, Durability::Scratch).unwrap_err().to_string();
    assert!(error.contains("map-7"), "{error}");
}
