//! The server loop: accepts connections and serves each with hyper's HTTP/1 under the limits that keep one
//! hostile client from hurting the others (a header read timeout, a bound on the head's size and on open
//! connections). `axum::serve` sets none of these, hence this loop.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use crate::limits::HttpLimits;
use crate::stall_guard::StallGuard;

/// After a failed `accept` (out of file descriptors, say), wait this long before the next: retrying at once
/// would spin on the same error.
const ACCEPT_ERROR_PAUSE_MS: u64 = 50;

/// Serves `router` on `listener` with the default [`HttpLimits`] until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, router, &HttpLimits::default(), shutdown).await
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets open connections finish
/// the request they are on for up to `limits.shutdown_grace_ms`, drops the rest, and returns.
///
/// Per connection: the head must arrive within `header_read_timeout_ms` (else the connection is closed) and be at
/// most `header_bytes_max` bytes with at most `headers_max` headers (else 431); malformed requests get 400 from
/// hyper; a connection whose writes make no progress for `write_stall_timeout_ms` (a client that does not read its
/// responses) is closed. At most `connections_max` connections are open: one more is closed at once. Failed
/// accepts are logged and retried: they never end the loop.
pub async fn serve_with_limits(
    listener: TcpListener,
    router: Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    assert!(limits.connections_max > 0, "connections_max must be at least 1");
    let connection_permits = Arc::new(Semaphore::new(limits.connections_max));
    let (closing_sender, closing) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout())
        .max_header_size(limits.header_bytes_max)
        .max_buf_size(limits.header_bytes_max_effective())
        .max_headers(limits.headers_max)
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connections so the set stays as small as the open connections.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accepting an HTTP connection failed; retrying");
                        tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)).await;
                        continue;
                    }
                };
                let Ok(permit) = connection_permits.clone().try_acquire_owned() else {
                    let connections_max = limits.connections_max;
                    tracing::warn!(%peer, connections_max, "too many open connections: closing this one");
                    continue;
                };
                let service = TowerToHyperService::new(router.clone());
                // Small JSON replies: do not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                let stream = StallGuard::new(stream, limits.write_stall_timeout());
                connections.spawn(serve_connection(stream, builder.clone(), service, closing.clone(), permit));
            }
        }
    }
    // Stop accepting (the listener is dropped on return), ask every connection to finish, then wait a little.
    let _ = closing_sender.send(true);
    let drained =
        tokio::time::timeout(limits.shutdown_grace(), async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(open = connections.len(), "connections still open after the shutdown grace: dropping them");
    }
    connections.shutdown().await;
    Ok(())
}

async fn serve_connection(
    stream: StallGuard<TcpStream>,
    builder: Arc<hyper::server::conn::http1::Builder>,
    service: TowerToHyperService<Router>,
    mut closing: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => log_end(result),
        _ = async { closing.wait_for(|closing| *closing).await.is_ok() } => {
            connection.as_mut().graceful_shutdown();
            log_end(connection.await);
        }
    }
}

fn log_end(result: hyper::Result<()>) {
    // Clients that send garbage, time out or vanish end here: normal for a server on a network.
    if let Err(error) = result {
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}
