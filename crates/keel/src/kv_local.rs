//! `keel kv local`: a whole keel kv cluster on this machine in one command. It starts `keel kv serve` once per
//! node as child processes (the very processes you would run on separate machines), on the well-known local
//! ports that `keel kv get/put/...` try by default, with data directories kept between runs. Each node's output
//! is shown prefixed with its id. Ctrl-C (or SIGTERM) stops every node cleanly; a node that dies is reported,
//! and the others keep running (a good way to watch a failover).
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use keel_raft::NodeId;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::kv_serve::{default_http_address, default_raft_address};

/// The cluster id `keel kv local` gives its nodes.
pub const LOCAL_CLUSTER_ID: &str = "keel-local";

#[derive(clap::Args, Debug, Clone)]
pub struct LocalArgs {
    /// How many nodes (1 to 9; 3 tolerates one failure, 5 tolerates two).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Where the nodes keep their data, one directory each [default: $XDG_DATA_HOME/keel/local-cluster, or
    /// ~/.local/share/keel/local-cluster]. Kept between runs: the cluster comes back with its data.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Start from empty data directories (deletes the old ones first).
    #[arg(long)]
    pub fresh: bool,
}

fn default_data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("keel").join("local-cluster")
}

pub fn run(args: LocalArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("async runtime")?;
    runtime.block_on(local(args))
}

async fn local(args: LocalArgs) -> Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    if args.fresh && data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)
            .with_context(|| format!("cannot remove {} for --fresh", data_dir.display()))?;
    }
    let exe = std::env::current_exe().context("cannot find the keel binary to start the nodes with")?;
    let ids: Vec<NodeId> = (1..=args.nodes).collect();
    let mut children: Vec<(NodeId, Child)> = Vec::new();
    for &id in &ids {
        let peers: Vec<String> =
            ids.iter().filter(|&&p| p != id).map(|&p| format!("{p}={}", default_raft_address(p))).collect();
        let mut command = Command::new(&exe);
        command
            .arg("kv")
            .arg("serve")
            .arg("--id")
            .arg(id.to_string())
            .arg("--data-dir")
            .arg(data_dir.join(format!("node-{id}")))
            .arg("--listen")
            .arg(default_raft_address(id).to_string())
            .arg("--http")
            .arg(default_http_address(id).to_string())
            .arg("--cluster-id")
            .arg(LOCAL_CLUSTER_ID)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if !peers.is_empty() {
            command.arg("--peers").arg(peers.join(","));
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                stop_all(&mut children).await;
                bail!("cannot start node {id} ({}): {error}", exe.display());
            }
        };
        prefix_output(id, &mut child);
        children.push((id, child));
    }
    let endpoints: Vec<String> = ids.iter().map(|&id| format!("http://{}", default_http_address(id))).collect();
    println!("keel kv local: {} nodes, data in {}", args.nodes, data_dir.display());
    println!("  endpoints: {}", endpoints.join(","));
    println!("  try, in another terminal:  keel kv put greeting hello && keel kv get greeting && keel kv status");
    println!("  Ctrl-C stops every node (their data stays for the next run; --fresh starts empty)");

    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("SIGTERM handler")?;
    let mut running = children.len();
    let mut exited = vec![false; children.len()];
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                for (slot, (id, child)) in children.iter_mut().enumerate() {
                    if exited[slot] {
                        continue;
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        exited[slot] = true;
                        running -= 1;
                        eprintln!("keel kv local: node {id} exited ({status}); {running} still running");
                    }
                }
                if running == 0 {
                    bail!("every node has exited; see their output above");
                }
            }
        }
    }
    println!("keel kv local: stopping {} nodes", running);
    stop_all(&mut children).await;
    Ok(())
}

/// SIGTERM to every node (each shuts down cleanly), then waits; a node still running after 10 s is killed.
async fn stop_all(children: &mut [(NodeId, Child)]) {
    for (_, child) in children.iter() {
        if let Some(pid) = child.id() {
            // SAFETY: kill(2) on the pid of a child we started and have not reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
    }
    for (id, child) in children.iter_mut() {
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!("keel kv local: node {id} did not stop within 10 s; killing it");
                let _ = child.kill().await;
            }
        }
    }
}

/// Copies a child's stdout and stderr to ours, each line prefixed with its node id.
fn prefix_output(id: NodeId, child: &mut Child) {
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                println!("[node {id}] {line}");
            }
        });
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[node {id}] {line}");
            }
        });
    }
}
