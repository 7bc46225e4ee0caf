use super::*;
use crate::records::RecordReader;

fn write(path: &Path, partitions: &[&[(&str, &str)]]) {
    let mut file = MapFileWriter::create(path, partitions.len() as u32).unwrap();
    for records in partitions {
        file.write_partition(|w| records.iter().try_for_each(|(k, v)| w.append(k, v))).unwrap();
    }
    file.finish().unwrap();
}

fn read(path: &Path, r: u32, partitions: u32) -> Result<Vec<(String, String)>, RecordError> {
    let (file, segment) = locate_partition(path, r, partitions)?;
    let mut reader = RecordReader::from_segment(file, path, segment.offset_bytes, segment.len_bytes)?;
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        records.push(record);
    }
    Ok(records)
}

fn owned(records: &[(&str, &str)]) -> Vec<(String, String)> {
    records.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const PARTITIONS: [&[(&str, &str)]; 3] = [&[("a", "1"), ("b", "2")], &[], &[("c", "3")]];

#[test]
fn every_partition_reads_back_through_the_index_empty_ones_included() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("map");
    write(&path, &PARTITIONS);
    for (r, expected) in PARTITIONS.iter().enumerate() {
        assert_eq!(read(&path, r as u32, 3).unwrap(), owned(expected), "partition {r}");
    }
}

#[test]
fn a_file_written_for_another_number_of_partitions_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("map");
    write(&path, &PARTITIONS);
    let error = read(&path, 0, 2).unwrap_err().to_string();
    assert!(error.contains("written for 3 partitions, expected 2"), "{error}");
}

#[test]
fn every_flipped_bit_and_every_truncation_is_an_error_never_other_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("map");
    write(&path, &PARTITIONS);
    let good = std::fs::read(&path).unwrap();
    let damaged = dir.path().join("damaged");
    for i in 0..good.len() {
        let mut bytes = good.clone();
        bytes[i] ^= 0x10;
        std::fs::write(&damaged, &bytes).unwrap();
        let mut errors = 0;
        for r in 0..3u32 {
            // Located in memory (a reduce reading many small map outputs at once) exactly as from the file.
            let from_file = locate_partition(&damaged, r, 3).map(|(_, segment)| segment).map_err(|e| e.to_string());
            let region = Region { offset_bytes: 0, len_bytes: bytes.len() as u64 };
            let from_bytes = locate_partition_in_bytes(&bytes, 0, &damaged, region, r, 3).map_err(|e| e.to_string());
            assert_eq!(from_file, from_bytes, "byte {i} flipped, partition {r}");
            // A flip elsewhere may leave this partition readable, but then exactly as written.
            match read(&damaged, r, 3) {
                Ok(records) => assert_eq!(records, owned(PARTITIONS[r as usize]), "byte {i} flipped, partition {r}"),
                Err(_) => errors += 1,
            }
        }
        assert!(errors > 0, "byte {i} flipped and every partition read fine");
    }
    for len in 0..good.len() {
        std::fs::write(&damaged, &good[..len]).unwrap();
        assert!((0..3).all(|r| read(&damaged, r, 3).is_err()), "truncated to {len} bytes");
    }
}

#[test]
fn a_records_file_is_not_a_map_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records");
    let mut w = crate::records::RecordWriter::create(&path).unwrap();
    for i in 0..100 {
        w.append(&format!("k{i}"), "v").unwrap();
    }
    w.finish().unwrap();
    assert!(read(&path, 0, 1).is_err());
}

/// With many partitions the entry of an early one is far from the trailer and read on its own: both ways
/// find the right run.
#[test]
fn entries_far_from_the_trailer_are_found_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("map");
    let keys: Vec<String> = (0..300).map(|p| format!("key-{p}")).collect();
    let partitions: Vec<Vec<(&str, &str)>> = keys.iter().map(|k| vec![(k.as_str(), "v")]).collect();
    let refs: Vec<&[(&str, &str)]> = partitions.iter().map(Vec::as_slice).collect();
    write(&path, &refs);
    for p in [0u32, 1, 150, 298, 299] {
        assert_eq!(read(&path, p, 300).unwrap(), owned(&[(keys[p as usize].as_str(), "v")]), "partition {p}");
    }
}
