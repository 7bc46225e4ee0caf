//! The shuffle between workers that share nothing: a worker serves its committed map outputs over TCP
//! ([`ShuffleServer`]), and a reducer fetches its partition of each map's output from the worker holding it
//! ([`fetch_partitions`]), the paper's section 3.1 (reducers read map outputs "using remote procedure calls
//! ... from the local disks of the map workers").
//!
//! ```text
//! reducer                                     map worker's data address
//!   FetchRequest{magic, version, job, partition, partitions, maps: [(m, a)...]}  ->
//!                                             <- per map, in order: Chunk{map, chunk, last}... (the run's bytes)
//!                                                                    or Unavailable{map, reason}
//!   (next FetchRequest on the same connection, or close)
//! ```
//! Frames are the coordinator protocol's ([`crate::wire`]); every chunk also carries the crc32c of its bytes
//! as read from the map's file, checked by the reducer before the bytes are used, and the bytes are a records
//! file whose blocks are checksummed again when the reduce reads them. A server serves only outputs its
//! worker finished and was not told are uncommitted; the reducer names the attempt the coordinator has on
//! record, so another attempt's output is never what it reads.
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::layout::maps_file_in;
use crate::map_file::{Segment, locate_partition_in};
use crate::maps_file::MapOutputRange;
use crate::protocol::{CHUNK_BYTES_MAX, Chunk, HeldOutput, JobId, PROTOCOL_VERSION};
use crate::task_table::AttemptId;
use crate::wire::{self, WireError};

