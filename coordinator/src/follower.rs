//! A follower: a verified replica of the rollup state kept by following L1 and IPFS, for a
//! hospital that wants to check the operator and keep the data available without trusting
//! it. Every committed batch's data is fetched by the CID its L1 event names, checked
//! against the chunk roots and commitments its proofs bound, replayed, and (with a node of
//! its own) pinned there, so the data stays available if the operator's node goes. It serves
//! the coordinator's lookups, with Merkle proofs against the root L1 holds, so clients can
//! use it instead of the operator's API.
//!
//! - `GET /health`, `GET /status` (batch followed, L1's batch and root, whether the roots
//!   match, the last error), `GET /metrics`
//! - `GET /accounts/{id}`, `/records/{id}`, `/grants/{id}` as the coordinator answers them
//!
//! Its state directory holds only the state; where it is in the history is found again at
//! start from its root (each batch's root is unique: every transaction raises a nonce).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use alloy::primitives::Address;
use anyhow::{Context, Result, bail};
use axum::extract::State as AxState;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{IntCounter, IntGauge, Opts, Registry, TextEncoder};
use pulse_circuits::field::fr_to_decimal;
use pulse_circuits::state::State;
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::STATE_FILE;
use crate::api::{LookupState, lookup_router};
use crate::rebuild::{Genesis, RebuildError, Source};

/// What a follower needs.
#[derive(Clone, Debug)]
pub struct FollowerConfig {
    /// Ethereum JSON-RPC URL.
    pub l1_rpc: String,
    /// The rollup contract.
    pub contract: Address,
    /// The IPFS node the batch data is read from.
    pub ipfs_url: String,
    /// The follower's own IPFS node, where every batch's data is pinned.
    pub keep_ipfs_url: Option<String>,
    /// The deployment's genesis.
    pub genesis: Genesis,
    /// Its state directory.
    pub state_dir: PathBuf,
    /// Where its API listens.
    pub http_addr: SocketAddr,
    /// How often L1 is read for new batches.
    pub poll: Duration,
    /// How long to wait for one batch's data.
    pub fetch_timeout: Duration,
    /// A committee member's key, for batch data sealed for the availability committee.
    pub reader: Option<crate::rebuild::CommitteeReader>,
}

/// Where the follower is, as `/status` shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FollowerStatus {
    /// Always "follower".
    pub role: &'static str,
    /// The rollup contract.
    pub contract: String,
    /// The last batch replayed and checked.
    pub batch: u64,
    /// The state root after it (decimal).
    pub root: String,
    /// The contract's batch number when L1 was last read.
    pub l1_batch: u64,
    /// The contract's root then (decimal).
    pub l1_root: String,
    /// Whether the follower has caught up and its root is L1's.
    pub matches: bool,
    /// Batches whose data it pinned on its own node in this run.
    pub pinned: u64,
    /// The last error (a batch whose data is missing or wrong, L1 or IPFS unreachable),
    /// cleared once the follower moves on.
    pub last_error: Option<String>,
}

struct Metrics {
    registry: Registry,
    batch: IntGauge,
    l1_batch: IntGauge,
    transactions: IntCounter,
    errors: IntCounter,
}

impl Metrics {
    fn new() -> Result<Self> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| -> Result<IntGauge> {
            let g = IntGauge::with_opts(Opts::new(name, help))?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter> {
            let c = IntCounter::with_opts(Opts::new(name, help))?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        Ok(Self {
            batch: gauge(
                "pulse_follower_batch",
                "The last batch the follower replayed and checked.",
            )?,
            l1_batch: gauge(
                "pulse_follower_l1_batch",
                "The rollup contract's batch number when L1 was last read.",
            )?,
            transactions: counter(
                "pulse_follower_transactions_total",
                "Transactions replayed.",
            )?,
            errors: counter(
                "pulse_follower_errors_total",
                "Rounds that stopped on an error (batch data missing or wrong, L1 or IPFS unreachable).",
            )?,
            registry,
        })
    }
}

#[derive(Clone)]
struct Shared {
    status: Arc<RwLock<FollowerStatus>>,
    metrics: Arc<Metrics>,
}

async fn serve_status(AxState(s): AxState<Shared>) -> Response {
    let st = match s.status.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    Json(st).into_response()
}

async fn serve_metrics(AxState(s): AxState<Shared>) -> Response {
    let mut out = String::new();
    if let Err(e) = TextEncoder::new().encode_utf8(&s.metrics.registry.gather(), &mut out) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        out,
    )
        .into_response()
}

