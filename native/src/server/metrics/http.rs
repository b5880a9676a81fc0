//! The HTTP side of `--metrics-addr`: `GET /metrics` (in the Prometheus
//! text format 0.0.4), `GET /livez` and `GET /readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::Metrics;

/// The encoder writes OpenMetrics, whose `# TYPE` and `# HELP` lines name
/// a counter without the `_total` its samples carry, and which ends with
/// `# EOF`; the Prometheus text format 0.0.4 names the family as its
/// samples are named and has no end marker.
pub(super) fn to_text_format(open_metrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = open_metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(open_metrics.len() + 16 * counters.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# TYPE ", "# HELP "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        text.push_str(renamed.as_deref().unwrap_or(line));
        text.push('\n');
    }
    text
}

/// How the metrics listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpLimits {
    /// Connections served at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers, or stay
    /// idle between requests, before it is closed.
    pub header_timeout: Duration,
}

impl HttpLimits {
    /// The limits a server runs with: a scraper keeps its connection
    /// between scrapes up to 30 s apart, and a few dozen tools may watch
    /// one node; connections that never send a request do not pile up.
    pub(crate) const DEFAULT: HttpLimits = HttpLimits {
        max_connections: 64,
        header_timeout: Duration::from_secs(30),
    };
}

/// How long accepting waits after the listener failed (out of file
/// descriptors, say) before it tries again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Serves `/metrics`, `/livez` and `/readyz` on `listener` until the task
/// is dropped, within `limits`: connections that open and say nothing
/// (or too many at once) must not take the file descriptors the node's
/// log needs, nor a failing `accept` the thread the node runs on.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    limits: HttpLimits,
) {
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut refused_logged: Option<tokio::time::Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!("metrics: cannot accept a connection: {error}");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            // Dropping the stream closes it.
            if refused_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
                tracing::warn!(
                    limit = limits.max_connections,
                    "metrics: too many open connections; closing new ones"
                );
                refused_logged = Some(tokio::time::Instant::now());
            }
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&metrics, &request)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(io, service)
                .await;
            drop(permit);
        });
    }
}

/// Binds the metrics address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

fn answer(metrics: &Metrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String, content_type: &str| {
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            // Invariant: a status and one valid header make a valid response.
            .expect("a valid response")
    };
    const PLAIN: &str = "text/plain; charset=utf-8";
    if request.method() != hyper::Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into(), PLAIN);
    }
    match request.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            metrics.encode(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/livez" if metrics.is_live() => text(StatusCode::OK, "ok\n".into(), PLAIN),
        "/livez" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the node's loop has not stepped for 5 s\n".into(),
            PLAIN,
        ),
        "/readyz" if metrics.is_ready() => text(StatusCode::OK, "ok\n".into(), PLAIN),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "no leader known in this term, or not caught up\n".into(),
            PLAIN,
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /livez or /readyz\n".into(),
            PLAIN,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A listener serving fresh metrics within `limits`, and its address.
    async fn serving(limits: HttpLimits) -> SocketAddr {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::new(Metrics::new()), limits));
        addr
    }

    /// Reads `stream` to its end (the server closed it), failing after 10 s.
    async fn read_to_close(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
        let mut bytes = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
            .await
            .expect("the server closes the connection")
            .unwrap_or_default();
        bytes
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&read_to_close(&mut stream).await).into_owned()
    }

    #[tokio::test]
    async fn a_connection_that_sends_no_request_is_closed() {
        let addr = serving(HttpLimits {
            max_connections: 4,
            header_timeout: Duration::from_millis(300),
        })
        .await;
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut partial = tokio::net::TcpStream::connect(addr).await.unwrap();
        partial
            .write_all(b"GET /metrics HTTP/1.1\r\nHo")
            .await
            .unwrap();
        assert!(read_to_close(&mut silent).await.is_empty());
        // Closed with hyper's 408 or without a word, but closed.
        read_to_close(&mut partial).await;
        assert!(get(addr, "/livez").await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn connections_past_the_limit_are_closed_and_served_again_once_freed() {
        let addr = serving(HttpLimits {
            max_connections: 2,
            header_timeout: Duration::from_secs(600),
        })
        .await;
        let idle = [
            tokio::net::TcpStream::connect(addr).await.unwrap(),
            tokio::net::TcpStream::connect(addr).await.unwrap(),
        ];
        // The two idle connections hold the listener's places: a third is
        // closed unanswered (long before their header timeout).
        assert_eq!(get(addr, "/livez").await, "");
        drop(idle);
        let mut answer = String::new();
        for _ in 0..100 {
            answer = get(addr, "/livez").await;
            if !answer.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    }

    #[test]
    fn counters_are_named_as_their_samples_and_there_is_no_end_marker() {
        let metrics = Metrics::new();
        metrics.observe_request("put", "ok", true);
        let text = metrics.encode();
        assert!(text.contains("# TYPE distribkv_client_requests_total counter\n"));
        assert!(text.contains("# HELP distribkv_server_leader_changes_seen_total "));
        assert!(text.contains("distribkv_client_requests_total{op=\"put\",outcome=\"ok\"} 1\n"));
        assert!(text.contains("# TYPE distribkv_server_term gauge\n"));
        assert!(!text.contains("# EOF"));
    }
}
