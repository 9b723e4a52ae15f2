//! `pulse state rebuild`: the rollup state rebuilt from L1 and IPFS alone
//! ([`pulse_coordinator::rebuild`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alloy::primitives::Address;
use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use pulse_coordinator::rebuild::{self, Genesis, RebuildConfig};

use crate::dev::ClusterInfo;

/// `pulse state …`.
#[derive(clap::Subcommand)]
pub enum StateCommand {
    /// Rebuild the rollup state from L1 and IPFS: every committed batch's data fetched by
    /// its CID, checked against the chunk commitments its proofs bound, replayed, and every
    /// root checked against L1's. Writes a state directory a coordinator can start from.
    Rebuild(RebuildArgs),
}

/// Where the rollup's history is: L1, an IPFS node with the batch data, the genesis.
#[derive(clap::Args, Clone)]
pub struct HistoryArgs {
    /// The `cluster.json` written by `pulse dev up` (gives the URLs, the contract and the
    /// genesis).
    #[arg(long, env = "PULSE_CLUSTER")]
    cluster: Option<PathBuf>,
    /// Ethereum JSON-RPC URL.
    #[arg(long, env = "PULSE_L1_RPC")]
    l1_rpc: Option<String>,
    /// The rollup contract.
    #[arg(long, env = "PULSE_L1_CONTRACT")]
    contract: Option<Address>,
    /// An IPFS node's RPC API that holds the batch data.
    #[arg(long, env = "PULSE_IPFS")]
    ipfs: Option<String>,
    /// The deployment's genesis file (registrar keys and tree depth).
    #[arg(long, env = "PULSE_GENESIS")]
    genesis: Option<PathBuf>,
    /// How long to wait for one batch's data from IPFS.
    #[arg(long, default_value = "60s", value_parser = crate::coordinator::parse_duration)]
    fetch_timeout: Duration,
    /// An availability committee member's key file (`pulse committee key new`): batch data
    /// sealed for the committee is opened with it.
    #[arg(long, env = "PULSE_COMMITTEE_KEY")]
    committee_key: Option<PathBuf>,
    /// The committee file the batch data was sealed for (with --committee-key; default:
    /// the cluster's).
    #[arg(long, env = "PULSE_COMMITTEE")]
    committee: Option<PathBuf>,
}

/// [`HistoryArgs`] resolved.
pub struct History {
    /// Ethereum JSON-RPC URL.
    pub l1_rpc: String,
    /// The rollup contract.
    pub contract: Address,
    /// The IPFS node with the data.
    pub ipfs_url: String,
    /// The genesis.
    pub genesis: Genesis,
    /// The fetch timeout.
    pub fetch_timeout: Duration,
    /// A committee member's key, when given.
    pub reader: Option<rebuild::CommitteeReader>,
}

impl HistoryArgs {
    /// Each flag, else its environment variable, else the cluster file.
    pub fn resolve(&self) -> Result<History> {
        let file = self.cluster.as_deref().map(ClusterInfo::load).transpose()?;
        let need = |flag: &str, v: Option<String>, f: Option<String>| -> Result<String> {
            v.or(f).ok_or_else(|| {
                anyhow!("no --{flag}: pass --{flag} (or its environment variable), or --cluster")
            })
        };
        let l1_rpc = need(
            "l1-rpc",
            self.l1_rpc.clone(),
            file.as_ref().map(|f| f.l1_rpc.clone()),
        )?;
        let ipfs_url = need(
            "ipfs",
            self.ipfs.clone(),
            file.as_ref().map(|f| f.ipfs_url.clone()),
        )?;
        let contract = match (self.contract, &file) {
            (Some(a), _) => a,
            (None, Some(f)) => f.contract,
            (None, None) => {
                bail!("no --contract: pass the rollup contract's address, or --cluster")
            }
        };
        let genesis_path = match (&self.genesis, &file) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => f.genesis.clone(),
            (None, None) => bail!(
                "no --genesis: pass the deployment's genesis file (its registrars' keys and depth), or --cluster"
            ),
        };
        Ok(History {
            l1_rpc,
            contract,
            ipfs_url,
            genesis: Genesis::load(&genesis_path).map_err(|e| anyhow!(e))?,
            fetch_timeout: self.fetch_timeout,
            reader: match &self.committee_key {
                Some(key) => {
                    let committee = self
                        .committee
                        .clone()
                        .or_else(|| file.as_ref()?.committee.as_ref().map(|c| c.file.clone()))
                        .context(
                            "--committee-key needs the committee file the data was sealed for: pass --committee",
                        )?;
                    Some(rebuild::CommitteeReader::load(&committee, key)?)
                }
                None => None,
            },
        })
    }
}

