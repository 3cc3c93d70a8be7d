//! Prometheus metrics: request counts and latency histograms per route, plus ledger figures
//! read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Latency histogram bucket bounds, seconds.
const BUCKETS_SECS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS_SECS.len()],
    count: u64,
    sum_secs: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// Request metrics, shared by every handler.
#[derive(Default)]
pub struct Metrics(Mutex<Inner>);

impl Metrics {
    fn record(&self, route: &str, status: u16, secs: f64) {
        let Ok(mut inner) = self.0.lock() else { return };
        *inner.requests.entry((route.to_string(), status)).or_insert(0) += 1;
        let h = inner.latency.entry(route.to_string()).or_default();
        h.count += 1;
        h.sum_secs += secs;
        for (i, bound) in BUCKETS_SECS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
    }

    /// Renders the request metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let Ok(inner) = self.0.lock() else { return };
        out.push_str("# HELP flash_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE flash_http_requests_total counter\n");
        for ((route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "flash_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP flash_http_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE flash_http_request_duration_seconds histogram\n");
        for (route, h) in &inner.latency {
            for (bound, n) in BUCKETS_SECS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "flash_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "flash_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "flash_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum_secs
            );
            let _ = writeln!(
                out,
                "flash_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
    }
}

/// Middleware: times every request and counts it under its route pattern.
pub(crate) async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let route = route.unwrap_or_else(|| "unmatched".to_string());
    let start = Instant::now();
    let response = next.run(req).await;
    metrics.record(&route, response.status().as_u16(), start.elapsed().as_secs_f64());
    response
}
