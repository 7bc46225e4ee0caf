use std::fs;

use super::*;

fn file_with(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn splits_cover_the_file_and_end_at_line_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..500 {
        text.push_str(&"word ".repeat(i % 13 + 1));
        text.push('\n');
    }
    let path = file_with(dir.path(), "a.txt", text.as_bytes());
    for split_size in [1u64, 7, 64, 100, 1000, 1 << 20] {
        let splits = plan_splits(std::slice::from_ref(&path), split_size).unwrap();
        let mut joined = String::new();
        let mut offset = 0;
        for split in &splits {
            assert_eq!(split.offset, offset);
            offset += split.len;
            let part = read_split(split).unwrap();
            assert!(part.ends_with('\n'), "split ends at a line boundary");
            // Lines here are at most 66 bytes, so splits are only longer than asked when a line is.
            assert!(split.len <= split_size.max(66), "split of {} > {split_size}", split.len);
            joined.push_str(&part);
        }
        assert_eq!(joined, text, "split size {split_size}");
    }
}

#[test]
fn a_line_longer_than_the_split_is_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{}\nshort\n{}", "x".repeat(200_000), "y".repeat(10));
    let path = file_with(dir.path(), "long.txt", text.as_bytes());
    let splits = plan_splits(&[path], 1000).unwrap();
    let parts: Vec<String> = splits.iter().map(|s| read_split(s).unwrap()).collect();
    assert_eq!(parts.concat(), text);
    assert_eq!(parts[0].len(), 200_001);
}

#[test]
fn bad_inputs_get_errors_that_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    let err = plan_splits(&[missing], 100).unwrap_err().to_string();
    assert!(err.contains("missing.txt"), "{err}");

    let empty = file_with(dir.path(), "empty.txt", b"");
    let err = plan_splits(&[empty], 100).unwrap_err();
    assert!(matches!(err, InputError::Empty { .. }), "{err}");

    let err = plan_splits(&[dir.path().to_path_buf()], 100).unwrap_err();
    assert!(matches!(err, InputError::NotAFile { .. }), "{err}");

    // A FIFO would block `open` until a writer appears: it must be refused without being opened.
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("running mkfifo");
    assert!(made.success(), "mkfifo failed");
    let err = plan_splits(std::slice::from_ref(&fifo), 100).unwrap_err();
    assert!(matches!(err, InputError::NotAFile { .. }), "{err}");
    assert!(matches!(read_whole(&fifo), Err(InputError::NotAFile { .. })));

    let latin1 = file_with(dir.path(), "latin1.txt", b"caf\xe9 au lait\n");
    let split = plan_splits(std::slice::from_ref(&latin1), 100).unwrap().remove(0);
    match read_split(&split).unwrap_err() {
        InputError::NotUtf8 { name, offset } => {
            assert!(name.ends_with("latin1.txt"));
            assert_eq!(offset, 3);
        }
        other => panic!("expected NotUtf8, got {other}"),
    }
    assert!(matches!(read_whole(&latin1), Err(InputError::NotUtf8 { offset: 3, .. })));
}
