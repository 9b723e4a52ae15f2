//! The status page for operators without Grafana: one HTML file with its script inline, no
//! build step, compiled into the binary. It polls `GET /status` and shows live throughput,
//! latency percentiles, where the time goes, the queues, the workers and the last batches
//! with their L1 transactions. The script only ever sets `textContent`, so strings from
//! workers (ids, device names) cannot inject markup.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("status_page.html");

/// No external resources, no framing, scripts only from the page itself.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// `GET /` and `GET /status.html`.
pub(crate) async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        PAGE,
    )
}
