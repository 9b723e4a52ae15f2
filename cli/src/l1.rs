//! `pulse l1 deploy|status` and `pulse bench l1-gas`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, bail};
use pulse_circuits::artifacts::VerifierArtifacts;
use pulse_circuits::field::{fr_from_decimal, fr_to_decimal};
use pulse_circuits::state::State;
use pulse_l1::DeployParams;
use serde::Serialize;

/// Where the Ethereum node is.
#[derive(clap::Args, Clone)]
pub struct RpcArgs {
    /// Ethereum JSON-RPC URL.
    #[arg(long, env = "PULSE_L1_RPC", default_value = "http://127.0.0.1:8545")]
    pub rpc_url: String,
}

/// `pulse l1 …`.
#[derive(clap::Subcommand)]
pub enum L1Command {
    /// Deploy the rollup contract for a chunk circuit's verifying key; prints its address.
    ///
    /// The deployer's private key comes from `--private-key-file` or the environment
    /// variable PULSE_L1_PRIVATE_KEY (never from a flag, which other users could read).
    Deploy(DeployArgs),
    /// The rollup contract's root, batch number and last batches.
    Status {
        #[command(flatten)]
        rpc: RpcArgs,
        /// The rollup contract's address.
        #[arg(long, env = "PULSE_L1_CONTRACT")]
        contract: Address,
        /// How many of the last batches to list.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=10_000))]
        last: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `pulse l1 deploy`.
#[derive(clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    rpc: RpcArgs,
    /// The key directory written by `pulse setup` (its verifying key is deployed).
    #[arg(long)]
    keys: PathBuf,
    /// The genesis state root (decimal). Default: the root of the state at `--state`, or of
    /// an empty state of the keys' tree depth.
    #[arg(long, conflicts_with = "state")]
    genesis_root: Option<String>,
    /// A state database whose committed root is the genesis.
    #[arg(long)]
    state: Option<PathBuf>,
    /// File holding the deployer's private key (hex).
    #[arg(long)]
    private_key_file: Option<PathBuf>,
    /// The owner (manages operators). Default: the deployer.
    #[arg(long)]
    owner: Option<Address>,
    /// An operator allowed to commit batches (repeat for several). Default: the deployer.
    #[arg(long = "operator")]
    operators: Vec<Address>,
    /// The data-availability committee (`committee.json` from `pulse committee init`):
    /// every batch then needs its threshold of member attestations. Default: none.
    #[arg(long)]
    committee: Option<PathBuf>,
    /// Also write the deployment as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The deployer's key: from a file or the environment, never echoed.
pub fn load_signer(file: Option<&Path>) -> Result<PrivateKeySigner> {
    let text = match file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading the private key file {}", p.display()))?,
        None => match std::env::var("PULSE_L1_PRIVATE_KEY") {
            Ok(v) => v,
            Err(_) => bail!(
                "no L1 key: give the key file flag (--private-key-file / --operator-key-file) or set PULSE_L1_PRIVATE_KEY (hex, 32 bytes)"
            ),
        },
    };
    text.trim()
        .parse::<PrivateKeySigner>()
        // The parse error could echo key material: say only what is expected.
        .map_err(|_| anyhow::anyhow!("the L1 private key is not a 32-byte hex private key"))
}

#[derive(Serialize)]
struct DeploymentJson {
    address: String,
    tx_hash: String,
    block_number: u64,
    chain_id: u64,
    deployment_id: String,
    vk_hash: String,
    genesis_root: String,
    owner: String,
    operators: Vec<String>,
    committee: Vec<String>,
    threshold: u64,
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn genesis_root(args: &DeployArgs, depth: usize) -> Result<ark_bn254::Fr> {
    if let Some(text) = &args.genesis_root {
        return fr_from_decimal(text).with_context(|| format!("--genesis-root {text:?}"));
    }
    let (state, _tmp) = match &args.state {
        Some(path) => {
            if !path.exists() {
                bail!("--state {}: no such file", path.display());
            }
            (
                State::open(path, depth)
                    .with_context(|| format!("opening the state {}", path.display()))?,
                None,
            )
        }
        None => {
            let tmp = tempfile::tempdir().context("creating a temporary directory")?;
            let state = State::open(&tmp.path().join("genesis.redb"), depth)
                .context("creating an empty state")?;
            (state, Some(tmp))
        }
    };
    Ok(state
        .roots()
        .context("reading the state roots")?
        .state_root())
}

/// `pulse l1 deploy`.
#[allow(clippy::print_stdout)]
pub fn deploy(args: DeployArgs) -> Result<ExitCode> {
    let keys = VerifierArtifacts::load(&args.keys)
        .with_context(|| format!("loading the verifying key from {}", args.keys.display()))?;
    let genesis = genesis_root(&args, keys.manifest.params.depth)?;
    let signer = load_signer(args.private_key_file.as_deref())?;
    let me = signer.address();
    let (committee, threshold) = match &args.committee {
        Some(path) => {
            let c = pulse_dac::Committee::load(path)?;
            let members = pulse_l1::attest::member_addresses(&c).map_err(anyhow::Error::msg)?;
            (members, u64::from(c.threshold))
        }
        None => (Vec::new(), 0),
    };
    let params = DeployParams {
        genesis_root: genesis,
        vk: keys.vk.clone(),
        owner: args.owner.unwrap_or(me),
        operators: if args.operators.is_empty() {
            vec![me]
        } else {
            args.operators.clone()
        },
        committee,
        threshold,
    };
    let d = runtime()?
        .block_on(pulse_l1::deploy(&args.rpc.rpc_url, signer, &params))
        .context("deploying the rollup contract")?;
    let out = DeploymentJson {
        address: d.address.to_string(),
        tx_hash: d.tx_hash.to_string(),
        block_number: d.block_number,
        chain_id: d.chain_id,
        deployment_id: d.deployment_id.to_string(),
        vk_hash: hex::encode(d.vk_hash),
        genesis_root: fr_to_decimal(&genesis),
        owner: params.owner.to_string(),
        operators: params.operators.iter().map(ToString::to_string).collect(),
        committee: params.committee.iter().map(ToString::to_string).collect(),
        threshold: params.threshold,
    };
    let text = serde_json::to_string_pretty(&out)?;
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{text}");
    } else {
        println!("rollup contract  {}", out.address);
        println!("  chain id       {}", out.chain_id);
        println!("  deployment id  {}", out.deployment_id);
        println!(
            "  transaction    {} (block {})",
            out.tx_hash, out.block_number
        );
        println!("  genesis root   {}", out.genesis_root);
        println!("  vk hash        {}", out.vk_hash);
        println!("  owner          {}", out.owner);
        println!("  operators      {}", out.operators.join(", "));
        if out.threshold > 0 {
            println!(
                "  committee      {} of {}: {}",
                out.threshold,
                out.committee.len(),
                out.committee.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pulse l1 status`.
#[allow(clippy::print_stdout)]
pub fn status(rpc: &RpcArgs, contract: Address, last: u64, json: bool) -> Result<ExitCode> {
    let st = runtime()?
        .block_on(pulse_l1::status(&rpc.rpc_url, contract, last as usize))
        .context("reading the rollup contract")?;
    let batches: Vec<serde_json::Value> = st
        .last_batches
        .iter()
        .map(|b| {
            serde_json::json!({
                "batch": b.number,
                "new_root": b.new_root.to_string(),
                "data_cid": b.data_cid,
                "txs": b.tx_count,
                "chunks": b.chunks,
                "tx_hash": b.tx_hash.to_string(),
                "block_number": b.block_number,
            })
        })
        .collect();
    if json {
        let v = serde_json::json!({
            "address": st.address.to_string(),
            "chain_id": st.chain_id,
            "deployment_id": st.deployment_id.to_string(),
            "batch_number": st.batch_number,
            "state_root": st.state_root.to_string(),
            "vk_hash": hex::encode(st.vk_hash),
            "owner": st.owner.to_string(),
            "last_batches": batches,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("rollup contract  {} (chain {})", st.address, st.chain_id);
    println!("  deployment id  {}", st.deployment_id);
    println!("  batch number   {}", st.batch_number);
    println!("  state root     {}", st.state_root);
    println!("  vk hash        {}", hex::encode(st.vk_hash));
    println!("  owner          {}", st.owner);
    if st.last_batches.is_empty() {
        println!("  no batches committed yet");
    } else {
        println!(
            "  {:>6}  {:>6}  {:>5}  {:>8}  {:<66}  data CID",
            "batch", "chunks", "txs", "block", "transaction"
        );
        for b in &st.last_batches {
            println!(
                "  {:>6}  {:>6}  {:>5}  {:>8}  {:<66}  {}",
                b.number, b.chunks, b.tx_count, b.block_number, b.tx_hash, b.data_cid
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pulse bench l1-gas`.
#[allow(clippy::print_stdout)]
pub fn bench_gas(slots: usize, depth: usize, json: bool) -> Result<ExitCode> {
    let progress = |line: &str| {
        if !json {
            eprintln!("  {line}");
        }
    };
    let r = runtime()?
        .block_on(pulse_bench::l1_gas::run(slots, depth, &progress))
        .context("running the L1 gas benchmark")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "batch commits on anvil, chunk circuit of {} slot(s) at depth {}; one proof verified alone: {} gas",
        r.slots, r.depth, r.single_proof_gas
    );
    println!(
        "  {:>6}  {:>10}  {:>10}  {:>9}  {:>9}  {:>10}  {:>8}",
        "chunks", "gas", "per chunk", "per tx", "calldata", "target", "met"
    );
    for b in &r.batches {
        println!(
            "  {:>6}  {:>10}  {:>10}  {:>9}  {:>9}  {:>10}  {:>8}",
            b.chunks,
            b.gas,
            b.gas_per_chunk,
            b.gas_per_tx,
            b.calldata_gas,
            b.target,
            if b.gas <= b.target { "yes" } else { "no" }
        );
    }
    println!(
        "  fit: {:.0} gas per batch + {:.0} gas per chunk proof (alone: {} per proof)",
        r.fit_fixed_gas, r.fit_gas_per_chunk, r.single_proof_gas
    );
    for c in &r.committees {
        println!(
            "  availability committee {} of {}: a one-chunk batch {} gas against {} without one: {} gas for the attestation check ({} bytes of attestations)",
            c.threshold, c.members, c.gas, c.baseline_gas, c.attestation_gas, c.attestation_bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}
