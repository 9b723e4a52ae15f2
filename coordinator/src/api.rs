//! The coordinator's HTTP API: health, status, and lookups with Merkle proofs a light client
//! checks against the root the L1 contract holds.
//!
//! - `GET /` (also `/status.html`) → the status page for operators (`status_page.html`)
//! - `GET /metrics` → Prometheus metrics ([`crate::metrics`])
//! - `GET /health` → `{"status":"ok"}`
//! - `GET /status` → queue depth, the open batch, the last batches with their L1
//!   transactions, invalid proofs by worker, live throughput, latency percentiles, time
//!   per stage and the registered workers
//! - `GET /accounts/{id}`, `/records/{id}`, `/grants/{id}` → the leaf, its Merkle proof, the
//!   tree roots and the state root they give, from the state as of the last batch committed
//!   on L1 (`"view": "committed"`, so the proof leads to the root the contract holds), or
//!   the latest sealed state with `?view=latest` (also the answer, said so, while a
//!   restarted coordinator has not committed its first batch)
//!
//! Answers carry pseudonymous rollup ids and CIDs of encrypted files, never health data.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pulse_circuits::field::fr_to_decimal;
use pulse_circuits::state::{State, StateView, TreeKind};
use serde_json::{Value, json};

use crate::metrics::Metrics;
use crate::store::Store;

/// What the event loop publishes for the API.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The open batch: number and transactions so far.
    pub open_batch: Option<(u64, usize)>,
    /// Transactions waiting in the stream.
    pub queue_depth: u64,
    /// Jobs waiting in the job stream.
    pub jobs_queued: u64,
    /// Transactions accepted by this run.
    pub accepted: u64,
    /// Transactions rejected by this run.
    pub rejected: u64,
    /// Batches committed by this run.
    pub committed_batches: u64,
    /// Invalid proofs by worker.
    pub invalid_proofs: BTreeMap<String, u64>,
    /// Split proofs accepted by this run.
    pub split_proofs: u64,
    /// Their shards.
    pub shards: u64,
    /// Chunks no live worker can take now: batch, chunk, and why.
    pub blocked: Vec<(u64, usize, String)>,
    /// The rollup contract.
    pub contract: String,
}

/// Shared with the handlers.
#[derive(Clone)]
pub struct ApiState {
    /// The loop's snapshot.
    pub snapshot: Arc<RwLock<Snapshot>>,
    /// Batch records.
    pub store: Arc<Store>,
    /// The rollup state (read-only here).
    pub state: Arc<State>,
    /// The state as of the last batch committed on L1, when this run has it: lookups
    /// answer from it, so their proofs lead to the root the L1 contract holds.
    pub committed: Arc<RwLock<Option<Arc<StateView>>>>,
    /// The coordinator's metrics.
    pub metrics: Arc<Metrics>,
}

/// What the lookups read: the state, and its view as of the last batch committed on L1.
#[derive(Clone)]
pub struct LookupState {
    /// The rollup state (read-only here).
    pub state: Arc<State>,
    /// The state as of the last batch committed on L1, when known.
    pub committed: Arc<RwLock<Option<Arc<StateView>>>>,
}

/// The router.
pub fn router(state: ApiState) -> Router {
    let metrics = Router::new()
        .route("/metrics", get(crate::metrics::serve))
        .with_state(state.metrics.clone());
    let lookups = lookup_router(LookupState {
        state: state.state.clone(),
        committed: state.committed.clone(),
    });
    Router::new()
        .route("/", get(crate::status_page::page))
        .route("/status.html", get(crate::status_page::page))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/status", get(status))
        .with_state(state)
        .merge(lookups)
        .merge(metrics)
}

/// The lookups alone (`/accounts/{id}`, `/records/{id}`, `/grants/{id}`), as the coordinator
/// and a follower serve them.
pub fn lookup_router(state: LookupState) -> Router {
    Router::new()
        .route("/accounts/{id}", get(account))
        .route("/records/{id}", get(record))
        .route("/grants/{id}", get(grant))
        .with_state(state)
}

fn error(code: StatusCode, message: String) -> Response {
    (code, Json(json!({ "error": message }))).into_response()
}

/// The shard count of a split proof's prover entry (`split:{shards}:{workers}`), `None` for
/// a whole proof's (a worker id).
pub(crate) fn split_shards(prover: &str) -> Option<u64> {
    prover
        .strip_prefix("split:")?
        .split(':')
        .next()?
        .parse()
        .ok()
}

