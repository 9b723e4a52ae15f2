//! `pulse ptau`, `pulse ceremony`, `pulse snarkjs`: setups no single party controls, and
//! files snarkjs reads and writes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ark_bn254::{Bn254, Fr};
use ark_groth16::Groth16;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use pulse_ceremony::ceremony::{self, Ceremony, Circuit, FINAL_ZKEY, R1CS};
use pulse_ceremony::{json, keys, ptau::Ptau, r1cs_file::CircomR1cs, wtns};
use pulse_circuits::artifacts::KeyArtifacts;
use pulse_circuits::circuit::ChunkCircuit;
use pulse_circuits::{sample, solidity};
use pulse_prover::{CpuBackend, Prover, QapWitness, Query};
use rand::SeedableRng;

/// `pulse ptau`.
#[derive(Subcommand)]
pub enum PtauCommand {
    /// Make a prepared powers-of-tau file for development: ONE party (this process) knows
    /// its τ, so keys from it protect nothing. Deployments take a ptau from a public
    /// ceremony (the Perpetual Powers of Tau, Hermez's files) and check it with `ptau check`.
    New {
        /// `2^power` powers (a circuit of up to about 2^power constraints).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=27))]
        power: u32,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a .ptau file (snarkjs's format): its structure, that its points are on the
    /// curve, and that every section holds powers of one τ (batched pairing checks).
    Check {
        /// The file.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `pulse ceremony`.
#[derive(Subcommand)]
pub enum CeremonyCommand {
    /// Start a phase-2 ceremony for the chunk circuit (or any circom .r1cs) over a ptau.
    New {
        /// Transaction slots per chunk (the chunk circuit).
        #[arg(long, required_unless_present = "r1cs", value_parser = clap::value_parser!(u64).range(1..=4096))]
        slots: Option<u64>,
        /// Depth of the state trees (the chunk circuit).
        #[arg(long, required_unless_present = "r1cs", value_parser = clap::value_parser!(u64).range(2..=64))]
        depth: Option<u64>,
        /// A circom .r1cs instead of the chunk circuit (its keys stay a .zkey).
        #[arg(long, conflicts_with_all = ["slots", "depth"])]
        r1cs: Option<PathBuf>,
        /// The prepared powers-of-tau file.
        #[arg(long)]
        ptau: PathBuf,
        /// The ceremony directory to create.
        #[arg(long)]
        out: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add your contribution: fresh randomness from the operating system (and your text,
    /// if given); the secret is never written. Publish the hash printed.
    Contribute {
        /// The ceremony directory.
        dir: PathBuf,
        /// Your name, published with the contribution.
        #[arg(long)]
        name: String,
        /// Extra randomness of yours, mixed in with the operating system's.
        #[arg(long, env = "PULSE_CEREMONY_ENTROPY", hide_env_values = true)]
        entropy: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Close the ceremony with a public random beacon (for example a future block hash):
    /// anyone recomputes its contribution.
    Beacon {
        /// The ceremony directory.
        dir: PathBuf,
        /// The beacon's value, hex (1 to 255 bytes).
        #[arg(long)]
        hex: String,
        /// SHA-256 is applied 2^this many times to the value.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(10..=63))]
        iterations_exp: u8,
        /// The name the beacon is recorded under.
        #[arg(long, default_value = "beacon")]
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a contribution made with snarkjs (`snarkjs zkey contribute` on this ceremony's
    /// latest .zkey), checked before it is accepted.
    Import {
        /// The ceremony directory.
        dir: PathBuf,
        /// The .zkey snarkjs wrote.
        #[arg(long)]
        zkey: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify the whole ceremony from the circuit and the ptau: the initial key, then every
    /// contribution's proof of knowledge and its effect on the key.
    Verify {
        /// The ceremony directory.
        dir: PathBuf,
        /// The ptau, if not where the ceremony found it.
        #[arg(long)]
        ptau: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the ceremony through the cluster, as its host (the operator's coordinator
    /// credentials): each participant in turn is offered the latest key on NATS (the key on
    /// IPFS), and its contribution is verified before the next is asked.
    Host(crate::ceremony_net::HostArgs),
    /// Take part in a ceremony run through the cluster (a hospital's worker credentials):
    /// wait for your turn, contribute, announce it, and wait for the host's verdict.
    Join(crate::ceremony_net::JoinArgs),
    /// Verify the ceremony and write its keys, as `pulse setup` writes them (with the
    /// transcript in the manifest), plus the final .zkey and the circuit's .r1cs.
    Finalize {
        /// The ceremony directory.
        dir: PathBuf,
        /// The key directory to write.
        #[arg(long)]
        out: PathBuf,
        /// The ptau, if not where the ceremony found it.
        #[arg(long)]
        ptau: Option<PathBuf>,
        /// Name of the generated Solidity verifier contract.
        #[arg(long, default_value = "PulseChunkVerifier")]
        contract_name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `pulse snarkjs`.
#[derive(Subcommand)]
pub enum SnarkjsCommand {
    /// Write a ceremony's keys as snarkjs reads them: circuit.r1cs, circuit_final.zkey,
    /// verification_key.json.
    Export {
        /// A key directory from `pulse ceremony finalize`.
        #[arg(long)]
        keys: PathBuf,
        /// The directory to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Prove a sample chunk (every slot a valid transaction) with the keys and write
    /// proof.json, public.json and its witness.wtns.
    Proof {
        /// A key directory.
        #[arg(long)]
        keys: PathBuf,
        /// The directory to write.
        #[arg(long)]
        out: PathBuf,
        /// Sign the sample's transactions for the rollup contract at this address (with
        /// --chain-id), so its proofs verify there; by default an offline stand-in.
        #[arg(long, requires = "chain_id")]
        contract: Option<alloy::primitives::Address>,
        /// The chain of --contract.
        #[arg(long, requires = "contract")]
        chain_id: Option<u64>,
    },
    /// Prove any circom circuit from a snarkjs .zkey and .wtns with Pulse's prover; write
    /// proof.json and public.json.
    Prove {
        /// The proving key.
        #[arg(long)]
        zkey: PathBuf,
        /// The witness.
        #[arg(long)]
        wtns: PathBuf,
        /// The directory to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a snarkjs proof.json and public.json against a key directory's verifying key
    /// (or a verification_key.json).
    Verify {
        /// A key directory.
        #[arg(long, conflicts_with = "vk", required_unless_present = "vk")]
        keys: Option<PathBuf>,
        /// A snarkjs verification_key.json.
        #[arg(long)]
        vk: Option<PathBuf>,
        /// The proof.
        #[arg(long)]
        proof: PathBuf,
        /// The public values.
        #[arg(long)]
        public: PathBuf,
        /// Also check the proof with the rollup contract at this address (a chunk proof:
        /// the contract supplies its deployment id).
        #[arg(long)]
        contract: Option<alloy::primitives::Address>,
        #[command(flatten)]
        rpc: crate::l1::RpcArgs,
    },
}

fn spinner(json: bool) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[allow(clippy::print_stdout)]
fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `pulse ptau …`.
#[allow(clippy::print_stdout)]
pub fn ptau(command: PtauCommand) -> Result<ExitCode> {
    match command {
        PtauCommand::New { power, out, json } => {
            if out.exists() {
                bail!(
                    "{} exists; choose another --out or remove it first",
                    out.display()
                );
            }
            let bar = spinner(json);
            bar.set_message(format!(
                "computing 2^{power} powers and their Lagrange forms"
            ));
            let t = Instant::now();
            let p = Ptau::new(power, &mut rand_chacha::ChaCha20Rng::from_entropy())
                .context("making the ptau")?;
            let bytes = p.to_bytes();
            write(&out, &bytes)?;
            bar.finish_and_clear();
            let summary = serde_json::json!({
                "file": out, "power": power, "bytes": bytes.len(),
                "sha256": pulse_circuits::artifacts::Hash32::digest(&bytes).to_hex(),
                "seconds": t.elapsed().as_secs_f64(),
                "warning": "made by one party, which knew its tau: for development only",
            });
            if json {
                print_json(&summary)?;
            } else {
                println!(
                    "wrote {} (2^{power} powers, {} bytes, {:.1} s)",
                    out.display(),
                    bytes.len(),
                    t.elapsed().as_secs_f64()
                );
                println!(
                    "warning: made by this one process, which knew its tau: for development only"
                );
            }
        }
        PtauCommand::Check { file, json } => {
            let bar = spinner(json);
            bar.set_message("reading");
            let t = Instant::now();
            let (p, sha) = ceremony::read_ptau(&file)?;
            let read_s = t.elapsed().as_secs_f64();
            bar.set_message("checking the powers (batched pairings and MSMs)");
            let t = Instant::now();
            p.check(&mut rand_chacha::ChaCha20Rng::from_entropy())
                .with_context(|| format!("{} does not check", file.display()))?;
            bar.finish_and_clear();
            let check_s = t.elapsed().as_secs_f64();
            if json {
                print_json(&serde_json::json!({
                    "file": file, "power": p.power, "prepared": p.lagrange.is_some(),
                    "sha256": sha.to_hex(), "read_seconds": read_s, "check_seconds": check_s,
                }))?;
            } else {
                println!(
                    "{}: 2^{} powers{}, consistent (read {read_s:.1} s, checked {check_s:.1} s); sha256 {sha}",
                    file.display(),
                    p.power,
                    if p.lagrange.is_some() {
                        ", prepared for phase 2"
                    } else {
                        ", NOT prepared for phase 2"
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_of(bar: &ProgressBar) -> impl Fn(&str) + '_ {
    move |s: &str| bar.set_message(s.to_owned())
}

#[allow(clippy::print_stdout)]
fn print_contribution(s: &ceremony::ContributionSummary, json: bool) -> Result<()> {
    if json {
        return print_json(s);
    }
    println!("contribution #{} by {:?}", s.index, s.name);
    println!("contribution hash (publish it):");
    for chunk in s.hash.as_bytes().chunks(32) {
        println!("    {}", String::from_utf8_lossy(chunk));
    }
    println!("wrote {}", s.file.display());
    Ok(())
}

/// `pulse ceremony …`.
#[allow(clippy::print_stdout)]
pub fn ceremony(command: CeremonyCommand) -> Result<ExitCode> {
    match command {
        CeremonyCommand::Host(args) => return crate::ceremony_net::run_host(args),
        CeremonyCommand::Join(args) => return crate::ceremony_net::run_join(args),
        CeremonyCommand::New {
            slots,
            depth,
            r1cs,
            ptau,
            out,
            json,
        } => {
            let bar = spinner(json);
            let progress = progress_of(&bar);
            let (circuit, constraints) = match &r1cs {
                Some(path) => {
                    let c = CircomR1cs::parse(read(path, "the circuit")?)
                        .with_context(|| format!("{} is not a circom .r1cs", path.display()))?;
                    (Circuit::R1cs, c)
                }
                None => {
                    let (Some(slots), Some(depth)) = (slots, depth) else {
                        bail!("give --slots and --depth (the chunk circuit) or --r1cs FILE");
                    };
                    let p = pulse_circuits::artifacts::CircuitParams::new(
                        slots as usize,
                        depth as usize,
                    );
                    progress("building the chunk circuit's constraints");
                    let c = ceremony::chunk_r1cs(p).map_err(anyhow::Error::msg)?;
                    (Circuit::Chunk { params: p }, c)
                }
            };
            let c = Ceremony::create(&out, circuit, &constraints, &ptau, &progress)?;
            bar.finish_and_clear();
            if json {
                print_json(&c.manifest)?;
            } else {
                println!(
                    "ceremony in {}: {} constraints, {} public values, ptau 2^{}",
                    out.display(),
                    c.manifest.constraints,
                    c.manifest.public,
                    c.manifest.ptau.power
                );
                println!("circuit hash {}", c.manifest.circuit_hash);
                println!(
                    "next: each participant runs `pulse ceremony contribute {} --name NAME`",
                    out.display()
                );
            }
        }
        CeremonyCommand::Contribute {
            dir,
            name,
            entropy,
            json,
        } => {
            let bar = spinner(json);
            let mut c = Ceremony::open(&dir)?;
            let s = c.contribute(
                &name,
                entropy.as_deref().unwrap_or_default().as_bytes(),
                &progress_of(&bar),
            )?;
            bar.finish_and_clear();
            print_contribution(&s, json)?;
        }
        CeremonyCommand::Beacon {
            dir,
            hex: value,
            iterations_exp,
            name,
            json,
        } => {
            let bytes = hex::decode(value.trim_start_matches("0x")).with_context(|| {
                format!(
                    "--hex {value:?} is not hexadecimal (write the beacon's bytes as hex digits)"
                )
            })?;
            let bar = spinner(json);
            let mut c = Ceremony::open(&dir)?;
            let s = c.beacon(&bytes, iterations_exp, &name, &progress_of(&bar))?;
            bar.finish_and_clear();
            print_contribution(&s, json)?;
        }
        CeremonyCommand::Import { dir, zkey, json } => {
            let mut c = Ceremony::open(&dir)?;
            let s = c.import(&zkey).with_context(|| {
                format!("{} is not the next step of this ceremony", zkey.display())
            })?;
            print_contribution(&s, json)?;
        }
        CeremonyCommand::Verify { dir, ptau, json } => {
            let bar = spinner(json);
            let c = Ceremony::open(&dir)?;
            let t = Instant::now();
            let (_, report) = c
                .verify(ptau.as_deref(), &progress_of(&bar))
                .with_context(|| format!("the ceremony in {} does not verify", dir.display()))?;
            bar.finish_and_clear();
            if json {
                let mut v = serde_json::to_value(&report)?;
                v["seconds"] = serde_json::json!(t.elapsed().as_secs_f64());
                print_json(&v)?;
            } else {
                print_report(&report);
                println!("ceremony verified in {:.1} s", t.elapsed().as_secs_f64());
            }
        }
        CeremonyCommand::Finalize {
            dir,
            out,
            ptau,
            contract_name,
            json,
        } => {
            let bar = spinner(json);
            let c = Ceremony::open(&dir)?;
            let (keys, report) = c
                .finalize(&out, ptau.as_deref(), &progress_of(&bar))
                .with_context(|| format!("finalizing the ceremony in {}", dir.display()))?;
            let sol = solidity::generate_verifier(keys.vk(), &contract_name)
                .context("generating the Solidity verifier")?;
            write(&out.join(format!("{contract_name}.sol")), sol.as_bytes())?;
            bar.finish_and_clear();
            if json {
                print_json(&keys.manifest)?;
            } else {
                print_report(&report);
                println!("keys      {}", out.display());
                println!("vk hash   {}", keys.manifest.vk_hash);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn print_report(r: &ceremony::Report) {
    println!("circuit hash     {}", r.circuit_hash);
    for (i, c) in r.contributions.iter().enumerate() {
        let kind = if c.beacon { " (beacon)" } else { "" };
        println!("contribution #{} {:?}{kind}: {}", i + 1, c.name, c.hash);
    }
    println!("transcript hash  {}", r.transcript_hash);
}

/// The keys of a ceremony: Pulse's key directory and its final .zkey.
fn ceremony_keys(dir: &Path) -> Result<KeyArtifacts> {
    let keys = KeyArtifacts::load(dir)
        .with_context(|| format!("loading the keys in {}", dir.display()))?;
    if keys.manifest.ceremony.is_none() || !dir.join(FINAL_ZKEY).exists() {
        bail!(
            "{} holds keys from a single-party `pulse setup`, which snarkjs cannot check; make keys with `pulse ceremony` and `pulse ceremony finalize`",
            dir.display()
        );
    }
    Ok(keys)
}

/// `pulse snarkjs …`.
#[allow(clippy::print_stdout)]
pub fn snarkjs(command: SnarkjsCommand) -> Result<ExitCode> {
    match command {
        SnarkjsCommand::Export { keys, out } => {
            let k = ceremony_keys(&keys)?;
            let zkey = ceremony::read_zkey(&keys.join(FINAL_ZKEY))?;
            if keys::verifying_key(&zkey) != *k.vk() {
                bail!(
                    "{} does not match the keys' verifying key: the key directory was altered",
                    FINAL_ZKEY
                );
            }
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for f in [R1CS, FINAL_ZKEY] {
                std::fs::copy(keys.join(f), out.join(f))
                    .with_context(|| format!("copying {f} to {}", out.display()))?;
            }
            write(
                &out.join("verification_key.json"),
                json::to_string(&json::vk_json(k.vk())).as_bytes(),
            )?;
            println!(
                "wrote {R1CS}, {FINAL_ZKEY}, verification_key.json to {}",
                out.display()
            );
        }
        SnarkjsCommand::Proof {
            keys,
            out,
            contract,
            chain_id,
        } => {
            let k = KeyArtifacts::load(&keys)
                .with_context(|| format!("loading the keys in {}", keys.display()))?;
            let params = k.manifest.params;
            let state = tempfile::tempdir().context("a temporary directory")?;
            let deployment = match (contract, chain_id) {
                (Some(c), Some(id)) => pulse_l1::deployment(id, c),
                _ => sample::offline_deployment(),
            };
            let witness = sample::mixed_chunk(state.path(), params, 1, &deployment)
                .context("making a sample chunk (a deeper tree may be needed)")?;
            let inputs = witness.public_inputs();
            let circuit = ChunkCircuit { params, witness };
            let assignment = QapWitness::compute(&CpuBackend::new(), circuit.clone())
                .context("computing the witness")?
                .scalars(Query::A)
                .to_vec();
            let prover = match k.constraints.clone() {
                Some(r1cs) => Prover::with_constraints(CpuBackend::new(), k.pk.clone(), r1cs),
                None => Prover::new(CpuBackend::new(), k.pk.clone()),
            }
            .context("preparing the prover")?;
            let proof = prover
                .prove(circuit, &mut rand_chacha::ChaCha20Rng::from_entropy())
                .context("proving")?;
            check(k.vk(), &inputs, &proof)?;
            write_proof(&out, &proof, &inputs)?;
            write(&out.join("witness.wtns"), &wtns::to_bytes(&assignment))?;
            println!(
                "wrote proof.json, public.json, witness.wtns to {}",
                out.display()
            );
        }
        SnarkjsCommand::Prove { zkey, wtns: w, out } => {
            let t = Instant::now();
            let (proof, inputs) = prove_zkey(&zkey, &w)?;
            write_proof(&out, &proof, &inputs)?;
            println!(
                "proved in {:.2} s; wrote proof.json and public.json to {}",
                t.elapsed().as_secs_f64(),
                out.display()
            );
        }
        SnarkjsCommand::Verify {
            keys,
            vk,
            proof,
            public,
            contract,
            rpc,
        } => {
            let vk = match (keys, vk) {
                (Some(dir), _) => {
                    pulse_circuits::artifacts::VerifierArtifacts::load(&dir)
                        .with_context(|| format!("loading the verifying key in {}", dir.display()))?
                        .vk
                }
                (None, Some(file)) => {
                    json::read_vk(&String::from_utf8_lossy(&read(&file, "the verifying key")?))
                        .with_context(|| {
                            format!("{} is not a snarkjs verification key", file.display())
                        })?
                }
                (None, None) => bail!("give --keys DIR or --vk FILE"),
            };
            let p = json::read_proof(&String::from_utf8_lossy(&read(&proof, "the proof")?))
                .with_context(|| format!("{} is not a snarkjs proof", proof.display()))?;
            let inputs = json::read_public(&String::from_utf8_lossy(&read(
                &public,
                "the public values",
            )?))
            .with_context(|| format!("{} is not a snarkjs public.json", public.display()))?;
            check(&vk, &inputs, &p)?;
            println!("proof valid");
            if let Some(address) = contract {
                let chunk = pulse_l1::ChunkProof::new(&inputs, p)
                    .map_err(anyhow::Error::msg)
                    .context("a chunk proof has four public values")?;
                let ok = crate::l1::runtime()?
                    .block_on(pulse_l1::verify_chunk_proof(&rpc.rpc_url, address, &chunk))
                    .with_context(|| format!("asking the rollup contract at {address}"))?;
                if !ok {
                    bail!("the rollup contract at {address} refuses the proof");
                }
                println!("proof valid on L1 (contract {address})");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `proof.json` and `public.json` into `out` (created if missing).
fn write_proof(out: &Path, proof: &ark_groth16::Proof<Bn254>, inputs: &[Fr]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write(
        &out.join("proof.json"),
        json::to_string(&json::proof_json(proof)).as_bytes(),
    )?;
    write(
        &out.join("public.json"),
        json::to_string(&json::public_json(inputs)).as_bytes(),
    )
}

fn check(
    vk: &ark_groth16::VerifyingKey<Bn254>,
    inputs: &[Fr],
    proof: &ark_groth16::Proof<Bn254>,
) -> Result<()> {
    if inputs.len() + 1 != vk.gamma_abc_g1.len() {
        bail!(
            "{} public values for a key that takes {}",
            inputs.len(),
            vk.gamma_abc_g1.len() - 1
        );
    }
    let pvk = ark_groth16::prepare_verifying_key(vk);
    if !Groth16::<Bn254>::verify_proof(&pvk, proof, inputs).context("verifying")? {
        bail!("the proof is not valid for these public values and this key");
    }
    Ok(())
}

/// Pulse's proof of a snarkjs key and witness, and the public values.
pub fn prove_zkey(zkey: &Path, w: &Path) -> Result<(ark_groth16::Proof<Bn254>, Vec<Fr>)> {
    let (prover, assignment, np) = imported_prover(zkey, w)?;
    let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
    let (r, s) = (
        ark_ff::UniformRand::rand(&mut rng),
        ark_ff::UniformRand::rand(&mut rng),
    );
    let inputs = assignment[1..=np].to_vec();
    let (proof, _) = prover
        .prove_assignment(assignment, np + 1, r, s)
        .context("proving")?;
    Ok((proof, inputs))
}

/// A prover for a snarkjs key, the witness, and the number of public values.
pub fn imported_prover(zkey: &Path, w: &Path) -> Result<(Prover<CpuBackend>, Vec<Fr>, usize)> {
    let z = ceremony::read_zkey(zkey)?;
    let assignment = wtns::parse(read(w, "the witness")?)
        .with_context(|| format!("{} is not a circom .wtns", w.display()))?;
    if assignment.len() != z.n_vars as usize {
        bail!(
            "the witness has {} values but the key's circuit has {} wires: they are not for the same circuit",
            assignment.len(),
            z.n_vars
        );
    }
    let rows = keys::ab_rows(&z).with_context(|| format!("reading {}'s rows", zkey.display()))?;
    let prover = Prover::for_imported(CpuBackend::new(), keys::proving_key(&z), rows)
        .context("preparing the prover")?;
    Ok((prover, assignment, z.n_public as usize))
}

/// One run of a prover as a child process: wall time and the process's peak memory
/// (`VmHWM`, read until it exits).
fn timed_child(mut cmd: std::process::Command) -> Result<(f64, u64)> {
    let t = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting the prover")?;
    let pid = child.id();
    let mut peak = 0u64;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb * 1024);
        }
        if let Some(status) = child.try_wait().context("waiting for the prover")? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let secs = t.elapsed().as_secs_f64();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        bail!("the prover failed ({status}): {}", err.trim());
    }
    Ok((secs, peak))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `pulse bench prove --zkey F --wtns F`: Pulse's prover against snarkjs's `groth16 prove`
/// on the same key and witness, each run as its own process (reading the files, proving,
/// writing the proof), alternating, medians; and Pulse's proving alone in this process.
#[allow(clippy::print_stdout)]
pub fn bench_zkey(zkey: &Path, w: &Path, repeats: usize, json: bool) -> Result<ExitCode> {
    let snarkjs = std::env::var_os("PULSE_SNARKJS")
        .map(PathBuf::from)
        .context(
            "PULSE_SNARKJS is not set: run scripts/deps and source ~/.cache/pulse/tools.env",
        )?;
    let exe = std::env::current_exe().context("finding the pulse binary")?;
    let tmp = tempfile::tempdir().context("a temporary directory")?;
    let (prover, assignment, np) = imported_prover(zkey, w)?;
    let z = ceremony::read_zkey(zkey)?;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut in_process = Vec::new();
    let (mut our_peak, mut their_peak) = (0u64, 0u64);
    for i in 0..repeats {
        let mut pulse = std::process::Command::new(&exe);
        pulse
            .args(["snarkjs", "prove", "--zkey"])
            .arg(zkey)
            .arg("--wtns")
            .arg(w)
            .arg("--out")
            .arg(tmp.path().join("pulse"));
        let mut sj = std::process::Command::new(&snarkjs);
        sj.args(["groth16", "prove"])
            .arg(zkey)
            .arg(w)
            .arg(tmp.path().join("sj-proof.json"))
            .arg(tmp.path().join("sj-public.json"));
        let (a, b) = if i % 2 == 0 {
            let a = timed_child(pulse)?;
            (a, timed_child(sj)?)
        } else {
            let b = timed_child(sj)?;
            (timed_child(pulse)?, b)
        };
        ours.push(a.0);
        our_peak = our_peak.max(a.1);
        theirs.push(b.0);
        their_peak = their_peak.max(b.1);
        let t = Instant::now();
        prover
            .prove_assignment(assignment.clone(), np + 1, Fr::from(3u64), Fr::from(5u64))
            .context("proving in process")?;
        in_process.push(t.elapsed().as_secs_f64());
    }
    // snarkjs's proof must verify with Pulse: the two prove the same statement.
    let sj_proof = json::read_proof(&String::from_utf8_lossy(&read(
        &tmp.path().join("sj-proof.json"),
        "snarkjs's proof",
    )?))?;
    check(&keys::verifying_key(&z), &assignment[1..=np], &sj_proof)
        .context("snarkjs's proof does not verify with Pulse")?;
    let (p, s, alone) = (median(ours), median(theirs), median(in_process));
    let report = serde_json::json!({
        "zkey": zkey, "wtns": w, "constraints": keys::constraints(&z)?, "wires": z.n_vars,
        "domain": z.domain_size, "repeats": repeats,
        "pulse_process_seconds": p, "snarkjs_process_seconds": s, "ratio": p / s,
        "pulse_prove_seconds_in_process": alone,
        "pulse_peak_bytes": our_peak, "snarkjs_peak_bytes": their_peak,
        "snarkjs": "snarkjs groth16 prove (node, its wasm prover)",
    });
    if json {
        print_json(&report)?;
    } else {
        println!(
            "{} ({} constraints, domain 2^{}), {repeats} runs each, medians:",
            zkey.display(),
            report["constraints"],
            z.domain_size.trailing_zeros()
        );
        println!(
            "  pulse   {p:>8.2} s  peak {:>8.1} MiB  (proving alone {alone:.2} s)",
            our_peak as f64 / 1048576.0
        );
        println!(
            "  snarkjs {s:>8.2} s  peak {:>8.1} MiB",
            their_peak as f64 / 1048576.0
        );
        println!("  ratio pulse/snarkjs {:.3}", p / s);
    }
    Ok(ExitCode::SUCCESS)
}

/// Seconds since `t`.
fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// This process's peak resident memory so far (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// `pulse bench ceremony`: each step of a ceremony for a chunk circuit, timed, with
/// snarkjs's `zkey contribute` and `zkey verify` on the same files as the baseline when
/// asked (`with_snarkjs`; slow: its verification recomputes the initial key in JavaScript).
#[allow(clippy::print_stdout)]
pub fn bench_ceremony(
    params: pulse_circuits::artifacts::CircuitParams,
    from_points: bool,
    with_snarkjs: bool,
    keep: Option<&Path>,
    json_out: bool,
) -> Result<ExitCode> {
    let tmp = tempfile::tempdir().context("a temporary directory")?;
    let dir = keep.unwrap_or(tmp.path());
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut report = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        if !json_out {
            println!("  {k:<34} {v}");
        }
        report.insert(k.to_owned(), v);
    };
    let t = Instant::now();
    let r1cs = ceremony::chunk_r1cs(params).map_err(anyhow::Error::msg)?;
    put("constraints", r1cs.constraints.len().into());
    put("r1cs_seconds", secs(t).into());
    let power =
        pulse_ceremony::phase2::domain_power(r1cs.constraints.len(), r1cs.public() as usize);
    let ptau_power = if power >= 15 { power + 1 } else { power };
    put("domain_power", power.into());
    put("ptau_power", ptau_power.into());
    let t = Instant::now();
    let (ptau, secrets) =
        Ptau::new_with_secrets(ptau_power, &mut rand_chacha::ChaCha20Rng::from_entropy())
            .context("making the ptau")?;
    put("ptau_new_seconds", secs(t).into());
    let ptau_path = dir.join("pot.ptau");
    let bytes = ptau.to_bytes();
    write(&ptau_path, &bytes)?;
    put("ptau_bytes", bytes.len().into());
    let sha = pulse_circuits::artifacts::Hash32::digest(&bytes);
    drop(bytes);
    drop(ptau);
    let t = Instant::now();
    let (ptau, _) = ceremony::read_ptau(&ptau_path)?;
    put("ptau_read_seconds", secs(t).into());
    let t = Instant::now();
    ptau.check(&mut rand_chacha::ChaCha20Rng::from_entropy())
        .context("checking the ptau")?;
    put("ptau_check_seconds", secs(t).into());
    let t = Instant::now();
    let init = pulse_ceremony::phase2::initial_from_secrets(&r1cs, &ptau, &secrets)?;
    put("initial_key_from_secrets_seconds", secs(t).into());
    drop(secrets);
    if from_points {
        let t = Instant::now();
        let again = pulse_ceremony::phase2::initial(&r1cs, &ptau)?;
        put("initial_key_from_points_seconds", secs(t).into());
        if again != init {
            bail!("the initial key from the ptau's points differs from the one from its secrets");
        }
    }
    let t = Instant::now();
    pulse_ceremony::phase2::check_initial(
        &r1cs,
        &ptau,
        &init,
        &mut rand_chacha::ChaCha20Rng::from_entropy(),
    )?;
    put("initial_key_check_seconds", secs(t).into());
    drop(ptau);
    let cdir = dir.join("c");
    let mut c = Ceremony::start(
        &cdir,
        Circuit::Chunk { params },
        &r1cs,
        &ptau_path,
        sha,
        ptau_power,
        &init,
    )?;
    drop(init);
    let t = Instant::now();
    c.contribute("bench", b"", &|_| {})?;
    put("contribution_seconds", secs(t).into());
    let t = Instant::now();
    c.beacon(&[1, 2, 3, 4], 10, "beacon", &|_| {})?;
    put("beacon_seconds", secs(t).into());
    let t = Instant::now();
    c.verify(None, &|_| {})?;
    put("verify_seconds", secs(t).into());
    let t = Instant::now();
    c.verify_with(None, false, &|_| {})?;
    put("verify_without_ptau_check_seconds", secs(t).into());
    put("peak_rss_bytes", peak_rss().into());
    if keep.is_some() {
        c.finalize_with(&dir.join("keys"), None, false, &|_| {})?;
    }
    if with_snarkjs {
        let snarkjs = std::env::var_os("PULSE_SNARKJS")
            .map(PathBuf::from)
            .context(
                "PULSE_SNARKJS is not set: run scripts/deps and source ~/.cache/pulse/tools.env",
            )?;
        let mut contribute = std::process::Command::new(&snarkjs);
        contribute
            .args(["zkey", "contribute"])
            .arg(cdir.join("0001.zkey"))
            .arg(dir.join("sj.zkey"))
            .args(["--name=sj", "-e=bench"]);
        let (s, peak) = timed_child(contribute)?;
        put("snarkjs_contribution_seconds", s.into());
        put("snarkjs_contribution_peak_bytes", peak.into());
        let mut verify = std::process::Command::new(&snarkjs);
        verify
            .args(["zkey", "verify"])
            .arg(cdir.join(R1CS))
            .arg(&ptau_path)
            .arg(cdir.join("0002.zkey"));
        let (s, peak) = timed_child(verify)?;
        put("snarkjs_verify_seconds", s.into());
        put("snarkjs_verify_peak_bytes", peak.into());
    }
    if json_out {
        print_json(&serde_json::Value::Object(report))?;
    }
    Ok(ExitCode::SUCCESS)
}
