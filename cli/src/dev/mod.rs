//! `pulse dev …`: a local cluster on loopback for trying Pulse out and for its tests.
//!
//! - `pulse dev up` starts a supervisor process (`pulse dev serve`, in its own process
//!   group so it outlives the command) that runs nats-server, anvil, an IPFS node and
//!   Prometheus on free loopback ports, runs a Groth16 setup for a small circuit, deploys
//!   the rollup contract, and starts a coordinator and proving workers as child processes.
//!   Once everything answers it writes `cluster.json` (and `cluster.env` for shells) in
//!   the dev directory; `up` prints where everything is and returns.
//! - `pulse dev down` asks the supervisor to stop (SIGTERM): workers and coordinator
//!   first, then the servers; the directory's state goes with them.
//! - `pulse dev demo` drives a realistic workload through a running cluster
//!   (`--cluster`), or through a private one it starts and stops.
//!
//! The client commands (`pulse record get`, …) read `cluster.json` when no flags name the
//! endpoints. Nothing listens beyond 127.0.0.1.

mod demo;
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use anyhow::{Context, Result, bail};
use pulse_circuits::deployment::DeploymentId;
use serde::{Deserialize, Serialize};

pub use demo::DemoArgs;
pub use serve::ServeArgs;

/// The cluster description inside the dev directory.
pub const CLUSTER_FILE: &str = "cluster.json";
/// The genesis file in the dev directory ([`pulse_coordinator::rebuild::Genesis`]).
pub const GENESIS_FILE: &str = "genesis.json";
/// The supervisor's pid file inside the dev directory.
const PID_FILE: &str = "serve.pid";
/// The supervisor's log inside the dev directory.
const SERVE_LOG: &str = "serve.log";
/// How long `up` waits for the cluster (setup of a small circuit takes seconds; a debug
/// build is slower).
const UP_TIMEOUT: Duration = Duration::from_secs(600);

/// `pulse dev …`.
#[derive(clap::Subcommand)]
pub enum DevCommand {
    /// Start a local cluster in the background (nats-server, anvil, IPFS, Prometheus, a
    /// deployed contract, a coordinator and workers) and print where everything is.
    Up(UpArgs),
    /// Stop the cluster `pulse dev up` started.
    Down(DownArgs),
    /// Drive a workload to committed L1 batches and report; on a running cluster
    /// (`--cluster`) or on a private one it starts and stops.
    Demo(DemoArgs),
    /// Internal: the supervisor `pulse dev up` starts.
    #[command(hide = true)]
    Serve(ServeArgs),
}

/// The shape of a cluster.
#[derive(clap::Args, Clone, Debug)]
pub struct ClusterShape {
    /// Transaction slots per chunk.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub slots: u64,
    /// State tree depth.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(4..=32))]
    pub depth: u64,
    /// Proving workers.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub workers: u64,
    /// Seal a batch at this many transactions.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub batch_txs: u64,
    /// Seal a batch this long after its first transaction.
    #[arg(long, default_value = "2s", value_parser = crate::coordinator::parse_duration)]
    pub batch_deadline: Duration,
    /// Run NATS without TLS (credentials still required): only to measure what TLS costs.
    #[arg(long)]
    pub nats_plain_text: bool,
    /// NATS servers: 1, or 3 for a JetStream cluster on loopback whose streams and buckets
    /// keep three replicas (the cluster survives the loss of any one node; every component
    /// is given all three URLs).
    #[arg(long, default_value_t = 1, value_parser = parse_nats_nodes)]
    pub nats_nodes: u64,
    /// When the coordinator proves a chunk split across workers: auto (when no worker's
    /// base memory holds the proving key), never, or always.
    #[arg(long, default_value = "auto")]
    pub split: pulse_coordinator::split::SplitMode,
    /// Each worker's --base-memory (bytes, or with KiB, MiB, GiB): the most memory it gives
    /// to a proving key's bases. No limit when not given.
    #[arg(long, value_parser = crate::worker::parse_size)]
    pub worker_base_memory: Option<u64>,
    /// How the keys are made: `ceremony` (a phase-2 ceremony in DIR/ceremony: the operator
    /// and each worker contribute, a beacon closes it, the transcript is verified) or
    /// `single-party` (one Groth16 setup: faster; whoever runs it could forge proofs).
    #[arg(long, default_value = "ceremony", value_parser = ["ceremony", "single-party"])]
    pub setup: String,
    /// Members of the availability committee (`hospital-1` …, each with its own key, NATS
    /// user and `pulse committee run`): batch data goes to IPFS sealed for them, and L1
    /// takes a batch only with --committee-threshold of their attestations. 0: no
    /// committee (batch data in plaintext).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=16))]
    pub committee_members: u64,
    /// Attestations each batch needs (1 to --committee-members).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub committee_threshold: u64,
}