async fn status(AxState(s): AxState<ApiState>) -> Response {
    let snap = match s.snapshot.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let batches = match s.store.recent(20) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let batches: Vec<Value> = batches
        .iter()
        .map(|b| {
            json!({
                "batch": b.number,
                "status": b.status.as_str(),
                "txs": b.tx_hashes.len(),
                "chunks": b.chunks.len(),
                "proofs": b.proofs.iter().filter(|p| p.is_some()).count(),
                "split_proofs": b.provers.iter().flatten().filter(|p| split_shards(p).is_some()).count(),
                "shards": b.provers.iter().flatten().filter_map(|p| split_shards(p)).sum::<u64>(),
                "data_cid": b.data_cid,
                "l1_tx": b.l1_tx,
                "l1_gas": b.l1_gas,
                "failure": b.failure,
                "latency_s": b.committed_ms.map(|c| c.saturating_sub(b.first_received_ms) as f64 / 1000.0),
                // The batch's stages: filling (first transaction → sealed), proving
                // (sealed → every chunk proven and checked), committing (→ final on L1).
                "first_received_ms": b.first_received_ms,
                "fill_s": b.sealed_ms.saturating_sub(b.first_received_ms) as f64 / 1000.0,
                "proving_s": b.proven_ms.map(|p| p.saturating_sub(b.sealed_ms) as f64 / 1000.0),
                "committing_s": b.proven_ms.zip(b.committed_ms).map(|(p, c)| c.saturating_sub(p) as f64 / 1000.0),
            })
        })
        .collect();
    let live = s.metrics.live();
    Json(json!({
        "throughput_tps": live.throughput_tps,
        "committed_txs": live.committed_txs,
        "latency_s": live.latency_s,
        "stages_s": live.stages_s,
        "workers": live.workers,
        "queue_depth": snap.queue_depth,
        "jobs_queued": snap.jobs_queued,
        "open_batch": snap.open_batch.map(|(n, txs)| json!({"batch": n, "txs": txs})),
        "accepted": snap.accepted,
        "rejected": snap.rejected,
        "committed_batches": snap.committed_batches,
        "invalid_proofs": snap.invalid_proofs,
        "split_proofs": snap.split_proofs,
        "shards": snap.shards,
        "blocked": snap.blocked.iter().map(|(batch, chunk, reason)| json!({"batch": batch, "chunk": chunk, "reason": reason})).collect::<Vec<_>>(),
        "contract": snap.contract,
        "batches": batches,
    }))
    .into_response()
}

/// Which state a lookup reads: `?view=latest` asks for the latest sealed state instead of
/// the one committed on L1.
#[derive(Debug, serde::Deserialize)]
pub struct ViewQuery {
    view: Option<String>,
}

/// The view a lookup answers from, and its name for the answer.
fn view_for(
    s: &LookupState,
    q: &ViewQuery,
) -> Result<(Arc<StateView>, &'static str), Box<Response>> {
    let internal = |e: pulse_circuits::state::StateError| {
        Box::new(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    };
    match q.view.as_deref() {
        None | Some("committed") => {
            let committed = match s.committed.read() {
                Ok(g) => g.clone(),
                Err(p) => p.into_inner().clone(),
            };
            match committed {
                Some(v) => Ok((v, "committed")),
                // Not known yet in this run (batches from before a restart are still on
                // their way to L1): the latest state, said so.
                None => Ok((Arc::new(s.state.view().map_err(internal)?), "latest")),
            }
        }
        Some("latest") => Ok((Arc::new(s.state.view().map_err(internal)?), "latest")),
        Some(other) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("unknown view {other:?}: use view=committed (the default) or view=latest"),
        ))),
    }
}

fn proof_json(view: &StateView, tree: TreeKind, id: u64) -> Result<Value, Box<Response>> {
    let (leaf, proof, roots) = view
        .proof(tree, id)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("{e}"))))?;
    Ok(json!({
        "leaf_hash": fr_to_decimal(&leaf),
        "proof": proof,
        "roots": roots,
        "state_root": fr_to_decimal(&roots.state_root()),
    }))
}

async fn account(
    AxState(s): AxState<LookupState>,
    Path(id): Path<u64>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let (view, name) = match view_for(&s, &q) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match view.account(id) {
        Ok(Some(leaf)) => match proof_json(&view, TreeKind::Accounts, id) {
            Ok(mut v) => {
                v["account"] = json!(leaf);
                v["id"] = json!(id);
                v["view"] = json!(name);
                Json(v).into_response()
            }
            Err(r) => *r,
        },
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no account {id} in the {name} state"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn record(
    AxState(s): AxState<LookupState>,
    Path(id): Path<u64>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let (view, name) = match view_for(&s, &q) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match view.record(id) {
        Ok(Some(r)) => match proof_json(&view, TreeKind::Records, id) {
            Ok(mut v) => {
                v["record"] = json!(r.leaf);
                v["cid"] = json!(r.cid);
                v["id"] = json!(id);
                v["view"] = json!(name);
                Json(v).into_response()
            }
            Err(r) => *r,
        },
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no record {id} in the {name} state"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn grant(
    AxState(s): AxState<LookupState>,
    Path(id): Path<u64>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let (view, name) = match view_for(&s, &q) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match view.grant(id) {
        Ok(Some(g)) => match proof_json(&view, TreeKind::Grants, id) {
            Ok(mut v) => {
                v["grant"] = json!(g);
                v["id"] = json!(id);
                v["view"] = json!(name);
                Json(v).into_response()
            }
            Err(r) => *r,
        },
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no grant {id} in the {name} state"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