/// Starts every `FetchRequest`, so a server can tell a reducer from anything else on its port.
pub const SHUFFLE_MAGIC: [u8; 8] = *b"KEELMRS\n";
/// Most maps named in one `FetchRequest` (about 12 bytes each): far below the frame limit, and one round
/// trip per this many maps of one worker.
pub const FETCH_MAPS_PER_REQUEST_MAX: usize = 4096;
/// Most reducer connections a server handles at once; each costs a thread. More wait to be accepted.
const CONNECTIONS_MAX: usize = 64;
const ACCEPT_POLL: Duration = Duration::from_millis(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A server that sends nothing for this long is hung or gone; a reducer idle this long between requests is
/// dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The test suite's fail points in workers, a comma-separated list in this variable (like the
/// coordinator's `KEEL_MR_FAILPOINT`).
const FAILPOINT_ENV: &str = "KEEL_MR_WORKER_FAILPOINT";
/// Damage in transit: the server flips one bit of the first chunk it serves, after its checksum was
/// computed (a bad NIC, a bad cable). The reducer must notice, never use the data.
const FAILPOINT_CORRUPT_FIRST_CHUNK: &str = "corrupt-first-chunk";

/// Whether the worker fail point `name` is set.
pub(crate) fn worker_failpoint(name: &str) -> bool {
    std::env::var(FAILPOINT_ENV).is_ok_and(|v| v.split(',').any(|point| point == name))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    pub magic: [u8; 8],
    pub protocol_version: u32,
    pub job: JobId,
    pub partition: u32,
    pub partitions: u32,
    pub maps: Vec<HeldOutput>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FetchReply {
    /// The next piece of `map`'s run for the requested partition; `last` on its final piece.
    Chunk { map: u32, chunk: Chunk, last: bool },
    /// This server does not hold that output (or cannot read it).
    Unavailable { map: u32, reason: String },
    /// The request is not one this server answers (another job, another version, garbage); the connection
    /// closes.
    Refused { reason: String },
}

/// The map outputs a worker may serve: map -> the attempt whose output it finished (and that the
/// coordinator did not reject), and where that output is in the worker's maps file.
pub type Servable = Arc<Mutex<HashMap<u32, (AttemptId, MapOutputRange)>>>;

/// A worker's data server: a thread accepting reducers, and one thread per reducer connection.
pub struct ShuffleServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl ShuffleServer {
    pub fn start(listen: &str, job: JobId, scratch: PathBuf, servable: Servable) -> io::Result<ShuffleServer> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("mr-shuffle-accept".into())
                .spawn(move || accept_loop(&listener, &stop, job, &scratch, &servable))?
        };
        Ok(ShuffleServer { address, stop, acceptor: Some(acceptor) })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for ShuffleServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, job: JobId, scratch: &Path, servable: &Servable) {
    let connections = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        // At the limit, reducers wait in the listen backlog until a connection ends: one turned away would
        // take the map output for lost and have the map run again.
        if connections.load(Ordering::SeqCst) >= CONNECTIONS_MAX {
            thread::sleep(ACCEPT_POLL);
            continue;
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                connections.fetch_add(1, Ordering::SeqCst);
                let (connections, scratch, servable) =
                    (Arc::clone(&connections), scratch.to_path_buf(), Arc::clone(servable));
                let spawned = thread::Builder::new().name(format!("mr-shuffle-{peer}")).spawn(move || {
                    match serve(stream, job, &scratch, &servable) {
                        Ok(()) => {}
                        Err(e) if e.is_disconnect() => debug!("reducer {peer}: {e}"),
                        Err(e) => warn!("reducer {peer}: {e}; closing the connection"),
                    }
                    connections.fetch_sub(1, Ordering::SeqCst);
                });
                if let Err(e) = spawned {
                    warn!("cannot start a thread for reducer {peer}: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(e) => {
                debug!("accepting a reducer: {e}");
                thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

static CORRUPTED_ONCE: AtomicBool = AtomicBool::new(false);

fn serve(stream: TcpStream, job: JobId, scratch: &Path, servable: &Servable) -> Result<(), WireError> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = BufWriter::with_capacity(CHUNK_BYTES_MAX + 64 * 1024, stream);
    let corrupt = worker_failpoint(FAILPOINT_CORRUPT_FIRST_CHUNK);
    loop {
        let request: FetchRequest = wire::receive(&mut reader)?;
        if let Some(reason) = refusal(&request, job) {
            wire::send(&mut writer, &FetchReply::Refused { reason })?;
            return Ok(());
        }
        // One open per maps file (a worker has one) per request, not one per map.
        let mut files: HashMap<u64, (PathBuf, File)> = HashMap::new();
        for wanted in &request.maps {
            let on_record = servable.lock().unwrap_or_else(|p| p.into_inner()).get(&wanted.map).copied();
            let range = match on_record {
                Some((attempt, range)) if attempt == wanted.attempt => range,
                _ => {
                    let reason = format!("this worker holds no output of map {} {}", wanted.map, wanted.attempt);
                    wire::send(&mut writer, &FetchReply::Unavailable { map: wanted.map, reason })?;
                    continue;
                }
            };
            let opened = match files.entry(range.file) {
                std::collections::hash_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    let path = maps_file_in(scratch, range.file);
                    match File::open(&path) {
                        Ok(file) => Ok(slot.insert((path, file))),
                        Err(e) => Err(format!("opening {}: {e}", path.display())),
                    }
                }
            };
            let sent =
                opened.and_then(|(path, file)| send_run(&mut writer, file, path, range, wanted.map, &request, corrupt));
            if let Err(reason) = sent {
                wire::send(&mut writer, &FetchReply::Unavailable { map: wanted.map, reason })?;
            }
        }
        writer.flush()?;
    }
}

fn refusal(request: &FetchRequest, job: JobId) -> Option<String> {
    if request.magic != SHUFFLE_MAGIC {
        return Some("not a keel mr fetch request (bad magic)".into());
    }
    if request.protocol_version != PROTOCOL_VERSION {
        return Some(format!(
            "protocol version {} asked, this worker speaks {PROTOCOL_VERSION}; run one keel build everywhere",
            request.protocol_version
        ));
    }
    if request.job != job {
        return Some(format!("this worker works for job {job}, not {}", request.job));
    }
    if request.maps.len() > FETCH_MAPS_PER_REQUEST_MAX || request.partition >= request.partitions {
        return Some(format!(
            "malformed request: {} maps (at most {FETCH_MAPS_PER_REQUEST_MAX}), partition {} of {}",
            request.maps.len(),
            request.partition,
            request.partitions
        ));
    }
    None
}

/// Sends the requested partition's run of the map output at `range` of `file` (opened from `path`).
/// `Err(reason)` before any of it was sent (its index cannot be read or is damaged); an error while sending
/// is the connection's. The run's own blocks are checked by the reducer, which takes damage in them for the
/// map's output lost, as it does an `Unavailable` answer.
fn send_run(
    writer: &mut impl Write,
    file: &File,
    path: &Path,
    range: MapOutputRange,
    map: u32,
    request: &FetchRequest,
    corrupt: bool,
) -> Result<(), String> {
    let segment = locate_partition_in(file, path, range.region, request.partition, request.partitions)
        .map_err(|e| format!("reading map output: {e}"))?;
    let mut sent = 0u64;
    loop {
        let n = (segment.len_bytes - sent).min(CHUNK_BYTES_MAX as u64) as usize;
        let mut data = vec![0u8; n];
        // Failing half way is fine: the reducer takes `Unavailable` at any point as the whole run missing.
        file.read_exact_at(&mut data, segment.offset_bytes + sent)
            .map_err(|e| format!("reading {} at {}: {e}", path.display(), segment.offset_bytes + sent))?;
        let mut chunk = Chunk::new(sent, data);
        if corrupt && !chunk.data.is_empty() && !CORRUPTED_ONCE.swap(true, Ordering::SeqCst) {
            warn!("fail point {FAILPOINT_CORRUPT_FIRST_CHUNK}: flipping a bit of map {map}'s chunk in transit");
            let middle = chunk.data.len() / 2;
            chunk.data[middle] ^= 0x10;
        }
        sent += n as u64;
        let last = sent == segment.len_bytes;
        if wire::send(writer, &FetchReply::Chunk { map, chunk, last }).is_err() {
            return Ok(()); // the connection is gone; the next send (or the reducer) notices
        }
        if last {
            return Ok(());
        }
    }
}

/// Why a fetch failed: the map whose output could not be had, and why (the coordinator logs it and runs
/// that map again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchFailure {
    pub map: u32,
    pub attempt: AttemptId,
    pub reason: String,
}

/// Fetches partition `partition` of each of `maps` (all held by the worker at `address`) and appends each run
/// to `out` from `*position_bytes` on, returning where each run landed (in `maps`' order). Stops at the
/// first map that cannot be had.
pub fn fetch_partitions(
    address: &str,
    job: JobId,
    partition: u32,
    partitions: u32,
    maps: &[HeldOutput],
    out: &mut File,
    position_bytes: &mut u64,
) -> Result<Vec<(u32, Segment)>, FetchFailure> {
    let mut got = Vec::with_capacity(maps.len());
    let Some(first) = maps.first() else { return Ok(got) };
    let fail = |wanted: &HeldOutput, reason: String| FetchFailure { map: wanted.map, attempt: wanted.attempt, reason };
    let connection = connect(address).map_err(|e| fail(first, format!("connecting to worker {address}: {e}")))?;
    let (mut reader, mut writer) = connection;
    for batch in maps.chunks(FETCH_MAPS_PER_REQUEST_MAX) {
        let request = FetchRequest {
            magic: SHUFFLE_MAGIC,
            protocol_version: PROTOCOL_VERSION,
            job,
            partition,
            partitions,
            maps: batch.to_vec(),
        };
        wire::send(&mut writer, &request)
            .map_err(|e| fail(&batch[0], format!("sending a fetch request to worker {address}: {e}")))?;
        for wanted in batch {
            let segment = receive_run(&mut reader, address, wanted, out, *position_bytes)
                .map_err(|reason| fail(wanted, reason))?;
            *position_bytes += segment.len_bytes;
            got.push((wanted.map, segment));
        }
    }
    Ok(got)
}

fn connect(address: &str) -> io::Result<(BufReader<TcpStream>, BufWriter<TcpStream>)> {
    let mut last_error = io::Error::other(format!("{address} resolves to no address"));
    for addr in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(IO_TIMEOUT))?;
                stream.set_write_timeout(Some(IO_TIMEOUT))?;
                return Ok((
                    BufReader::with_capacity(CHUNK_BYTES_MAX + 64 * 1024, stream.try_clone()?),
                    BufWriter::new(stream),
                ));
            }
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// Receives one map's run into `out` at `start`. Every chunk must be the map asked for, continue exactly
/// where the last one ended and match its checksum.
fn receive_run(
    reader: &mut impl io::Read,
    address: &str,
    wanted: &HeldOutput,
    out: &mut File,
    start: u64,
) -> Result<Segment, String> {
    let mut received = 0u64;
    loop {
        let reply: FetchReply = wire::receive(reader).map_err(|e| format!("fetching from worker {address}: {e}"))?;
        match reply {
            FetchReply::Chunk { map, chunk, last } => {
                if map != wanted.map || chunk.offset != received {
                    return Err(format!(
                        "worker {address} sent map {map} at offset {} while map {} at offset {received} was due",
                        chunk.offset, wanted.map
                    ));
                }
                chunk
                    .check()
                    .map_err(|e| format!("from worker {address}, map {} {}: {e}", wanted.map, wanted.attempt))?;
                out.write_all_at(&chunk.data, start + received)
                    .map_err(|e| format!("writing fetched data to local scratch: {e}"))?;
                received += chunk.data.len() as u64;
                if last {
                    return Ok(Segment { offset_bytes: start, len_bytes: received });
                }
            }
            FetchReply::Unavailable { map, reason } => {
                return Err(format!("worker {address} cannot serve map {map}: {reason}"));
            }
            FetchReply::Refused { reason } => return Err(format!("worker {address} refused the fetch: {reason}")),
        }
    }
}

#[cfg(test)]
mod tests;
