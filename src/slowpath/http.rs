//! The HTTP endpoints, on the slow path: `/metrics` (Prometheus text
//! format, CoreDNS's names), `/health` and `/ready`, each on the address
//! its directive gives. One thread runs a single-threaded tokio runtime
//! with hyper; nothing here touches the fast path but reading counters.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::engine::WorkerCounters;
use crate::metrics::{self, QueryCounters, Snapshot};
use crate::publish::Published;
use crate::slowpath::zones::ZoneStore;

/// Everything the endpoints report.
pub struct HttpState {
    /// CoreDNS's `server` label, e.g. `dns://:53`.
    pub server_label: String,
    pub workers: Vec<Arc<WorkerCounters>>,
    /// The workers' query counters, then the TCP path's.
    pub query_counters: Vec<Arc<QueryCounters>>,
    /// The served zones: their summaries, readiness, reload and
    /// replication counters.
    pub store: Arc<ZoneStore>,
    pub published: Published,
    /// The `zone` label of each zone slot of the query counters.
    pub zone_labels: Vec<String>,
    /// False from SIGTERM on, during `lameduck`.
    pub healthy: AtomicBool,
}

/// Which endpoint a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Metrics,
    Health,
    Ready,
}

/// Listeners bound for the endpoints, not yet served.
pub struct Bound(Vec<(std::net::TcpListener, Arc<Vec<Endpoint>>)>);

/// Binds every endpoint's address now, before the DNS sockets answer, so a
/// taken port fails start-up and a client that sees DNS answers finds the
/// endpoints too. Endpoints sharing an address share a listener.
pub fn bind(endpoints: &[(Endpoint, SocketAddr)]) -> io::Result<Bound> {
    let mut by_address: Vec<(SocketAddr, Vec<Endpoint>)> = Vec::new();
    for &(endpoint, address) in endpoints {
        match by_address.iter_mut().find(|(bound, _)| *bound == address) {
            Some((_, served)) => served.push(endpoint),
            None => by_address.push((address, vec![endpoint])),
        }
    }
    let mut listeners = Vec::new();
    for (address, served) in by_address {
        let listener = std::net::TcpListener::bind(address).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot listen for HTTP on {address}: {error}"),
            )
        })?;
        listener.set_nonblocking(true)?;
        listeners.push((listener, Arc::new(served)));
    }
    Ok(Bound(listeners))
}

/// Serves the bound endpoints on one thread.
pub fn serve(bound: Bound, state: Arc<HttpState>) -> io::Result<()> {
    let listeners = bound.0;
    if listeners.is_empty() {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("ringdns: error: HTTP endpoints: {error}");
                    return;
                }
            };
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                for (listener, served) in listeners {
                    let state = Arc::clone(&state);
                    tasks.push(tokio::spawn(accept(listener, served, state)));
                }
                for task in tasks {
                    let _ = task.await;
                }
            });
        })?;
    Ok(())
}

async fn accept(
    listener: std::net::TcpListener,
    served: Arc<Vec<Endpoint>>,
    state: Arc<HttpState>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let served = Arc::clone(&served);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let reply = respond(&request, &served, &state);
                async move { Ok::<_, Infallible>(reply) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(
    request: &Request<Incoming>,
    served: &[Endpoint],
    state: &HttpState,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    let endpoint = match request.uri().path() {
        "/metrics" => Endpoint::Metrics,
        "/health" => Endpoint::Health,
        "/ready" => Endpoint::Ready,
        _ => return reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    if !served.contains(&endpoint) {
        return reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into());
    }
    match endpoint {
        Endpoint::Health if state.healthy.load(Ordering::Relaxed) => {
            reply(StatusCode::OK, "text/plain", "OK".into())
        }
        Endpoint::Health => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "shutting down\n".into(),
        ),
        Endpoint::Ready if state.store.ready.load(Ordering::Relaxed) => {
            reply(StatusCode::OK, "text/plain", "OK".into())
        }
        Endpoint::Ready => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready: a zone is not loaded (it failed, or a secondary has no copy yet)\n".into(),
        ),
        Endpoint::Metrics => {
            let counters: Vec<&QueryCounters> =
                state.query_counters.iter().map(Arc::as_ref).collect();
            let workers: Vec<(u64, u64, u64)> = state
                .workers
                .iter()
                .map(|worker| {
                    (
                        worker.received.load(Ordering::Relaxed),
                        worker.answered.load(Ordering::Relaxed),
                        worker.dropped.load(Ordering::Relaxed),
                    )
                })
                .collect();
            let summaries = state.store.summaries();
            let zones: Vec<(String, u32, usize, bool)> = summaries
                .iter()
                .map(|zone| (zone.name.clone(), zone.serial, zone.records, zone.loaded))
                .collect();
            let secondaries: Vec<(String, u64, u64)> = summaries
                .iter()
                .filter_map(|zone| {
                    let (refreshed, expires) = zone.secondary_times?;
                    Some((zone.name.clone(), refreshed, expires))
                })
                .collect();
            let loaded_at: Vec<(String, u64)> = summaries
                .iter()
                .filter_map(|zone| Some((zone.name.clone(), zone.loaded_at?)))
                .collect();
            let journals: Vec<(String, u64)> = summaries
                .iter()
                .map(|zone| (zone.name.clone(), zone.journal_bytes))
                .collect();
            let snapshot = Snapshot {
                zone_labels: &state.zone_labels,
                server: &state.server_label,
                counters: &counters,
                workers: &workers,
                zones: &zones,
                table_names: state.published.reader().load().name_count(),
                reload_failed: state.store.reload_failed.load(Ordering::Relaxed),
                replication: Some(&state.store.counters),
                journals: &journals,
                loaded_at: &loaded_at,
                table_generation: state.store.table_generation.load(Ordering::Relaxed),
                table_compile_ns: state.store.table_compile_ns.load(Ordering::Relaxed),
                secondaries: &secondaries,
            };
            reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics::render(&snapshot),
            )
        }
    }
}
