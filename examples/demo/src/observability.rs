//! The demo's metrics: a Prometheus recorder installed once per process, rendered at `GET /metrics` by the
//! demo's own router (no listener of the exporter's). The series and spans are in `docs/observability.md`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Upper bounds of the buckets of every `_seconds` histogram: from half a millisecond (a group commit) to half
/// an hour (a queue wait).
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    1800.0,
];
/// Upper bounds of the buckets of `kf_store_batch_size`.
pub const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// How often the recorder's upkeep runs (it drains histogram samples nobody scraped).
const UPKEEP: Duration = Duration::from_secs(5);

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder: installed as the global `metrics` recorder on the first call, with the
/// buckets above and kf's descriptions. `None` when the process had another recorder already (logged once).
///
/// Install it before building the store, the engine, the transports and the webhook worker ([`crate::Demo`]
/// does): they register their series when they are built.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    RECORDER.get_or_init(install).as_ref()
}

fn install() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full(kf_core::telemetry::names::STORE_BATCH_SIZE.into()),
                BATCH_BUCKETS,
            )
        });
    let handle = match builder.and_then(PrometheusBuilder::install_recorder) {
        Ok(handle) => handle,
        Err(error) => {
            tracing::warn!(%error, "no Prometheus recorder: /metrics is unavailable");
            return None;
        }
    };
    kf_core::telemetry::describe();
    let upkeep = handle.clone();
    let started = std::thread::Builder::new()
        .name("kf-metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            }
        });
    if let Err(error) = started {
        // Rendering drains the samples too; without upkeep they wait for the next scrape.
        tracing::warn!(%error, "metrics upkeep thread not started");
    }
    Some(handle)
}

/// `GET /metrics`: every series in the Prometheus text format (503 without a recorder).
pub async fn metrics_endpoint() -> Response {
    match prometheus() {
        Some(handle) => (
            [
                (header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder is installed in this process\n",
        )
            .into_response(),
    }
}
