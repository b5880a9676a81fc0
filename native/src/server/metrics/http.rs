//! The HTTP side of `--metrics-addr`: `GET /metrics` (in the Prometheus
//! text format 0.0.4), `GET /livez` and `GET /readyz`.

use std::net::SocketAddr;
use std::sync::Arc;

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

/// Serves `/metrics`, `/livez` and `/readyz` on `listener` until the task
/// is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
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
                .serve_connection(io, service)
                .await;
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
