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
//! - `GET /accounts/{id}/records`, `/accounts/{id}/grants` → the records and grants linked
//!   to the account, each with its proof as above, 50 a page (`?after=` the answer's
//!   `next_after`, the last id given); `/accounts/{id}/access` → the accesses logged on L1
//!   of its records and by it, oldest first, 50 a page (`next_after` is an offset there)
//!
//! Every lookup answers only a request signed by an account that may read the answer
//! ([`pulse_protocol::lookup_auth`]; who may read what: [`may_read_account`] and the
//! handlers). An unsigned or badly signed request gets 401 saying how to sign; a signed one
//! for something its account may not read gets the same 404 as for something that does not
//! exist. Answers carry pseudonymous rollup ids and CIDs of encrypted files, never health
//! data; the status page, `/status` and the metrics carry aggregates only.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pulse_circuits::state::{State, StateView};
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
    /// Checks the signatures of lookups.
    pub auth: Arc<Authenticator>,
}

/// What the lookups read: the state, and its view as of the last batch committed on L1.
#[derive(Clone)]
pub struct LookupState {
    /// The rollup state (read-only here).
    pub state: Arc<State>,
    /// The state as of the last batch committed on L1, when known.
    pub committed: Arc<RwLock<Option<Arc<StateView>>>>,
    /// Checks the signatures of lookups.
    pub auth: Arc<Authenticator>,
}

/// The router.
pub fn router(state: ApiState) -> Router {
    let metrics = Router::new()
        .route("/metrics", get(crate::metrics::serve))
        .with_state(state.metrics.clone());
    let lookups = lookup_router(LookupState {
        state: state.state.clone(),
        committed: state.committed.clone(),
        auth: state.auth.clone(),
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
        .route("/accounts/{id}/records", get(account_records))
        .route("/accounts/{id}/grants", get(account_grants))
        .route("/accounts/{id}/access", get(account_access))
        .with_state(state)
}

fn error(code: StatusCode, message: String) -> Response {
    (code, Json(json!({ "error": message }))).into_response()
}

mod auth;
mod lookups;

pub use auth::Authenticator;
pub use lookups::may_read_account;
use lookups::{account, account_access, account_grants, account_records, grant, record};

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
