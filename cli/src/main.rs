//! `pulse`: the Pulse command line.
//!
//! Thin by design: parse flags, set up telemetry, call the library.

mod bench_cluster;
mod bench_prover;
mod ceremony;
mod ceremony_net;
mod committee;
mod coordinator;
mod demo;
mod dev;
mod l1;
mod nats;
mod state;
mod user;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pulse_circuits::artifacts::{self, CircuitParams, KeyArtifacts, Stage};
use pulse_circuits::circuit::{self, ChunkCircuit};
use pulse_circuits::{solidity, vectors};
use rand::SeedableRng;

/// Pulse: a Groth16 prover cluster for a healthcare ZK-rollup.
#[derive(Parser)]
#[command(name = "pulse", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Cryptography checks.
    Crypto {
        #[command(subcommand)]
        command: CryptoCommand,
    },
    /// Facts about the chunk circuit.
    Circuit {
        #[command(subcommand)]
        command: CircuitCommand,
    },
    /// Run the Groth16 setup for a chunk circuit and write its keys and Solidity verifier.
    /// Single-party: whoever runs it can forge proofs; deployments use `pulse ceremony`.
    Setup(SetupArgs),
    /// Powers-of-tau files (phase 1 of a ceremony, snarkjs's .ptau format).
    Ptau {
        #[command(subcommand)]
        command: ceremony::PtauCommand,
    },
    /// A phase-2 ceremony among several parties (snarkjs-compatible): keys no single
    /// party can forge proofs with.
    Ceremony {
        #[command(subcommand)]
        command: ceremony::CeremonyCommand,
    },
    /// The hospitals' data-availability committee: member keys and the committee file.
    Committee {
        #[command(subcommand)]
        command: committee::CommitteeCommand,
    },
    /// snarkjs interoperability: export keys and proofs, prove snarkjs keys, check snarkjs
    /// proofs.
    Snarkjs {
        #[command(subcommand)]
        command: ceremony::SnarkjsCommand,
    },
    /// The statement end to end in one process: transactions of every kind (and invalid
    /// ones), the state on disk, chunks proven with Groth16 and verified.
    Demo(demo::DemoArgs),
    /// The coordinator service.
    Coordinator {
        #[command(subcommand)]
        command: coordinator::CoordinatorCommand,
    },
    /// Your signing key (patients, doctors, registrars).
    Keys {
        #[command(subcommand)]
        command: user::KeysCommand,
    },
    /// Your account on the rollup.
    Account {
        #[command(subcommand)]
        command: user::AccountCommand,
    },
    /// Medical records: add one (encrypted, on IPFS), or fetch and decrypt one.
    Record {
        #[command(subcommand)]
        command: user::RecordCommand,
    },
    /// Give an account access to one of your records (or all of them).
    Grant(user::GrantArgs),
    /// Take a grant back.
    Revoke(user::RevokeArgs),
    /// Log an access to a record under a grant (the audit trail).
    AccessLog(user::AccessLogArgs),
    /// Your records, grants (made and held) and the accesses logged of your records, read
    /// with a signed lookup and checked against L1.
    History(user::HistoryArgs),
    /// The rollup state: rebuild it from L1 and IPFS.
    State {
        #[command(subcommand)]
        command: state::StateCommand,
    },
    /// A verified replica of the state, kept by following L1 and IPFS.
    Follower {
        #[command(subcommand)]
        command: state::FollowerCommand,
    },
    /// A local cluster for trying Pulse out: up, down, demo.
    Dev {
        #[command(subcommand)]
        command: dev::DevCommand,
    },
    /// A proving worker (for hospitals contributing machines).
    Worker {
        #[command(subcommand)]
        command: worker::WorkerCommand,
    },
    /// The cluster's NATS access: users per role, credentials, TLS, server configuration.
    Nats {
        #[command(subcommand)]
        command: nats::NatsCommand,
    },
    /// The rollup contract on L1: deploy it, read its status.
    L1 {
        #[command(subcommand)]
        command: l1::L1Command,
    },
    /// Benchmarks, each against a baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Native sequencer speed (transactions applied per second on one core) next to the
    /// bound set by Poseidon's speed.
    Statement {
        /// Tree depth.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(2..=64))]
        depth: u64,
        /// Transactions per run (rounded up to a multiple of 4, plus one).
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        txs: u64,
        /// Runs; the median is reported.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
        repeats: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// G1 multi-scalar multiplication: Pulse's CPU backend against `ark_ec`'s MSM, or with
    /// `--backend cuda|opencl` a GPU against Pulse's CPU backend.
    Msm {
        /// log2 of the number of bases.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=24))]
        log_size: u32,
        /// Runs of each side; the median is reported.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
        repeats: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: bench_prover::BackendArgs,
    },
    /// How evenly the GPU MSM's bucket sums spread over threads on a real chunk witness
    /// (A, B, C assignments and H), before and after balancing, and on random scalars: the
    /// host model of the kernels' schedule, so no GPU is needed.
    Buckets {
        /// Transaction slots per chunk.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
        slots: u64,
        /// Tree depth (at least log2 of 2 · slots + 4).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(3..=64))]
        depth: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// NTT over Fr: Pulse's CPU backend against ark-poly's radix-2 FFT, or with
    /// `--backend cuda|opencl` a GPU against Pulse's CPU backend.
    Ntt {
        /// log2 of the transform size.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=26))]
        log_size: u32,
        /// Runs of each side; the median is reported.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=100))]
        repeats: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: bench_prover::BackendArgs,
    },
    /// A chunk-circuit Groth16 proof: Pulse's prover against ark-groth16's, with peak
    /// memory of each measured in a child process; or with `--backend cuda|opencl`, Pulse's
    /// prover on a GPU against it on the CPU.
    Prove {
        /// Transaction slots per chunk.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
        slots: u64,
        /// Tree depth.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=64))]
        depth: u64,
        /// Runs of each prover; the median is reported.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
        repeats: u64,
        /// The chunk proved: real (every slot a valid transaction, of every kind, over a
        /// populated state: what workers prove) or padding (all no-ops; cheaper MSMs).
        #[arg(long, default_value = "real", value_parser = ["real", "padding"])]
        witness: String,
        /// Internal: prove once with this prover and print its peak memory as JSON.
        #[arg(long, hide = true, value_parser = ["ark", "pulse", "pulse-first"])]
        memory_of: Option<String>,
        /// Instead of a chunk: this snarkjs proving key (any circom circuit), against
        /// snarkjs's own `groth16 prove` on the same key and witness.
        #[arg(long, requires = "wtns")]
        zkey: Option<PathBuf>,
        /// The witness for --zkey (a circom .wtns).
        #[arg(long, requires = "zkey")]
        wtns: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: bench_prover::BackendArgs,
    },
    /// A phase-2 ceremony for a chunk circuit, step by step: the ptau made, read and
    /// checked, the initial key, a contribution, a beacon, the whole verification, peak
    /// memory; with --snarkjs, snarkjs's contribution and verification of the same files.
    Ceremony {
        /// Transaction slots per chunk.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=1024))]
        slots: u64,
        /// Tree depth.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=64))]
        depth: u64,
        /// Also make the initial key from the ptau's points (what a ceremony over a public
        /// ptau does; one group operation per coefficient) and time it.
        #[arg(long)]
        from_points: bool,
        /// Also time snarkjs's `zkey contribute` and `zkey verify` on the same files.
        #[arg(long)]
        snarkjs: bool,
        /// Keep the files (ptau, ceremony, finalized keys) in this directory.
        #[arg(long)]
        keep: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A chunk proof split into 1, 2, 4… shards (its MSMs by base range, as workers split
    /// it) against the unsplit proof: per-shard work, bytes moved, CPU overhead, and each
    /// role's peak memory (unsplit worker, assembler, shard worker) in child processes.
    Split {
        /// Transaction slots per chunk.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
        slots: u64,
        /// Tree depth.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(2..=64))]
        depth: u64,
        /// Shard counts, comma-separated.
        #[arg(long, default_value = "1,2,4", value_parser = bench_prover::parse_shard_counts)]
        shards: bench_prover::ShardCounts,
        /// Runs of each configuration; the median is reported.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
        repeats: u64,
        /// The chunk proved: real (valid transactions of every kind) or padding.
        #[arg(long, default_value = "real", value_parser = ["real", "padding"])]
        witness: String,
        /// Internal: run one role alone and print its peak memory as JSON.
        #[arg(long, hide = true, value_parser = ["unsplit", "assembler", "shard"])]
        memory_of: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Batch latency and throughput of a local cluster under load (or of a running one),
    /// with the time in each stage; `--compare-workers` / `--compare-slots` run a second
    /// configuration in the same run.
    Cluster(bench_cluster::ClusterBenchArgs),
    /// Gas of batch commits of K = 1, 2, 4, 8, 16 real chunk proofs on a local anvil that
    /// it starts, next to one proof verified alone.
    L1Gas {
        /// Transaction slots per chunk.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
        slots: u64,
        /// Tree depth (at least log2 of 31 · slots + 1).
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(2..=32))]
        depth: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CryptoCommand {
    /// Check Poseidon or EdDSA-Poseidon test vectors (circomlibjs format).
    ///
    /// Prints one line per failed vector and ends with `N passed, M failed`; exits non-zero
    /// if any vector failed.
    CheckVectors {
        /// Vector files (JSON); the format is told apart by content.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print test vectors made by Pulse (same JSON format), for checking Pulse with a peer
    /// implementation such as circomlibjs. `tx` vectors are signed transaction messages
    /// for random deployments (chain id, contract, deployment id), as a wallet signs them.
    MakeVectors {
        /// `poseidon`, `eddsa` or `tx`.
        #[arg(long, value_parser = ["poseidon", "eddsa", "tx"])]
        kind: String,
        /// How many vectors.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        count: u64,
        /// Seed for the random keys, messages and inputs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(clap::Args, Clone, Copy)]
struct ParamArgs {
    /// Transaction slots per chunk.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
    slots: u64,
    /// Depth of the state trees (2^depth accounts, records and grants).
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=64))]
    depth: u64,
}

impl ParamArgs {
    fn params(self) -> CircuitParams {
        CircuitParams::new(self.slots as usize, self.depth as usize)
    }
}

#[derive(Subcommand)]
enum CircuitCommand {
    /// Print the constraint count, in total, per slot and per transaction kind.
    Info {
        #[command(flatten)]
        params: ParamArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct SetupArgs {
    #[command(flatten)]
    params: ParamArgs,
    /// Directory to write `proving.key`, `verifying.key`, `manifest.json` and the verifier.
    #[arg(long)]
    out: PathBuf,
    /// Name of the generated Solidity contract.
    #[arg(long, default_value = "PulseChunkVerifier")]
    contract_name: String,
    /// Derive the setup randomness from this seed. INSECURE: anyone who knows the seed can
    /// forge proofs. For tests and benchmarks only.
    #[arg(long)]
    insecure_seed: Option<u64>,
}

fn main() -> ExitCode {
    // arkworks' constraint gadgets open INFO spans (target `gr1cs`) whose fields print the
    // whole constraint system: at `RUST_LOG=info` a proof would spend minutes and gigabytes
    // formatting them. They stay off unless RUST_LOG names `gr1cs` itself.
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    let directives = if directives.contains("gr1cs") {
        directives
    } else {
        format!("{directives},gr1cs=off")
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&directives)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,gr1cs=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Crypto {
            command: CryptoCommand::CheckVectors { files },
        } => check_vectors(&files),
        Command::Crypto {
            command: CryptoCommand::MakeVectors { kind, count, seed },
        } => make_vectors(&kind, count as usize, seed),
        Command::Circuit {
            command: CircuitCommand::Info { params, json },
        } => circuit_info(params.params(), json),
        Command::Setup(args) => setup(args),
        Command::Ptau { command } => ceremony::ptau(command),
        Command::Ceremony { command } => ceremony::ceremony(command),
        Command::Committee { command } => committee::run(command),
        Command::Snarkjs { command } => ceremony::snarkjs(command),
        Command::Demo(args) => demo::run(args).map(|()| ExitCode::SUCCESS),
        Command::Bench {
            command:
                BenchCommand::Statement {
                    depth,
                    txs,
                    repeats,
                    json,
                },
        } => bench_statement(depth as usize, txs as usize, repeats as usize, json),
        Command::Bench {
            command:
                BenchCommand::Msm {
                    log_size,
                    repeats,
                    json,
                    backend,
                },
        } => bench_prover::msm(log_size, repeats as usize, json, &backend),
        Command::Bench {
            command: BenchCommand::Buckets { slots, depth, json },
        } => bench_prover::buckets(slots as usize, depth as usize, json),
        Command::Bench {
            command:
                BenchCommand::Ntt {
                    log_size,
                    repeats,
                    json,
                    backend,
                },
        } => bench_prover::ntt(log_size, repeats as usize, json, &backend),
        Command::Coordinator {
            command: coordinator::CoordinatorCommand::Run(args),
        } => coordinator::run(args),
        Command::Worker {
            command: worker::WorkerCommand::Run(args),
        } => worker::run(args),
        Command::Worker {
            command: worker::WorkerCommand::Selftest(args),
        } => worker::selftest(args),
        Command::Worker {
            command: worker::WorkerCommand::Kernels(args),
        } => worker::kernels(args),
        Command::Worker {
            command: worker::WorkerCommand::Check(args),
        } => worker::check(args),
        Command::Nats { command } => nats::run(command),
        Command::Dev { command } => dev::run(command),
        Command::State { command } => state::run(command),
        Command::Follower { command } => state::follower(command),
        Command::Keys { command } => user::keys(command),
        Command::Account { command } => user::account(command),
        Command::Record { command } => user::record(command),
        Command::Grant(args) => user::grant(args),
        Command::Revoke(args) => user::revoke(args),
        Command::History(args) => user::history(args),
        Command::AccessLog(args) => user::access_log(args),
        Command::L1 {
            command: l1::L1Command::Deploy(args),
        } => l1::deploy(args),
        Command::L1 {
            command:
                l1::L1Command::Status {
                    rpc,
                    contract,
                    last,
                    json,
                },
        } => l1::status(&rpc, contract, last, json),
        Command::Bench {
            command: BenchCommand::L1Gas { slots, depth, json },
        } => l1::bench_gas(slots as usize, depth as usize, json),
        Command::Bench {
            command: BenchCommand::Cluster(args),
        } => bench_cluster::run(args),
        Command::Bench {
            command:
                BenchCommand::Ceremony {
                    slots,
                    depth,
                    from_points,
                    snarkjs,
                    keep,
                    json,
                },
        } => ceremony::bench_ceremony(
            CircuitParams::new(slots as usize, depth as usize),
            from_points,
            snarkjs,
            keep.as_deref(),
            json,
        ),
        Command::Bench {
            command:
                BenchCommand::Split {
                    slots,
                    depth,
                    shards,
                    repeats,
                    witness,
                    memory_of,
                    json,
                },
        } => bench_prover::split(
            slots as usize,
            depth as usize,
            &shards.0,
            repeats as usize,
            &witness,
            memory_of.as_deref(),
            json,
        ),
        Command::Bench {
            command:
                BenchCommand::Prove {
                    zkey: Some(zkey),
                    wtns: Some(wtns),
                    repeats,
                    json,
                    ..
                },
        } => ceremony::bench_zkey(&zkey, &wtns, repeats as usize, json),
        Command::Bench {
            command:
                BenchCommand::Prove {
                    slots,
                    depth,
                    repeats,
                    witness,
                    memory_of,
                    json,
                    backend,
                    ..
                },
        } => bench_prover::prove(
            slots as usize,
            depth as usize,
            repeats as usize,
            &witness,
            memory_of.as_deref(),
            json,
            &backend,
        ),
    }
}

#[allow(clippy::print_stdout)]
fn check_vectors(files: &[PathBuf]) -> Result<ExitCode> {
    let (mut passed, mut failed) = (0usize, 0usize);
    for f in files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading vector file {}", f.display()))?;
        match vectors::check_file(&text) {
            Ok(report) => {
                for line in &report.failures {
                    println!("FAIL {} ({}): {line}", f.display(), report.kind);
                }
                passed += report.passed;
                failed += report.failures.len();
            }
            Err(e) => {
                println!("FAIL {}: {e}", f.display());
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[allow(clippy::print_stdout)]
fn circuit_info(params: CircuitParams, json: bool) -> Result<ExitCode> {
    let info = circuit::info(params).context("synthesizing the chunk circuit")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "chunk circuit: {} slots, tree depth {}",
        info.slots, info.depth
    );
    println!("  constraints total      {:>10}", info.constraints_total);
    println!("  constraints per slot   {:>10}", info.constraints_per_slot);
    println!("  outside the slots      {:>10}", info.constraints_fixed);
    println!("  public inputs          {:>10}", info.public_inputs);
    println!("  witness variables      {:>10}", info.witness_variables);
    println!("one slot, by component:");
    for (k, v) in &info.breakdown {
        println!("  {k:<22} {v:>10}");
    }
    println!("components each kind uses (a slot runs all of them):");
    for (k, v) in &info.per_kind {
        println!("  {k:<22} {v:>10}");
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn setup(args: SetupArgs) -> Result<ExitCode> {
    let params = args.params.params();
    if args.out.exists() && args.out.join(artifacts::MANIFEST_FILE).exists() {
        bail!(
            "{} already holds keys; choose another --out or remove it first",
            args.out.display()
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating output directory {}", args.out.display()))?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let progress = |s: Stage| {
        bar.set_message(format!(
            "{s} ({} slots, depth {})",
            params.slots, params.depth
        ))
    };
    let mut rng = match args.insecure_seed {
        Some(seed) => rand_chacha::ChaCha20Rng::seed_from_u64(seed),
        None => rand_chacha::ChaCha20Rng::from_entropy(),
    };
    let keys: KeyArtifacts =
        artifacts::setup_with_progress(ChunkCircuit::blank(params), params, &mut rng, &progress)
            .context("running the Groth16 setup")?;
    keys.write_with_progress(&args.out, &progress)
        .with_context(|| format!("writing keys to {}", args.out.display()))?;
    let sol = solidity::generate_verifier(keys.vk(), &args.contract_name)
        .context("generating the Solidity verifier")?;
    let sol_path = args.out.join(format!("{}.sol", args.contract_name));
    std::fs::write(&sol_path, sol).with_context(|| format!("writing {}", sol_path.display()))?;
    bar.finish_and_clear();
    let m = &keys.manifest;
    println!("circuit id     {}", m.circuit_id);
    println!("vk hash        {}", m.vk_hash);
    println!("constraints    {}", m.constraints);
    println!("public inputs  {}", m.public_inputs);
    println!("wrote          {}", args.out.display());
    println!("verifier       {}", sol_path.display());
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn bench_statement(depth: usize, txs: usize, repeats: usize, json: bool) -> Result<ExitCode> {
    let r = pulse_bench::statement::run(depth, txs, repeats).context("running the benchmark")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "native state transition, depth {}, {} transactions, one core",
        r.depth, r.txs
    );
    println!(
        "  poseidon ns/hash by inputs   {:?}",
        r.poseidon_ns.map(|x| x.round())
    );
    println!(
        "  poseidon hashes per tx       {:?}",
        r.hashes_per_tx.map(|x| (x * 10.0).round() / 10.0)
    );
    println!(
        "  bound (poseidon only)        {:>10.0} tx/s",
        r.bound_tx_per_s
    );
    println!(
        "  sequencer (sigs pre-checked) {:>10.0} tx/s",
        r.applied_tx_per_s
    );
    println!("  ratio bound/sequencer        {:>10.2}", r.ratio_to_bound);
    println!(
        "  with inline signature checks {:>10.0} tx/s",
        r.applied_with_signatures_tx_per_s
    );
    println!("  batch commit                 {:>10.1} ms", r.commit_ms);
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn make_vectors(kind: &str, count: usize, seed: u64) -> Result<ExitCode> {
    let v = match kind {
        "eddsa" => vectors::make_eddsa_vectors(count, seed),
        "tx" => vectors::make_tx_vectors(count, seed, |chain_id, contract| {
            pulse_l1::deployment_id(chain_id, contract.into())
        }),
        _ => vectors::make_poseidon_vectors(count, seed),
    };
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(ExitCode::SUCCESS)
}