/// `pulse state rebuild`.
#[derive(clap::Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    history: HistoryArgs,
    /// The state directory to write; it must not hold a state yet.
    #[arg(long)]
    out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `pulse state …`.
pub fn run(command: StateCommand) -> Result<ExitCode> {
    match command {
        StateCommand::Rebuild(args) => rebuild_cmd(args),
    }
}

#[allow(clippy::print_stdout)]
fn rebuild_cmd(args: RebuildArgs) -> Result<ExitCode> {
    let h = args.history.resolve()?;
    let config = RebuildConfig {
        l1_rpc: h.l1_rpc,
        contract: h.contract,
        ipfs_url: h.ipfs_url,
        genesis: h.genesis,
        out: args.out.clone(),
        fetch_timeout: h.fetch_timeout,
        reader: h.reader,
    };
    let bar = if args.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "rebuilding [{bar:30}] batch {pos}/{len}, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let rt = crate::l1::runtime()?;
    let report = rt.block_on(rebuild::rebuild(&config, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    }));
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "rebuilt {} batch(es), {} transaction(s) in {:.1}s into {}",
            report.batches,
            report.transactions,
            report.seconds,
            report.out.display()
        );
        println!("root     {}", report.root);
        println!("L1 root  {}", report.l1_root);
        println!(
            "{}",
            if report.matches {
                "the rebuilt root is the one L1 holds"
            } else {
                "MISMATCH: the rebuilt root is not the one L1 holds"
            }
        );
    }
    Ok(if report.matches {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `pulse follower …`.
#[derive(clap::Subcommand)]
pub enum FollowerCommand {
    /// Keep a verified replica of the rollup state by following L1 and IPFS: every batch's
    /// data checked against the proofs' commitments and replayed, pinned on your own IPFS
    /// node, and the coordinator's lookups (with Merkle proofs) served from it.
    Run(FollowerArgs),
}

/// `pulse follower run`.
#[derive(clap::Args)]
pub struct FollowerArgs {
    #[command(flatten)]
    history: HistoryArgs,
    /// The follower's state directory (created; an existing one is picked up where it was).
    #[arg(long)]
    state_dir: PathBuf,
    /// Your own IPFS node's RPC API: every batch's data is pinned there.
    #[arg(long, env = "PULSE_KEEP_IPFS")]
    keep_ipfs: Option<String>,
    /// Address of the follower's API (keep it on loopback unless a proxy guards it).
    #[arg(long, default_value = "127.0.0.1:8090")]
    http: std::net::SocketAddr,
    /// How often L1 is read for new batches.
    #[arg(long, default_value = "2s", value_parser = crate::coordinator::parse_duration)]
    poll: Duration,
}

/// `pulse follower …`.
pub fn follower(command: FollowerCommand) -> Result<ExitCode> {
    let FollowerCommand::Run(args) = command;
    let h = args.history.resolve()?;
    let config = pulse_coordinator::follower::FollowerConfig {
        l1_rpc: h.l1_rpc,
        contract: h.contract,
        ipfs_url: h.ipfs_url,
        keep_ipfs_url: args.keep_ipfs,
        genesis: h.genesis,
        state_dir: args.state_dir,
        http_addr: args.http,
        poll: args.poll,
        fetch_timeout: h.fetch_timeout,
        reader: h.reader,
    };
    let rt = crate::l1::runtime()?;
    rt.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            crate::coordinator::wait_for_signal().await;
            token.cancel();
        });
        eprintln!("follower API at http://{}", config.http_addr);
        pulse_coordinator::follower::run(config, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}
