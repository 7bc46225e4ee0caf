//! `keel kv ...`: the key/value store's client commands over its HTTP API (through `keel-kv-client`).
use std::io::{Read, Write};

use anyhow::Context;
use clap::{Args, Subcommand};
use keel_kv_client::{Client, ClientOptions, DEADLINE_MS_DEFAULT, Error, LOCAL_ENDPOINTS_DEFAULT};

/// Add a command: a variant here, an `Args` struct, an arm in `run`.
#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Print a key's value to stdout, exactly as stored (no newline added).
    Get(GetArgs),
    /// Set a key's value (from the argument, or stdin if none); prints the write's index.
    Put(PutArgs),
    /// Append to a key's value (creating the key); prints the write's index.
    Append(AppendArgs),
    /// Delete a key; prints the index at which it was deleted.
    Del(DelArgs),
    /// List keys in byte order: key, last-modified index and value size in bytes, tab-separated.
    List(ListArgs),
    /// Show every node's status: role, term, leader, commit and applied indexes.
    Status(StatusArgs),
    /// Run one node of a cluster (Raft over TCP to its peers, the HTTP API for clients, data on disk).
    Serve(crate::kv_serve::ServeArgs),
    /// Run a whole cluster on this machine (one `keel kv serve` process per node); Ctrl-C stops it.
    Local(crate::kv_local::LocalArgs),
    /// Load-test a cluster (or etcd, with the same load) and show throughput and latency; or time failovers.
    Bench(crate::kv_bench::BenchArgs),
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The nodes' HTTP endpoints, comma-separated (any node serves every request).
    #[arg(long, env = "KEEL_ENDPOINTS", value_delimiter = ',', default_value = LOCAL_ENDPOINTS_DEFAULT)]
    endpoints: Vec<String>,
    /// Give up on the operation after this many milliseconds (retries across nodes included).
    #[arg(long, default_value_t = DEADLINE_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..))]
    deadline_ms: u64,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    key: String,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    key: String,
    /// The value; read from stdin when absent.
    value: Option<String>,
    /// Write only if the key's last-modified index is this (0: only if the key does not exist).
    #[arg(long)]
    if_index: Option<u64>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    key: String,
    /// What to append; read from stdin when absent.
    suffix: Option<String>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct DelArgs {
    key: String,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only keys starting with this.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Only keys after this one (the last key of the previous page).
    #[arg(long)]
    after: Option<String>,
    /// At most this many keys (the service returns at most 1000 per page).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub fn run(command: KvCommand) -> anyhow::Result<()> {
    let command = match command {
        KvCommand::Serve(args) => return crate::kv_serve::run(args),
        KvCommand::Local(args) => return crate::kv_local::run(args),
        KvCommand::Bench(args) => return crate::kv_bench::run(args),
        client => client,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(run_async(command))
}

async fn run_async(command: KvCommand) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match command {
        KvCommand::Get(args) => {
            let mut client = connect(&args.cluster)?;
            match client.get(&args.key).await.map_err(explain)? {
                Some(versioned) => stdout.write_all(versioned.value.as_bytes())?,
                None => anyhow::bail!("no key {:?}: nothing is stored under it", args.key),
            }
        }
        KvCommand::Put(args) => {
            let mut client = connect(&args.cluster)?;
            let value = value_or_stdin(args.value)?;
            let index = match args.if_index {
                Some(expected_index) => client.put_if(&args.key, &value, expected_index).await,
                None => client.put(&args.key, &value).await,
            }
            .map_err(explain)?;
            writeln!(stdout, "{index}")?;
        }
        KvCommand::Append(args) => {
            let mut client = connect(&args.cluster)?;
            let suffix = value_or_stdin(args.suffix)?;
            let index = client.append(&args.key, &suffix).await.map_err(explain)?;
            writeln!(stdout, "{index}")?;
        }
        KvCommand::Del(args) => {
            let mut client = connect(&args.cluster)?;
            let deleted = client.delete(&args.key).await.map_err(explain)?;
            if deleted.deleted {
                writeln!(stdout, "{}", deleted.index)?;
            } else {
                eprintln!("no key {:?}: nothing to delete", args.key);
            }
        }
        KvCommand::List(args) => {
            let mut client = connect(&args.cluster)?;
            let page = client.list(&args.prefix, args.after.as_deref(), args.limit).await.map_err(explain)?;
            for listed in &page.keys {
                writeln!(stdout, "{}\t{}\t{}", listed.key, listed.index, listed.size)?;
            }
            if let (true, Some(last)) = (page.more, page.keys.last()) {
                eprintln!("more keys follow: continue with --after {:?}", last.key);
            }
        }
        KvCommand::Status(args) => {
            let client = connect(&args.cluster)?;
            status_table(&client, &mut stdout).await?;
        }
        // `run` hands these to their own modules before a client runtime exists.
        KvCommand::Serve(_) | KvCommand::Local(_) | KvCommand::Bench(_) => {
            anyhow::bail!("`keel kv serve`, `keel kv local` and `keel kv bench` are not client commands")
        }
    }
    stdout.flush()?;
    Ok(())
}

