//! Where `keel kv local` puts its nodes, so every tool agrees without being told: node N (1-based) serves HTTP on
//! `127.0.0.1:(LOCAL_HTTP_PORT_BASE + N)` and Raft on `127.0.0.1:(LOCAL_RAFT_PORT_BASE + N)`.

/// HTTP port of local node N = this + N. 7100 is unassigned by IANA and clear of common development servers.
pub const LOCAL_HTTP_PORT_BASE: u16 = 7100;

/// Raft (peer) port of local node N = this + N: a separate hundred, so HTTP and Raft ports never meet.
pub const LOCAL_RAFT_PORT_BASE: u16 = 7200;

/// Nodes in a local cluster unless told otherwise: the smallest cluster that survives a failure.
pub const LOCAL_NODES_DEFAULT: u64 = 3;

/// Most nodes a local cluster may have: node numbers must stay within their hundred of ports.
pub const LOCAL_NODES_MAX: u64 = 99;

/// The HTTP endpoints of the default local cluster, comma-separated (`--endpoints`' default in the CLI); equal to
/// `local_endpoints(LOCAL_NODES_DEFAULT).join(",")`.
pub const LOCAL_ENDPOINTS_DEFAULT: &str = "http://127.0.0.1:7101,http://127.0.0.1:7102,http://127.0.0.1:7103";

/// The HTTP address of local node `node` (1-based).
pub fn local_http_addr(node: u64) -> std::net::SocketAddr {
    local_addr(LOCAL_HTTP_PORT_BASE, node)
}

/// The Raft address of local node `node` (1-based).
pub fn local_raft_addr(node: u64) -> std::net::SocketAddr {
    local_addr(LOCAL_RAFT_PORT_BASE, node)
}

fn local_addr(base: u16, node: u64) -> std::net::SocketAddr {
    assert!((1..=LOCAL_NODES_MAX).contains(&node), "local nodes are numbered 1..={LOCAL_NODES_MAX}, not {node}");
    // In range by the assertion: at most base + 99.
    let port = base + node as u16;
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// The HTTP endpoints of local nodes 1..=`nodes`, as `http://127.0.0.1:PORT`.
pub fn local_endpoints(nodes: u64) -> Vec<String> {
    (1..=nodes).map(|node| format!("http://{}", local_http_addr(node))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_layout() {
        assert_eq!(local_endpoints(LOCAL_NODES_DEFAULT).join(","), LOCAL_ENDPOINTS_DEFAULT);
        assert_eq!(local_raft_addr(2).to_string(), "127.0.0.1:7202");
        assert_eq!(local_endpoints(0), Vec::<String>::new());
    }
}
