//! `pulse coordinator run`: flags and environment → [`CoordinatorConfig`], then the
//! coordinator until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alloy::primitives::Address;
use anyhow::Result;
use pulse_coordinator::{Coordinator, CoordinatorConfig};
use tokio_util::sync::CancellationToken;

/// `pulse coordinator …`.
#[derive(clap::Subcommand)]
pub enum CoordinatorCommand {
    /// Run the coordinator: ingest from NATS, sequence, batch, schedule proofs, commit to L1.
    Run(RunArgs),
}

/// `pulse coordinator run`.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    nats: crate::nats::NatsArgs,
    /// Directory of the rollup state and the coordinator's records (created if missing).
    #[arg(long, env = "PULSE_STATE_DIR")]
    state_dir: PathBuf,
    /// The key directory written by `pulse setup`.
    #[arg(long, env = "PULSE_KEYS")]
    keys: PathBuf,
    /// The IPFS node's RPC API.
    #[arg(long, env = "PULSE_IPFS", default_value = "http://127.0.0.1:5001")]
    ipfs: String,
    /// Ethereum JSON-RPC URL.
    #[arg(long, env = "PULSE_L1_RPC", default_value = "http://127.0.0.1:8545")]
    l1_rpc: String,
    /// The rollup contract.
    #[arg(long, env = "PULSE_L1_CONTRACT")]
    contract: Address,
    /// File holding the operator's private key (hex); or set PULSE_L1_PRIVATE_KEY.
    #[arg(long)]
    operator_key_file: Option<PathBuf>,
    /// L1 confirmations before a batch is final.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    confirmations: u64,
    /// Seal a batch at this many transactions.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    batch_max_txs: u64,
    /// Seal a batch this long after its first transaction (e.g. 2s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    batch_deadline: Duration,
    /// A job's lease: without a worker heartbeat for this long it is redelivered.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    job_lease: Duration,
    /// Jobs unanswered after this long are published again.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    job_timeout: Duration,
    /// Address of the HTTP API (keep it on loopback unless a proxy guards it).
    #[arg(long, env = "PULSE_HTTP", default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// The deployment's genesis file: when the state directory holds no state (a new or
    /// lost disk), the state is rebuilt from L1 and IPFS before the coordinator starts.
    #[arg(long, env = "PULSE_GENESIS")]
    genesis: Option<PathBuf>,
    /// The availability committee (`committee.json`), as the contract holds it: batch data
    /// then goes to IPFS sealed for its members, and each batch waits for its threshold of
    /// member attestations before it is committed.
    #[arg(long, env = "PULSE_COMMITTEE")]
    committee: Option<PathBuf>,
    /// A key the committee file lists for the operator (a reader's): with it, a lost state
    /// is rebuilt from the sealed batch data at start (see --genesis).
    #[arg(long, env = "PULSE_COMMITTEE_KEY", requires = "committee")]
    committee_key: Option<PathBuf>,
    /// This coordinator's name in the lease: of several coordinators against one NATS, one
    /// is active and the others stand by until it stops renewing the lease. Restarted
    /// under the same name, a coordinator takes its lease back at once. Letters, digits,
    /// `-` and `_`.
    #[arg(long, env = "PULSE_COORDINATOR_NAME", default_value = "coordinator", value_parser = parse_name)]
    name: String,
    /// How long the lease outlives its last renewal: the time a standby waits before it
    /// takes over from a coordinator that died (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = parse_lease_ttl)]
    lease_ttl: Duration,
    /// Copies JetStream keeps of each stream and bucket: 3 on a three-node NATS cluster
    /// (give every node's URL in --nats-url, separated by commas), 1 on a single server.
    #[arg(long, env = "PULSE_NATS_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=5))]
    nats_replicas: u64,
    /// When to prove a chunk split across workers (its MSMs sharded by base range): auto
    /// (when no live worker's --base-memory holds the whole proving key), never, or always.
    #[arg(long, env = "PULSE_SPLIT", default_value = "auto")]
    split: pulse_coordinator::split::SplitMode,
    /// The most shards of one split proof.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(2..=64))]
    max_shards: u64,
    /// With --split auto, also split when more workers are idle than chunks wait (lower
    /// batch latency on an idle cluster).
    #[arg(long)]
    split_for_latency: bool,
    /// A shard unanswered this long goes to another worker (its worker's silence in the
    /// registry sends it sooner).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    shard_timeout: Duration,
    /// A split proof not done this long after its plan falls back to a whole proof where a
    /// worker can hold the key, else is planned again.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    split_deadline: Duration,
}

fn parse_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a coordinator name: use 1 to 64 letters, digits, '-' or '_'"
        ))
    }
}

fn parse_lease_ttl(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(600) {
        return Err(format!(
            "a lease of {s} is out of range: use 1s to 10m (renewed every third of it)"
        ));
    }
    Ok(d)
}

/// A duration like `500ms`, `5s`, `2m`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: write e.g. 500ms, 5s, 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{s:?}: unknown unit {unit:?}; use ms, s, m or h")),
    }
}

/// `pulse coordinator run`.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    let operator = crate::l1::load_signer(args.operator_key_file.as_deref())?;
    let genesis = args
        .genesis
        .as_deref()
        .map(pulse_coordinator::rebuild::Genesis::load)
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    let committee = args
        .committee
        .as_deref()
        .map(pulse_dac::Committee::load)
        .transpose()?;
    let committee_key = args
        .committee_key
        .as_deref()
        .map(pulse_dac::MemberKey::load)
        .transpose()?
        .map(std::sync::Arc::new);
    let config = CoordinatorConfig {
        committee,
        committee_key,
        nats: args.nats.endpoint(),
        state_dir: args.state_dir,
        keys_dir: args.keys,
        ipfs_url: args.ipfs,
        l1_rpc: args.l1_rpc,
        l1_contract: args.contract,
        l1_operator: operator,
        l1_confirmations: args.confirmations,
        batch_max_txs: args.batch_max_txs as usize,
        batch_deadline: args.batch_deadline,
        job_lease: args.job_lease,
        job_timeout: args.job_timeout,
        http_addr: args.http,
        genesis,
        name: args.name,
        lease_ttl: args.lease_ttl,
        nats_replicas: usize::try_from(args.nats_replicas).unwrap_or(1),
        split: pulse_coordinator::split::SplitConfig {
            mode: args.split,
            max_shards: usize::try_from(args.max_shards).unwrap_or(4),
            latency: args.split_for_latency,
            shard_timeout: args.shard_timeout,
            deadline: args.split_deadline,
        },
    };
    let rt = crate::l1::runtime()?;
    rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            token.cancel();
        });
        // Stands by while another coordinator holds the lease.
        let c = match Coordinator::start_or_stand_by(config, &shutdown).await {
            Ok(c) => c,
            Err(_) if shutdown.is_cancelled() => {
                tracing::info!("stopped while standing by");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(e.context("starting the coordinator")),
        };
        let summary = c.run(shutdown).await?;
        tracing::info!(?summary, "coordinator stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