fn connect(cluster: &ClusterArgs) -> anyhow::Result<Client> {
    let options = ClientOptions { deadline_ms: cluster.deadline_ms, ..ClientOptions::default() };
    Client::new(cluster.endpoints.clone(), options).map_err(explain)
}

fn value_or_stdin(value: Option<String>) -> anyhow::Result<String> {
    if let Some(value) = value {
        return Ok(value);
    }
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).context("could not read the value from stdin")?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "the value on stdin is not UTF-8 (invalid byte at offset {}): keel kv stores text; encode binary data \
             (base64, say) first",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The client's error, with what to do about it from the command line.
fn explain(error: Error) -> anyhow::Error {
    match &error {
        Error::Unreachable { endpoints, detail, .. } => anyhow::anyhow!(
            "no node answered at {endpoints}: is the cluster running? start one with `keel kv local`, or point \
             --endpoints (or KEEL_ENDPOINTS) at a running one (last error: {detail}){}",
            if error.is_outcome_unknown() { "; the write may or may not have been applied" } else { "" }
        ),
        Error::NoEndpoints | Error::BadEndpoint { .. } => {
            anyhow::anyhow!("{error}\n--endpoints takes http://host:port addresses, comma-separated")
        }
        _ => anyhow::Error::new(error),
    }
}

async fn status_table(client: &Client, out: &mut impl Write) -> anyhow::Result<()> {
    let mut rows = vec![["ENDPOINT", "ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "MEMBERS"].map(String::from)];
    let mut answered = 0;
    let endpoints = client.endpoints();
    for endpoint in &endpoints {
        match client.status(endpoint).await {
            Ok(status) => {
                answered += 1;
                let members = status.members.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
                let leader = status.leader.map_or_else(|| "-".to_string(), |leader| leader.to_string());
                rows.push([
                    endpoint.clone(),
                    status.id.to_string(),
                    status.role,
                    status.term.to_string(),
                    leader,
                    status.commit_index.to_string(),
                    status.applied_index.to_string(),
                    members,
                ]);
            }
            Err(error) => {
                let why = match error {
                    Error::Unreachable { detail, .. } => detail,
                    other => other.to_string(),
                };
                let mut row = [(); 8].map(|()| "-".to_string());
                row[0] = endpoint.clone();
                row[2] = "unreachable".to_string();
                row[7] = why;
                rows.push(row);
            }
        }
    }
    let widths: Vec<usize> = (0..8).map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0)).collect();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    if answered == 0 {
        anyhow::bail!(
            "no node answered at {}: is the cluster running? start one with `keel kv local`, or point --endpoints \
             (or KEEL_ENDPOINTS) at a running one",
            endpoints.join(", ")
        );
    }
    Ok(())
}