/// Runs the follower until `shutdown`.
///
/// # Errors
/// The state cannot be opened or is not on this deployment's history, the API address is
/// taken, or L1 cannot be read at start. Errors while following (a batch's data missing or
/// wrong, a node down) are logged, shown in `/status` and retried: the follower keeps
/// serving the last checked state.
pub async fn run(config: FollowerConfig, shutdown: CancellationToken) -> Result<()> {
    std::fs::create_dir_all(&config.state_dir).with_context(|| {
        format!(
            "creating the state directory {}",
            config.state_dir.display()
        )
    })?;
    let path = config.state_dir.join(STATE_FILE);
    let fresh = !path.exists();
    let state = Arc::new(State::open(&path, config.genesis.depth).context("opening the state")?);
    if fresh {
        state
            .init_genesis(&config.genesis.registrars)
            .context("writing the genesis state")?;
    }
    let source = Source::connect(
        &config.l1_rpc,
        config.contract,
        &config.ipfs_url,
        config.fetch_timeout,
        config.reader.clone(),
    )
    .await
    .context("connecting to L1 and IPFS")?;
    let keep = config
        .keep_ipfs_url
        .as_deref()
        .map(pulse_ipfs::IpfsClient::new)
        .transpose()
        .context("the follower's own IPFS node")?;

    // Where this state is in the history: the batch whose root it has.
    let history = source.history().await.context("reading L1")?;
    let root = pulse_l1::contract::word(state.roots()?.state_root());
    let mut through = match history.events.iter().rev().find(|e| e.new_root == root) {
        Some(e) => e.number,
        None => {
            let genesis = State::in_memory(config.genesis.depth)?;
            let genesis_root = genesis
                .init_genesis(&config.genesis.registrars)?
                .state_root();
            if pulse_l1::contract::word(genesis_root) != root {
                bail!(
                    "the state in {} is at no batch of this rollup's history: give the follower an empty directory",
                    config.state_dir.display()
                );
            }
            0
        }
    };
    info!(batch = through, "following from here");

    let metrics = Arc::new(Metrics::new().context("registering the metrics")?);
    let status = Arc::new(RwLock::new(FollowerStatus {
        role: "follower",
        contract: config.contract.to_string(),
        batch: through,
        ..FollowerStatus::default()
    }));
    let committed = Arc::new(RwLock::new(Some(Arc::new(state.view()?))));
    let shared = Shared {
        status: status.clone(),
        metrics: metrics.clone(),
    };
    let app = Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/status", get(serve_status))
        .route("/metrics", get(serve_metrics))
        .with_state(shared)
        .merge(lookup_router(LookupState {
            state: state.clone(),
            committed: committed.clone(),
            auth: Arc::new(crate::api::Authenticator::new(source.deployment().id)),
        }));
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding the follower's API to {}", config.http_addr))?;
    let api_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { api_shutdown.cancelled().await })
            .await
    });

    let set = |f: &dyn Fn(&mut FollowerStatus)| {
        let mut g = match status.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g);
    };
    loop {
        let round: Result<(), RebuildError> = async {
            let history = source.history().await?;
            metrics
                .l1_batch
                .set(i64::try_from(history.batch_number).unwrap_or(i64::MAX));
            let l1_root = pulse_l1::contract::fr_from_word(history.state_root)
                .map(|r| fr_to_decimal(&r))
                .unwrap_or_default();
            set(&|s| {
                s.l1_batch = history.batch_number;
                s.l1_root = l1_root.clone();
            });
            let next = through;
            for event in history.events.iter().filter(|e| e.number > next) {
                let done = source.apply(&state, event, keep.as_ref()).await?;
                through = event.number;
                let view = Arc::new(state.view()?);
                match committed.write() {
                    Ok(mut g) => *g = Some(view),
                    Err(p) => *p.into_inner() = Some(view),
                }
                metrics
                    .batch
                    .set(i64::try_from(through).unwrap_or(i64::MAX));
                metrics.transactions.inc_by(done.transactions);
                let root = fr_to_decimal(&state.roots()?.state_root());
                set(&|s| {
                    s.batch = through;
                    s.root = root.clone();
                    s.pinned += u64::from(keep.is_some());
                });
                info!(
                    batch = through,
                    transactions = done.transactions,
                    "batch checked and replayed"
                );
            }
            let root = fr_to_decimal(&state.roots()?.state_root());
            set(&|s| {
                s.root = root.clone();
                s.matches = s.batch == s.l1_batch && s.root == s.l1_root;
                s.last_error = None;
            });
            Ok(())
        }
        .await;
        if let Err(e) = round {
            metrics.errors.inc();
            warn!(error = %e, "following stopped at a batch; retrying");
            let text = e.to_string();
            set(&|s| {
                s.matches = false;
                s.last_error = Some(text.clone());
            });
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.poll) => {}
        }
    }
    server
        .await
        .context("the API task")?
        .context("serving the API")?;
    Ok(())
}
