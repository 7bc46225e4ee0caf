//! `keel kv serve` as real processes on loopback: crashes (kill -9) of every node, clean shutdown (SIGTERM), a
//! torn WAL tail, a damaged WAL record, a peer of another cluster, two processes on one data directory, and
//! hostile HTTP against a running node.
mod kv_support;

use std::time::Duration;

use kv_support::{Cluster, get_value, put_retrying, raw, request, run_keel};

fn wal_segments(data_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut segments: Vec<_> = std::fs::read_dir(data_dir.join("raft"))
        .expect("the raft directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("wal-")))
        .collect();
    segments.sort();
    segments
}

#[test]
fn every_node_killed_and_restarted_keeps_every_acknowledged_write() {
    let mut cluster = Cluster::start(3);
    for i in 0..30u64 {
        let via = cluster.node(i % 3 + 1).http;
        let response = put_retrying(via, &format!("key-{i}"), &format!("value-{i}"), &[]);
        assert_eq!(response.status, 200, "{response:?}");
    }
    for id in 1..=3 {
        cluster.kill9(id);
    }
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.wait_for_leader(Duration::from_secs(20));
    for i in 0..30u64 {
        let via = cluster.node(3 - i % 3).http;
        let response = get_value(via, &format!("key-{i}")).expect("a read after the restart");
        assert_eq!((response.status, response.text()), (200, format!("value-{i}")), "key-{i}\n{}", cluster.logs());
    }
}

#[test]
fn sigterm_stops_a_node_cleanly_and_it_comes_back_with_its_data() {
    let mut cluster = Cluster::start(1);
    let http = cluster.node(1).http;
    assert_eq!(put_retrying(http, "greeting", "hello", &[]).status, 200);
    let status = cluster.terminate(1);
    assert!(status.success(), "SIGTERM should exit 0, got {status:?}\n{}", cluster.logs());
    cluster.start_node(1);
    let response = get_value(http, "greeting").expect("a read after the restart");
    assert_eq!((response.status, response.text()), (200, "hello".to_string()));
}

#[test]
fn a_torn_wal_tail_is_cut_at_start_and_nothing_acknowledged_is_lost() {
    let mut cluster = Cluster::start(1);
    let http = cluster.node(1).http;
    for i in 0..10 {
        assert_eq!(put_retrying(http, &format!("k{i}"), "v", &[]).status, 200);
    }
    cluster.kill9(1);
    // A write the crash cut short: its bytes never reached the disk, the file's new length did (zeros).
    let last = wal_segments(&cluster.node(1).data_dir).pop().expect("a WAL segment");
    let mut bytes = std::fs::read(&last).expect("read the segment");
    bytes.extend_from_slice(&[0u8; 300]);
    std::fs::write(&last, &bytes).expect("tear the tail");
    cluster.start_node(1);
    let log = std::fs::read_to_string(&cluster.node(1).log).expect("log");
    assert!(log.contains("incomplete record"), "the torn tail was not reported:\n{log}");
    for i in 0..10 {
        let response = get_value(http, &format!("k{i}")).expect("a read");
        assert_eq!(response.status, 200, "k{i} lost\n{}", cluster.logs());
    }
}

#[test]
fn a_damaged_wal_record_refuses_to_start_with_the_file_and_offset() {
    let mut cluster = Cluster::start(1);
    let http = cluster.node(1).http;
    for i in 0..40 {
        assert_eq!(put_retrying(http, &format!("k{i}"), &"v".repeat(100), &[]).status, 200);
    }
    assert_eq!(cluster.terminate(1).code(), Some(0));
    let last = wal_segments(&cluster.node(1).data_dir).pop().expect("a WAL segment");
    let mut bytes = std::fs::read(&last).expect("read the segment");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&last, &bytes).expect("damage a record");
    let (status, _stdout, stderr) = run_keel(&cluster.serve_args(1), Duration::from_secs(20));
    assert!(!status.success(), "a node with a damaged WAL started");
    let file_name = last.file_name().and_then(|n| n.to_str()).expect("name").to_string();
    assert!(stderr.contains(&file_name), "the error does not name the file: {stderr}");
    assert!(stderr.contains("offset"), "the error does not give the offset: {stderr}");
}

#[test]
fn a_second_process_on_the_same_data_directory_is_refused() {
    let cluster = Cluster::start(1);
    let mut args = cluster.serve_args(1);
    // Other ports, same directory.
    let ports = kv_support::free_ports(2);
    for (flag, port) in [("--listen", ports[0]), ("--http", ports[1])] {
        let at = args.iter().position(|a| a == flag).expect("flag") + 1;
        args[at] = format!("127.0.0.1:{port}");
    }
    let (status, _stdout, stderr) = run_keel(&args, Duration::from_secs(20));
    assert!(!status.success());
    assert!(stderr.contains("in use by another keel process"), "{stderr}");
}

#[test]
fn a_node_of_another_cluster_is_refused_and_changes_nothing() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    // A stranger: cluster "other", claiming to be node 3, dialing the cluster's nodes 1 and 2.
    let mut stranger = Cluster::new(3);
    stranger.cluster_id = "other".into();
    for (mine, theirs) in stranger.nodes.iter_mut().zip(&cluster.nodes) {
        if mine.id != 3 {
            mine.raft = theirs.raft;
        }
    }
    stranger.start_node(3);
    std::thread::sleep(Duration::from_secs(2)); // long enough for several election timeouts of the stranger
    let status = stranger.status(3).expect("the stranger's status");
    assert_eq!(status["leader"], serde_json::Value::Null, "the stranger found a leader: {status}");
    assert_eq!(status["term"].as_u64(), Some(0), "the stranger won PreVotes from the cluster: {status}");
    // The cluster refused it, said why, and still serves.
    let logs = cluster.logs();
    assert!(
        logs.contains(r#"cluster id \"other\" is not this node's"#)
            || logs.contains(r#"cluster id "other" is not this node's"#),
        "no node logged why it refused the stranger:\n{logs}"
    );
    assert_eq!(put_retrying(cluster.node(leader).http, "after", "stranger", &[]).status, 200);
}

#[test]
fn hostile_http_gets_4xx_and_the_node_keeps_serving() {
    let cluster = Cluster::start(1);
    let http = cluster.node(1).http;
    assert_eq!(put_retrying(http, "k", "v", &[]).status, 200);
    let garbage = raw(http, b"\x16\x03\x01garbage garbage\r\n\r\n").map(|r| r.status).unwrap_or(400);
    assert!((400..500).contains(&garbage), "garbage got {garbage}");
    let big_body = vec![b'x'; 3 << 20];
    let oversized = request(http, "PUT", "/v1/kv/big", &[], &big_body).map(|r| r.status);
    assert!(matches!(oversized, Ok(413) | Err(_)), "an oversized body got {oversized:?}");
    let long_key = "k".repeat(100_000);
    let status = request(http, "GET", &format!("/v1/kv/{long_key}"), &[], b"").map(|r| r.status).unwrap_or(431);
    assert!((400..500).contains(&status), "an oversized key got {status}");
    assert_eq!(request(http, "PATCH", "/v1/kv/k", &[], b"").expect("PATCH").status, 405);
    assert_eq!(
        request(http, "PUT", "/v1/kv/k", &[("Keel-Seq", "abc"), ("Keel-Client-Id", "1")], b"v")
            .expect("bad header")
            .status,
        400
    );
    // The node still serves.
    let response = get_value(http, "k").expect("a read after the abuse");
    assert_eq!((response.status, response.text()), (200, "v".to_string()));
}
