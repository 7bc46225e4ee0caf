//! `keel kv serve`: one node of a keel kv cluster as a process. It assembles the parts and moves bytes: the
//! replica (with `DiskStorage` in `--data-dir`) on its own thread, the TCP transport to its peers, and the HTTP
//! API for clients. Nothing here decides anything Raft or the KV service decides.
//!
//! Start-up: lock and check the data directory, recover the WAL (a torn tail is cut with a warning; a damaged
//! record refuses to start, naming the file and offset), open the replica, then listen. Shut-down (SIGTERM or
//! Ctrl-C): stop taking requests, let the replica finish the round it is in (a persist is never cut in half),
//! answer what is pending, close the storage, and exit 0. A storage failure stops the node (fail-stop) with
//! exit code 1: restart it, and it recovers from what is really on disk.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use keel_kv::{Command, KvService, Reply};
use keel_kv_http::{BackendError, Executed, HttpLimits, HttpMetrics, KvBackend, NodeStatus, Role as HttpRole};
use keel_raft::{Config, NodeId, Role};
use keel_replica::{Replica, SnapshotPolicy};
use keel_runtime::{
    DataDir, ExecuteError, PeerMessage, PeerSender, ReplicaHandle, ReplicaMetrics, RuntimeOptions, TimedStorage,
    metrics::peer_labels,
};
use keel_storage::{DiskStorage, StdFs};
use keel_transport::{Transport, TransportConfig};
use prometheus_client::registry::Registry;

/// The Raft log may grow to this much (entries plus per-entry overhead) before the service snapshots and the
/// log is compacted.
pub const SNAPSHOT_LOG_BYTES_DEFAULT: u64 = 64 << 20;

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// This node's id (1, 2, 3...): unique in the cluster, and never reused for another data directory.
    #[arg(long)]
    pub id: NodeId,
    /// Where the node keeps its write-ahead log and snapshots (created if new; locked while the node runs).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Address to accept Raft traffic from peers on [default: 127.0.0.1:(7200 + id)].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address to serve the HTTP API on [default: 127.0.0.1:(7100 + id)]; port 0 picks a free one (printed).
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// The other members, as ID=HOST:PORT (the address this node dials for each), comma-separated.
    /// Empty: a single-node cluster.
    #[arg(long, value_delimiter = ',', value_parser = parse_peer)]
    pub peers: Vec<(NodeId, String)>,
    /// Nodes refuse peers of another cluster; the data directory remembers which cluster it belongs to.
    #[arg(long, default_value = "keel")]
    pub cluster_id: String,
    /// One Raft tick, in milliseconds; the timeouts below are in ticks.
    #[arg(long, default_value_t = 10)]
    pub tick_ms: u64,
    #[arg(long, default_value_t = keel_raft::DEFAULT_HEARTBEAT_INTERVAL_TICKS)]
    pub heartbeat_ticks: u32,
    #[arg(long, default_value_t = keel_raft::DEFAULT_ELECTION_TIMEOUT_TICKS_MIN)]
    pub election_ticks_min: u32,
    #[arg(long, default_value_t = keel_raft::DEFAULT_ELECTION_TIMEOUT_TICKS_MAX)]
    pub election_ticks_max: u32,
    /// Run Figure 2 as written: no PreVote (a rejoining node may depose a working leader).
    #[arg(long)]
    pub no_pre_vote: bool,
    /// Keep leading without hearing from a majority (CheckQuorum off).
    #[arg(long)]
    pub no_check_quorum: bool,
    /// Snapshot and compact once the log holds this many bytes.
    #[arg(long, default_value_t = SNAPSHOT_LOG_BYTES_DEFAULT)]
    pub snapshot_log_bytes: u64,
    /// A client request gets 504 after this long (its outcome then is unknown).
    #[arg(long, default_value_t = 5_000)]
    pub request_timeout_ms: u64,
    /// Threads serving HTTP and peer connections (the replica has a thread of its own besides).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub io_threads: u16,
}

fn parse_peer(text: &str) -> Result<(NodeId, String), String> {
    let (id, address) = text
        .split_once('=')
        .ok_or_else(|| format!("peer {text:?} is not ID=HOST:PORT (for example 2=127.0.0.1:7202)"))?;
    let id: NodeId = id.trim().parse().map_err(|_| format!("peer {text:?}: {id:?} is not a node id (1, 2, 3...)"))?;
    let address = address.trim();
    if id == 0 {
        return Err(format!("peer {text:?}: node ids start at 1"));
    }
    if !address.contains(':') {
        return Err(format!("peer {text:?}: {address:?} has no port (HOST:PORT)"));
    }
    Ok((id, address.to_string()))
}