fn parse_nats_nodes(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n @ (1 | 3 | 5)) => Ok(n),
        _ => Err(format!(
            "{s:?} NATS nodes: use 1, 3 or 5 (a JetStream cluster needs an odd number for its \
             quorum)"
        )),
    }
}

impl ClusterShape {
    fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--slots={}", self.slots),
            format!("--depth={}", self.depth),
            format!("--workers={}", self.workers),
            format!("--batch-txs={}", self.batch_txs),
            format!("--batch-deadline={}ms", self.batch_deadline.as_millis()),
            format!("--nats-nodes={}", self.nats_nodes),
            format!("--split={}", self.split),
            format!("--setup={}", self.setup),
            format!("--committee-members={}", self.committee_members),
            format!("--committee-threshold={}", self.committee_threshold),
        ];
        if let Some(bytes) = self.worker_base_memory {
            args.push(format!("--worker-base-memory={bytes}"));
        }
        if self.nats_plain_text {
            args.push("--nats-plain-text".into());
        }
        args
    }
}

/// `pulse dev up`.
#[derive(clap::Args)]
pub struct UpArgs {
    /// The dev directory (state, keys, logs, cluster.json).
    #[arg(long, env = "PULSE_DEV_DIR")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    shape: ClusterShape,
    /// Stop by itself after this long (a safety net for scripts and tests).
    #[arg(long, value_parser = crate::coordinator::parse_duration)]
    ttl: Option<Duration>,
    /// Print cluster.json instead of the summary.
    #[arg(long)]
    json: bool,
}

/// `pulse dev down`.
#[derive(clap::Args)]
pub struct DownArgs {
    /// The dev directory.
    #[arg(long, env = "PULSE_DEV_DIR")]
    dir: Option<PathBuf>,
}

/// Where a running cluster is: written by the supervisor once everything answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterInfo {
    /// Format version.
    pub version: u32,
    /// NATS client URL.
    pub nats_url: String,
    /// The CA certificate NATS's server certificate chains to (none only when the cluster
    /// runs without TLS, to measure its cost).
    pub nats_ca: Option<PathBuf>,
    /// A credentials file per role (mode 0600).
    pub nats_credentials: RoleCredentials,
    /// The coordinator's HTTP API (status page, lookups, metrics).
    pub coordinator_url: String,
    /// The IPFS node's RPC API.
    pub ipfs_url: String,
    /// anvil's JSON-RPC URL.
    pub l1_rpc: String,
    /// L1 chain id.
    pub chain_id: u64,
    /// The rollup contract.
    pub contract: Address,
    /// The id transactions are signed over: the contract's `deploymentId()`,
    /// keccak256(abi.encode(chain_id, contract)) mod r, in decimal.
    pub deployment_id: DeploymentId,
    /// Prometheus (scraping the coordinator and workers).
    pub prometheus_url: String,
    /// Slots per chunk.
    pub slots: usize,
    /// State tree depth.
    pub depth: usize,
    /// Workers started.
    pub workers: usize,
    /// The genesis registrar's key file (account 1), for registering doctors.
    pub registrar_key: PathBuf,
    /// The deployment's genesis (registrar keys, depth), for `pulse state rebuild`.
    pub genesis: PathBuf,
    /// The dev directory.
    pub dir: PathBuf,
    /// The supervisor's process id.
    pub pid: u32,
    /// The availability committee, when the cluster has one.
    #[serde(default)]
    pub committee: Option<CommitteeFiles>,
}

