//! The demo's keel kv cluster: one `keel kv serve` process per node (this very binary, `current_exe`), on free
//! loopback ports, with data directories in the demo's temp dir. Each node keeps its ports for the whole demo,
//! so a restarted node is found where it was, by its peers and by the clients.
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use keel_kv_client::{Client, ClientOptions, NodeStatus};

use super::processes::{Processes, tail_of, wait_for_line};

/// A node prints its ready line within this time: it recovers a WAL of a few seconds of load and binds two
/// ports, which takes milliseconds; the rest is room for a busy two-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// A status request to one node: on loopback an answer takes well under a millisecond, so a node that has not
/// answered in a second is down or stalled; the poll moves on.
const STATUS_ATTEMPT_TIMEOUT_MS: u64 = 1_000;
const STATUS_CONNECT_TIMEOUT_MS: u64 = 300;
/// A clean stop (SIGTERM) finishes the round in progress and closes the WAL: well under a second.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct KvNode {
    pub id: u64,
    pub http: SocketAddr,
    pub raft: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub running: bool,
    pub pid: Option<u32>,
}

impl KvNode {
    pub fn name(&self) -> String {
        format!("node {}", self.id)
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.http)
    }
}

pub struct KvCluster {
    pub nodes: Vec<KvNode>,
    exe: PathBuf,
    /// Only for `/v1/status` (one attempt per call, short timeouts); shared by the concurrent polls.
    status_client: Arc<Client>,
}

/// Ports nobody listens on right now: bound to port 0, read back, released. Another process could take one in
/// between; the node then fails to start, and the demo says which port it could not bind.
fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()
        .context("cannot bind a free loopback port (127.0.0.1:0)")?;
    listeners.iter().map(|l| Ok(l.local_addr().context("a bound port's address")?.port())).collect()
}

impl KvCluster {
    /// A cluster of `size` nodes under `dir`, not started.
    pub fn plan(exe: &Path, dir: &Path, size: u64) -> Result<KvCluster> {
        let ports = free_ports(2 * size as usize)?;
        let nodes = (1..=size)
            .zip(ports.chunks(2))
            .map(|(id, pair)| KvNode {
                id,
                http: SocketAddr::from(([127, 0, 0, 1], pair[0])),
                raft: SocketAddr::from(([127, 0, 0, 1], pair[1])),
                data_dir: dir.join(format!("node-{id}")),
                log: dir.join(format!("node-{id}.log")),
                running: false,
                pid: None,
            })
            .collect();
        let options = ClientOptions {
            attempt_timeout_ms: STATUS_ATTEMPT_TIMEOUT_MS,
            connect_timeout_ms: STATUS_CONNECT_TIMEOUT_MS,
            ..ClientOptions::default()
        };
        let status_client = Client::new(vec!["http://127.0.0.1:1".to_string()], options)
            .map_err(|e| anyhow::anyhow!("cannot make the status client: {e}"))?;
        Ok(KvCluster { nodes, exe: exe.to_path_buf(), status_client: Arc::new(status_client) })
    }

    pub fn node(&self, id: u64) -> &KvNode {
        &self.nodes[(id - 1) as usize]
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(KvNode::endpoint).collect()
    }

    fn serve_args(&self, id: u64) -> Vec<String> {
        let node = self.node(id);
        let peers: Vec<String> =
            self.nodes.iter().filter(|p| p.id != id).map(|p| format!("{}={}", p.id, p.raft)).collect();
        let mut args: Vec<String> = ["kv", "serve", "--id"].iter().map(|s| s.to_string()).collect();
        args.push(id.to_string());
        args.push("--data-dir".into());
        args.push(node.data_dir.display().to_string());
        args.push("--listen".into());
        args.push(node.raft.to_string());
        args.push("--http".into());
        args.push(node.http.to_string());
        args.push("--cluster-id".into());
        args.push("keel-demo".into());
        if !peers.is_empty() {
            args.push("--peers".into());
            args.push(peers.join(","));
        }
        args
    }

    /// Starts node `id` (again) and waits for its ready line.
    pub async fn start_node(&mut self, id: u64, processes: &mut Processes) -> Result<()> {
        let args = self.serve_args(id);
        let name = self.node(id).name();
        let log = self.node(id).log.clone();
        let mut spawned = processes.spawn(&name, &self.exe, &args, &log)?;
        let node = &mut self.nodes[(id - 1) as usize];
        node.running = true;
        node.pid = Some(spawned.pid);
        if let Err(error) = wait_for_line(&mut spawned.stdout_lines, "ready: http://", READY_TIMEOUT, &name).await {
            bail!("{error:#}{}", tail_of(&log, &name));
        }
        Ok(())
    }

    /// SIGKILL: the node gets no chance to clean up or say goodbye.
    pub fn kill9(&mut self, id: u64, processes: &mut Processes) -> Result<()> {
        let name = self.node(id).name();
        processes.kill9(&name)?;
        let node = &mut self.nodes[(id - 1) as usize];
        node.running = false;
        node.pid = None;
        Ok(())
    }

    /// SIGTERM to every running node (each stops cleanly), and waits for each.
    pub async fn stop_all(&mut self, processes: &mut Processes) -> Result<()> {
        for node in &mut self.nodes {
            if node.running {
                node.running = false;
                let name = node.name();
                let status = processes.terminate(&name, STOP_TIMEOUT).await?;
                if !status.success() {
                    bail!("{name} did not stop cleanly ({status}){}", tail_of(&node.log, &name));
                }
            }
        }
        Ok(())
    }

    /// `/v1/status` of node `id`, or `None` if it does not answer (down, starting, stalled).
    pub async fn status(&self, id: u64) -> Option<NodeStatus> {
        self.status_client.status(&self.node(id).endpoint()).await.ok()
    }

    /// Polls the running nodes (all at once) every `poll` until one reports itself leader; returns its status
    /// and when the round of requests that found it was sent. The node became leader before that instant plus
    /// a fraction of a millisecond, and after the previous round: so a time measured to it is at most one
    /// `poll` plus one round trip too long.
    pub async fn wait_for_leader(&self, limit: Duration, poll: Duration) -> Result<(NodeStatus, Instant)> {
        let until = Instant::now() + limit;
        loop {
            let sent = Instant::now();
            let mut round = tokio::task::JoinSet::new();
            for node in self.nodes.iter().filter(|n| n.running) {
                let client = self.status_client.clone();
                let endpoint = node.endpoint();
                round.spawn(async move { client.status(&endpoint).await.ok() });
            }
            while let Some(answer) = round.join_next().await {
                if let Ok(Some(status)) = answer
                    && status.role == "leader"
                {
                    return Ok((status, sent));
                }
            }
            if Instant::now() >= until {
                bail!(
                    "no node reported itself leader within {} s (polled /v1/status of every running node){}",
                    limit.as_secs(),
                    self.logs()
                );
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// The tail of every node's log, for an error message.
    pub fn logs(&self) -> String {
        self.nodes.iter().map(|n| tail_of(&n.log, &n.name())).collect()
    }
}