pub fn default_raft_address(id: NodeId) -> SocketAddr {
    let port = keel_kv_client::LOCAL_RAFT_PORT_BASE.saturating_add(u16::try_from(id).unwrap_or(u16::MAX));
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn default_http_address(id: NodeId) -> SocketAddr {
    let port = keel_kv_client::LOCAL_HTTP_PORT_BASE.saturating_add(u16::try_from(id).unwrap_or(u16::MAX));
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The backend the HTTP API runs commands on: this node's replica.
struct ReplicaBackend {
    handle: Arc<ReplicaHandle<Reply>>,
    request_timeout: Duration,
}

impl KvBackend for ReplicaBackend {
    fn execute(&self, command: Command) -> impl std::future::Future<Output = Result<Executed, BackendError>> + Send {
        let handle = self.handle.clone();
        // A little before the HTTP layer's own deadline, so the replica's answer (a timeout included) is the one
        // the client gets.
        let deadline = tokio::time::Instant::now() + self.request_timeout.saturating_sub(Duration::from_millis(50));
        async move {
            match handle.execute(command.encode(), deadline).await {
                Ok((index, reply)) => Ok(Executed { index, reply }),
                Err(ExecuteError::NoLeader | ExecuteError::NotApplied) => Err(BackendError::NoLeader),
                Err(ExecuteError::Unknown { reason }) => Err(BackendError::Unknown { reason }),
                Err(ExecuteError::TimedOut) => Err(BackendError::TimedOut),
                Err(ExecuteError::Overloaded) => Err(BackendError::Overloaded),
                Err(ExecuteError::Stopped { reason }) => Err(BackendError::Stopped { reason }),
            }
        }
    }

    fn status(&self) -> NodeStatus {
        let status = self.handle.status();
        NodeStatus {
            id: status.id,
            role: match status.role {
                Role::Leader => HttpRole::Leader,
                Role::Follower => HttpRole::Follower,
                Role::Candidate => HttpRole::Candidate,
                Role::PreCandidate => HttpRole::PreCandidate,
            },
            term: status.term,
            leader: status.leader,
            commit_index: status.commit_index,
            applied_index: status.applied_index,
            members: status.members,
        }
    }
}

/// Raft messages and forwarded requests leave through the transport; a full queue drops (counted there).
struct TransportSender(Transport<PeerMessage<Reply>>);

impl PeerSender<PeerMessage<Reply>> for TransportSender {
    fn send(&self, to: NodeId, message: PeerMessage<Reply>) {
        let size_bytes = message.size_hint_bytes();
        if let Err(error) = self.0.send_sized(to, message, size_bytes) {
            tracing::debug!(peer = to, %error, "message not queued");
        }
    }
}

pub fn run(args: ServeArgs) -> Result<()> {
    init_tracing();
    let peers: BTreeMap<NodeId, String> = args.peers.iter().cloned().collect();
    if peers.len() != args.peers.len() {
        bail!("--peers names a node twice; give each peer id once");
    }
    if peers.contains_key(&args.id) {
        bail!("--peers includes this node's own id {}; list only the other members", args.id);
    }
    if args.id == 0 {
        bail!("--id must be 1 or more");
    }
    let members: Vec<NodeId> = std::iter::once(args.id)
        .chain(peers.keys().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();

    let data_dir = DataDir::open(&args.data_dir, &args.cluster_id, args.id)?;
    let storage = DiskStorage::open(StdFs, data_dir.raft_dir()).with_context(|| {
        format!("node {}: cannot recover its state from {}", args.id, data_dir.raft_dir().display())
    })?;
    if let Some(torn) = &storage.recovery().torn_tail {
        tracing::warn!(file = %torn.path.display(), offset = torn.offset, "recovered: cut an incomplete WAL record a crash left");
    }

    let mut registry = Registry::default();
    let metrics = ReplicaMetrics::register(&mut registry);
    let http_metrics = HttpMetrics::register(&mut registry);
    let storage = TimedStorage::new(storage, metrics.fsync_seconds.clone(), metrics.snapshot_bytes_last.clone());

    let mut config = Config::new(args.id, members.clone(), seed_for(args.id));
    config.pre_vote = !args.no_pre_vote;
    config.check_quorum = !args.no_check_quorum;
    config.heartbeat_interval_ticks = args.heartbeat_ticks;
    config.election_timeout_ticks_min = args.election_ticks_min;
    config.election_timeout_ticks_max = args.election_ticks_max;
    let replica =
        Replica::open(config, KvService::new(), storage, SnapshotPolicy::RaftStateBytes(args.snapshot_log_bytes))
            .map_err(|e| anyhow!("{e}"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.io_threads))
        .enable_all()
        .thread_name("keel-kv")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, data_dir, replica, peers, registry, metrics, http_metrics))
}

type KvReplica = Replica<KvService, TimedStorage<DiskStorage<StdFs>>>;

async fn serve(
    args: ServeArgs,
    data_dir: DataDir,
    replica: KvReplica,
    peers: BTreeMap<NodeId, String>,
    registry: Registry,
    metrics: ReplicaMetrics,
    http_metrics: HttpMetrics,
) -> Result<()> {
    let raft_address = args.listen.unwrap_or_else(|| default_raft_address(args.id));
    let http_address = args.http.unwrap_or_else(|| default_http_address(args.id));
    let raft_listener = tokio::net::TcpListener::bind(raft_address)
        .await
        .with_context(|| format!("cannot listen for peers on {raft_address} (--listen): is another node using it?"))?;
    let http_listener = tokio::net::TcpListener::bind(http_address)
        .await
        .with_context(|| format!("cannot serve HTTP on {http_address} (--http): is another node using it?"))?;
    let http_bound = http_listener.local_addr().context("HTTP listener address")?;
    let raft_bound = raft_listener.local_addr().context("Raft listener address")?;

    let transport_config = TransportConfig::new(args.cluster_id.clone(), args.id, peers.clone());
    let (transport, mut inbound) =
        Transport::start(transport_config, raft_listener).map_err(|e| anyhow!("cannot start the transport: {e}"))?;
    let options = RuntimeOptions { tick_interval_ms: args.tick_ms, ..RuntimeOptions::default() };
    let handle = Arc::new(
        ReplicaHandle::spawn(replica, TransportSender(transport.clone()), options, metrics.clone())
            .context("cannot start the replica thread")?,
    );

    // Peer messages in.
    let pump = {
        let handle = handle.clone();
        tokio::spawn(async move {
            while let Some((from, message)) = inbound.recv().await {
                handle.deliver(from, message);
            }
        })
    };
    // The transport's counters, copied into /metrics every second.
    let stats = {
        let transport = transport.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut seen: BTreeMap<NodeId, keel_transport::PeerStats> = BTreeMap::new();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                for (peer, now) in transport.stats() {
                    let before = seen.get(&peer).cloned().unwrap_or_default();
                    let labels = peer_labels(peer);
                    for (family, field) in PEER_COUNTERS {
                        family(&metrics).get_or_create(&labels).inc_by(field(&now).saturating_sub(field(&before)));
                    }
                    seen.insert(peer, now);
                }
            }
        })
    };

    let backend = Arc::new(ReplicaBackend {
        handle: handle.clone(),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
    });
    let limits = HttpLimits { request_timeout_ms: args.request_timeout_ms, ..HttpLimits::default() };
    let router = keel_kv_http::router(backend, http_metrics, Arc::new(registry), limits);

    // Why the node stops: a signal (clean, exit 0) or the replica stopping on its own (a storage error: exit 1).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(None::<Result<(), String>>);
    {
        let handle = handle.clone();
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            let reason = handle.stopped().await;
            stop_tx.send_replace(Some(Err(reason)));
        });
    }
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            let signal = shutdown_signal().await;
            tracing::info!(signal, "shutting down");
            stop_tx.send_replace(Some(Ok(())));
        });
    }
    let shutdown = {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|s| s.is_some()).await;
        }
    };

    println!(
        "keel kv: node {} of cluster {:?} ready: http://{http_bound} (raft {raft_bound}, data {})",
        args.id,
        args.cluster_id,
        data_dir.path().display()
    );
    let served = keel_kv_http::serve(http_listener, router, shutdown).await;

    // Stop the replica (on a blocking thread: it joins the replica thread), then the transport.
    let stopper = handle.clone();
    tokio::task::spawn_blocking(move || stopper.shutdown()).await.context("stopping the replica")?;
    pump.abort();
    stats.abort();
    transport.shutdown().await;
    drop(data_dir);
    served.context("the HTTP server failed")?;
    let outcome = stop_rx.borrow().clone();
    match outcome {
        Some(Err(reason)) if reason != "shut down" => {
            bail!("node {} stopped: {reason}; restart it to recover from its data directory", args.id)
        }
        _ => {
            println!("keel kv: node {} stopped cleanly", args.id);
            Ok(())
        }
    }
}

type PeerCounter = prometheus_client::metrics::family::Family<
    keel_runtime::metrics::PeerLabels,
    prometheus_client::metrics::counter::Counter,
>;

/// A per-peer counter in `/metrics`, and the transport statistic it follows.
type PeerCounterSource = (fn(&ReplicaMetrics) -> &PeerCounter, fn(&keel_transport::PeerStats) -> u64);

const PEER_COUNTERS: [PeerCounterSource; 5] = [
    (|m| &m.messages_sent, |s| s.messages_sent),
    (|m| &m.bytes_sent, |s| s.bytes_sent),
    (|m| &m.messages_received, |s| s.messages_received),
    (|m| &m.bytes_received, |s| s.bytes_received),
    (|m| &m.messages_dropped, |s| s.dropped_queue_full),
];

/// Distinct per node, so nodes started together do not time out in lockstep.
fn seed_for(id: NodeId) -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id())
}

async fn shutdown_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(%error, "cannot watch for SIGTERM; Ctrl-C still stops the node");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// Logs to stderr; `KEEL_LOG` (e.g. `debug`, `keel_runtime=debug`) overrides the default `info`.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