/// The dev cluster's availability committee: its file, and each member's keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitteeFiles {
    /// `committee.json`.
    pub file: PathBuf,
    /// Members' X25519 key files (they open the batch data), by member name.
    pub keys: std::collections::BTreeMap<String, PathBuf>,
}

/// The dev cluster's NATS credentials files, one per role (and one per worker).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleCredentials {
    /// The coordinator's.
    pub coordinator: PathBuf,
    /// The first worker's.
    pub worker: PathBuf,
    /// Client software's (the demo, the `pulse` user commands).
    pub client: PathBuf,
    /// Monitoring's (`$SYS`).
    pub operator: PathBuf,
    /// Every worker's, by worker id.
    pub workers: std::collections::BTreeMap<String, PathBuf>,
}

impl ClusterInfo {
    /// The NATS endpoint of a role's user.
    pub fn nats_endpoint(&self, credentials: &Path) -> pulse_access::NatsEndpoint {
        pulse_access::NatsEndpoint {
            url: self.nats_url.clone(),
            ca: self.nats_ca.clone(),
            credentials: Some(credentials.to_owned()),
        }
    }

    /// The `client` user's endpoint, for submitting software.
    pub fn client_endpoint(&self) -> pulse_access::NatsEndpoint {
        self.nats_endpoint(&self.nats_credentials.client)
    }

    /// Reads a `cluster.json`.
    ///
    /// # Errors
    /// When it cannot be read or is not a cluster description.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading {} (is a cluster running? `pulse dev up`)",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a cluster description written by `pulse dev up`",
                path.display()
            )
        })
    }
}

/// The default dev directory: `$XDG_STATE_HOME/pulse/dev` or `~/.local/state/pulse/dev`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("pulse").join("dev");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local").join("state").join("pulse").join("dev")
}

/// `pulse dev …`.
pub fn run(cmd: DevCommand) -> Result<ExitCode> {
    match cmd {
        DevCommand::Up(a) => up(a),
        DevCommand::Down(a) => down(a),
        DevCommand::Demo(a) => demo::demo(a),
        DevCommand::Serve(a) => serve::serve(a),
    }
}

