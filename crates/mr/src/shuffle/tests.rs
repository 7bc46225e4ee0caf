//! The shuffle server and client over real loopback sockets: what is served, what is refused, and damage in
//! transit caught before any byte is used.
use std::io::Read;

use super::*;
use crate::layout::Layout;
use crate::maps_file::MapsFile;
use crate::records::RecordReader;

const JOB: JobId = JobId(7);
const ATTEMPT: AttemptId = AttemptId(12);

/// A worker's scratch directory whose maps file holds map 2's output and then map 3's (attempt 12), for 3
/// partitions; map 3's is served.
fn serving() -> (tempfile::TempDir, ShuffleServer) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout { work_dir: dir.path().to_path_buf(), staging_dir: dir.path().to_path_buf() };
    let mut maps = MapsFile::create(&layout, 11).unwrap();
    // Another map's output first, so map 3's lies inside the file, not at its start.
    maps.append(3, 0, |mut file| {
        (0..3).try_for_each(|_| file.write_partition(|w| w.append("other", "map")))?;
        file.finish()
    })
    .unwrap();
    // Partition 1 is larger than a chunk, so it crosses several frames.
    let big: Vec<(String, String)> = (0..40_000).map(|i| (format!("key{i:06}"), "v".repeat(10))).collect();
    let range = maps
        .append(3, 0, |mut file| {
            file.write_partition(|w| w.append("a", "1"))?;
            file.write_partition(|w| big.iter().try_for_each(|(k, v)| w.append(k, v)))?;
            file.write_partition(|_| Ok(()))?;
            file.finish()
        })
        .unwrap();
    assert!(range.region.offset_bytes > 0);
    let servable: Servable = Arc::new(Mutex::new(HashMap::from([(3, (ATTEMPT, range))])));
    let server = ShuffleServer::start("127.0.0.1:0", JOB, dir.path().to_path_buf(), servable).unwrap();
    (dir, server)
}

fn fetch(server: &ShuffleServer, job: JobId, partition: u32, attempt: AttemptId) -> Result<Vec<String>, FetchFailure> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in");
    let mut out = File::create(&path).unwrap();
    let mut position = 0;
    let maps = [HeldOutput { map: 3, attempt }];
    let got = fetch_partitions(&server.address().to_string(), job, partition, 3, &maps, &mut out, &mut position)?;
    assert_eq!(got.len(), 1);
    let (map, segment) = got[0];
    assert_eq!((map, segment.offset_bytes, segment.len_bytes), (3, 0, position));
    let file = File::open(&path).unwrap();
    let mut reader = RecordReader::from_segment(file, &path, segment.offset_bytes, segment.len_bytes).unwrap();
    let mut keys = Vec::new();
    while let Some((key, _)) = reader.next_record().unwrap() {
        keys.push(key);
    }
    Ok(keys)
}

#[test]
fn a_committed_output_is_served_partition_by_partition() {
    let (_dir, server) = serving();
    assert_eq!(fetch(&server, JOB, 0, ATTEMPT).unwrap(), vec!["a"]);
    let big = fetch(&server, JOB, 1, ATTEMPT).unwrap();
    assert_eq!(big.len(), 40_000);
    assert!(big.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(fetch(&server, JOB, 2, ATTEMPT).unwrap(), Vec::<String>::new(), "an empty partition is a run too");
}

#[test]
fn other_attempts_other_jobs_and_garbage_get_nothing_and_the_server_goes_on() {
    let (_dir, server) = serving();
    let other = fetch(&server, JOB, 0, AttemptId(13)).unwrap_err();
    assert_eq!((other.map, other.attempt), (3, AttemptId(13)));
    assert!(other.reason.contains("holds no output of map 3 attempt 13"), "{}", other.reason);
    let stranger = fetch(&server, JobId(8), 0, ATTEMPT).unwrap_err();
    assert!(stranger.reason.contains("refused") && stranger.reason.contains("job"), "{}", stranger.reason);
    // Garbage (an HTTP client on the wrong port): the connection is closed, nothing panics.
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    assert!(buf.is_empty(), "garbage got an answer: {buf:?}");
    assert_eq!(fetch(&server, JOB, 0, ATTEMPT).unwrap(), vec!["a"], "the server still serves");
}

/// A reply stream made by hand, as a broken or hostile server could send it.
fn receive(replies: &[FetchReply]) -> Result<Segment, String> {
    let mut wire_bytes = Vec::new();
    for reply in replies {
        wire::send(&mut wire_bytes, reply).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut out = File::create(dir.path().join("in")).unwrap();
    receive_run(&mut wire_bytes.as_slice(), "peer", &HeldOutput { map: 3, attempt: ATTEMPT }, &mut out, 0)
}

#[test]
fn damaged_out_of_order_and_foreign_chunks_are_errors_never_data() {
    let good = Chunk::new(0, b"hello".to_vec());
    assert!(receive(&[FetchReply::Chunk { map: 3, chunk: good.clone(), last: true }]).is_ok());
    let mut damaged = good.clone();
    damaged.data[2] ^= 0x10;
    let error = receive(&[FetchReply::Chunk { map: 3, chunk: damaged, last: true }]).unwrap_err();
    assert!(error.contains("checksum mismatch"), "{error}");
    let skipped = Chunk::new(5, b"world".to_vec());
    let error = receive(&[FetchReply::Chunk { map: 3, chunk: skipped, last: true }]).unwrap_err();
    assert!(error.contains("at offset 5"), "{error}");
    let error = receive(&[FetchReply::Chunk { map: 4, chunk: good.clone(), last: true }]).unwrap_err();
    assert!(error.contains("sent map 4"), "{error}");
    // Cut short: a first chunk, then the stream ends.
    let error = receive(&[FetchReply::Chunk { map: 3, chunk: good, last: false }]).unwrap_err();
    assert!(error.contains("fetching from worker peer"), "{error}");
    let oversized = Chunk::new(0, vec![0; CHUNK_BYTES_MAX + 1]);
    assert!(oversized.check().unwrap_err().contains("over the limit"));
}
