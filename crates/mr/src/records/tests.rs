use std::fs;

use super::*;

fn write(path: &Path, records: &[(String, String)]) -> u64 {
    let mut w = RecordWriter::create(path).unwrap();
    for (k, v) in records {
        w.append(k, v).unwrap();
    }
    w.finish().unwrap()
}

fn sample(n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("key-{i:06}-ß"), "v".repeat(i % 300))).collect()
}

#[test]
fn round_trip_across_many_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let records = sample(5000);
    let size = write(&path, &records);
    assert_eq!(size, fs::metadata(&path).unwrap().len());
    assert!(size > 3 * BLOCK_TARGET_BYTES as u64, "test must span several blocks");
    assert_eq!(read_all_records(&path).unwrap(), records);
}

#[test]
fn empty_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    write(&path, &[]);
    assert_eq!(read_all_records(&path).unwrap(), vec![]);
}

#[test]
fn a_flipped_bit_is_a_checksum_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    write(&path, &sample(100));
    let mut bytes = fs::read(&path).unwrap();
    bytes[40] ^= 0x04;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(read_all_records(&path), Err(RecordError::Checksum { .. })));
}

#[test]
fn a_file_cut_short_is_truncated_not_short() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    write(&path, &sample(3000));
    let bytes = fs::read(&path).unwrap();
    // Cut exactly at the end marker and in the middle of a block.
    for cut in [bytes.len() - 16, bytes.len() / 2, 4] {
        fs::write(&path, &bytes[..cut]).unwrap();
        assert!(matches!(read_all_records(&path), Err(RecordError::Truncated { .. })), "cut at {cut}");
    }
}

#[test]
fn other_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    fs::write(&path, b"{\"Key\":\"a\",\"Value\":\"1\"}\n").unwrap();
    assert!(matches!(read_all_records(&path), Err(RecordError::BadMagic { .. })));
}

#[test]
fn varints_round_trip() {
    for n in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
        let mut buf = Vec::new();
        put_varint(&mut buf, n);
        assert_eq!(get_varint(&buf), Some((n, buf.len())));
    }
    assert_eq!(get_varint(&[0x80, 0x80]), None);
    assert_eq!(get_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f]), None);
}