/// Whether a process is alive (Linux: its /proc entry, not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn read_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join(PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Starts the supervisor for `dir` and waits until it has written `cluster.json`.
///
/// `detach` puts it in a process group of its own, so that it outlives this process and
/// a Ctrl-C in this terminal.
pub(crate) fn launch(
    dir: &Path,
    shape: &ClusterShape,
    ttl: Option<Duration>,
    detach: bool,
) -> Result<(Child, ClusterInfo)> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the dev directory {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    if let Some(pid) = read_pid(&dir)
        && alive(pid)
    {
        bail!(
            "a cluster is already running in {} (supervisor pid {pid}); stop it with `pulse dev down --dir {}`",
            dir.display(),
            dir.display()
        );
    }
    ensure_tools()?;
    let _ = std::fs::remove_file(dir.join(CLUSTER_FILE));
    let exe = std::env::current_exe().context("finding the pulse executable")?;
    let log_path = dir.join(SERVE_LOG);
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let log_err = log.try_clone().context("sharing the log file")?;
    let mut cmd = Command::new(exe);
    cmd.args(["dev", "serve", "--dir"])
        .arg(&dir)
        .args(shape.to_args())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    if let Some(ttl) = ttl {
        cmd.arg(format!("--ttl={}s", ttl.as_secs().max(1)));
    }
    if detach {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().context("starting the cluster supervisor")?;
    let start = Instant::now();
    let info_path = dir.join(CLUSTER_FILE);
    loop {
        if let Ok(info) = ClusterInfo::load(&info_path) {
            return Ok((child, info));
        }
        if let Some(status) = child.try_wait().context("watching the supervisor")? {
            bail!(
                "the cluster did not start (supervisor {status}); its log {} ends:\n{}",
                log_path.display(),
                tail(&log_path)
            );
        }
        if start.elapsed() > UP_TIMEOUT {
            let _ = stop_pid(child.id(), Duration::from_secs(30));
            let _ = child.wait();
            bail!(
                "the cluster was not up within {UP_TIMEOUT:?}; its log {} ends:\n{}",
                log_path.display(),
                tail(&log_path)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Every real component must be installed; `scripts/deps` (found through `PULSE_ROOT` or
/// the current directory) installs what is missing.
fn ensure_tools() -> Result<()> {
    use pulse_testkit::Tool;
    let missing = |t: &Tool| {
        matches!(
            t,
            Tool::Anvil | Tool::NatsServer | Tool::Jsipfs | Tool::Prometheus
        ) && t.find().is_err()
    };
    if !Tool::ALL.iter().any(missing) {
        return Ok(());
    }
    let root = std::env::var_os("PULSE_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    let deps = root.join("scripts").join("deps");
    if !deps.exists() {
        bail!(
            "some servers of the local cluster are not installed ({}); run scripts/deps from a Pulse checkout (or set PULSE_ROOT to one)",
            Tool::ALL
                .iter()
                .filter(|t| missing(t))
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    eprintln!("== installing the cluster's servers ({})", deps.display());
    let status = Command::new(&deps)
        .status()
        .with_context(|| format!("running {}", deps.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", deps.display());
    }
    if let Some(t) = Tool::ALL.iter().find(|t| missing(t)) {
        bail!("{} is still missing after scripts/deps", t.name());
    }
    Ok(())
}

/// SIGTERM, then wait up to `grace` for the process to go, then SIGKILL.
pub(crate) fn stop_pid(pid: u32, grace: Duration) -> Result<()> {
    let signal = |sig: &str| {
        Command::new("kill")
            .args(["-s", sig, &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    };
    signal("TERM").context("running kill")?;
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > grace {
            let _ = signal("KILL");
            bail!("pid {pid} did not stop within {grace:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn up(args: UpArgs) -> Result<ExitCode> {
    let dir = args.dir.unwrap_or_else(default_dir);
    eprintln!(
        "== starting a local cluster in {} ({} slot(s) per chunk, depth {}, {} worker(s)); log: {}",
        dir.display(),
        args.shape.slots,
        args.shape.depth,
        args.shape.workers,
        dir.join(SERVE_LOG).display()
    );
    let (_child, info) = launch(&dir, &args.shape, args.ttl, true)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("cluster up (supervisor pid {}):", info.pid);
        match &info.nats_ca {
            Some(ca) => println!(
                "  NATS            {} (TLS; CA {})",
                info.nats_url,
                ca.display()
            ),
            None => println!("  NATS            {} (no TLS)", info.nats_url),
        }
        println!(
            "  credentials     client {} · operator {}",
            info.nats_credentials.client.display(),
            info.nats_credentials.operator.display()
        );
        println!(
            "  coordinator     {} (status page at /, metrics at /metrics)",
            info.coordinator_url
        );
        println!("  IPFS RPC        {}", info.ipfs_url);
        println!(
            "  L1 (anvil)      {} chain {}, rollup {}",
            info.l1_rpc, info.chain_id, info.contract
        );
        println!("  deployment id   {}", info.deployment_id);
        println!("  Prometheus      {}", info.prometheus_url);
        println!("  registrar key   {}", info.registrar_key.display());
        println!(
            "client commands find it through {}",
            info.dir.join(CLUSTER_FILE).display()
        );
        println!(
            "(or `source {}`); stop it with `pulse dev down`",
            info.dir.join("cluster.env").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn down(args: DownArgs) -> Result<ExitCode> {
    let dir = args.dir.unwrap_or_else(default_dir);
    match read_pid(&dir) {
        Some(pid) if alive(pid) => {
            stop_pid(pid, Duration::from_secs(60))?;
            let _ = std::fs::remove_file(dir.join(PID_FILE));
            let _ = std::fs::remove_file(dir.join(CLUSTER_FILE));
            println!("cluster in {} stopped", dir.display());
        }
        _ => {
            let _ = std::fs::remove_file(dir.join(CLUSTER_FILE));
            println!("no cluster running in {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
