//! `pulse dev demo`: a whole local cluster in one command. It starts nats-server, anvil and
//! an IPFS node on free loopback ports (installed by `scripts/deps`), runs a Groth16 setup,
//! deploys the rollup contract, starts a coordinator and `--workers` proving workers, then
//! drives a realistic workload through the client library — patients registering, doctors
//! registered by a registrar, encrypted records added to IPFS, grants with wrapped keys,
//! access logs, revocations and some invalid transactions — until every accepted
//! transaction is in a batch committed on L1. It prints each batch's latency, the
//! throughput, and checks that the L1 root is the coordinator's; a granted doctor reads a
//! record (Merkle proof checked against the L1 root), a revoked one is refused.
//!
//! Everything it starts is stopped when it returns. The record contents are synthetic.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, anyhow, bail};
use async_nats::jetstream;
use pulse_circuits::Fr;
use pulse_circuits::artifacts::{self, CircuitParams};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_circuits::eddsa::PrivateKey;
use pulse_circuits::state::State;
use pulse_circuits::tx::{Permissions, Role, Scope, SignedTransaction, Transaction, TxBody};
use pulse_coordinator::{Coordinator, CoordinatorConfig, STATE_FILE};
use pulse_protocol::{Receipt, ReceiptStatus};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// `pulse dev …`.
#[derive(clap::Subcommand)]
pub enum DevCommand {
    /// Start a local cluster, drive a workload to committed L1 batches, report, stop.
    Demo(DemoArgs),
}

/// `pulse dev demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Transactions to submit (valid and invalid together).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(12..=5000))]
    txs: u64,
    /// Transaction slots per chunk.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    slots: u64,
    /// State tree depth.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(4..=32))]
    depth: u64,
    /// Proving workers.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=16))]
    workers: u64,
    /// Seal a batch at this many transactions.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1000))]
    batch_txs: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct BatchLine {
    batch: u64,
    txs: u64,
    chunks: u64,
    latency_s: f64,
    l1_tx: String,
    gas: u64,
    data_cid: String,
}

#[derive(Serialize)]
struct Report {
    submitted: u64,
    accepted: u64,
    rejected: u64,
    committed: u64,
    batches: Vec<BatchLine>,
    l1_root_matches: bool,
    throughput_tps: f64,
    wall_s: f64,
    rejections: std::collections::BTreeMap<String, u64>,
    granted_read_ok: bool,
    revoked_read_refused: bool,
}

fn start<T>(what: &str, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        anyhow!("starting {what} failed: {msg}")
    })
}

struct Workload {
    js: jetstream::Context,
    submitted: u64,
    accepted: u64,
    rejected: u64,
    max_batch: u64,
    rejections: std::collections::BTreeMap<String, u64>,
}

impl Workload {
    async fn send(&mut self, tx: &SignedTransaction) -> Result<Receipt> {
        let r = pulse_client::submit(&self.js, tx, Duration::from_secs(60)).await?;
        self.count(&r);
        Ok(r)
    }

    async fn send_raw(&mut self, bytes: Vec<u8>, id: &str) -> Result<Receipt> {
        let r = pulse_client::submit_raw(&self.js, bytes, id, Duration::from_secs(60)).await?;
        self.count(&r);
        Ok(r)
    }

    fn count(&mut self, r: &Receipt) {
        self.submitted += 1;
        match &r.status {
            ReceiptStatus::Accepted { batch, .. } => {
                self.accepted += 1;
                self.max_batch = self.max_batch.max(*batch);
            }
            ReceiptStatus::Rejected { reason, .. } => {
                self.rejected += 1;
                *self.rejections.entry(reason.clone()).or_default() += 1;
            }
            ReceiptStatus::Committed { .. } => {}
        }
    }
}

fn sign(key: &PrivateKey, signer: u64, nonce: u64, body: TxBody) -> Result<SignedTransaction> {
    Ok(Transaction {
        signer,
        nonce,
        body,
    }
    .sign(key)?)
}

fn created(r: &Receipt) -> Result<(Option<u64>, Option<u64>, Option<u64>)> {
    match &r.status {
        ReceiptStatus::Accepted {
            new_account,
            new_record,
            new_grant,
            ..
        } => Ok((*new_account, *new_record, *new_grant)),
        other => bail!("a demo transaction that should pass was refused: {other:?}"),
    }
}

struct Person {
    key: PrivateKey,
    id: u64,
    nonce: u64,
}

impl Person {
    fn next(&mut self) -> u64 {
        let n = self.nonce;
        self.nonce += 1;
        n
    }
}

/// `pulse dev demo`.
#[allow(clippy::print_stdout)]
pub fn demo(args: DemoArgs) -> Result<ExitCode> {
    let json = args.json;
    let report = crate::l1::runtime()?.block_on(run_demo(args))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("batches committed on L1:");
        println!(
            "  {:>5}  {:>4}  {:>6}  {:>9}  {:>9}  l1 transaction",
            "batch", "txs", "chunks", "latency", "gas"
        );
        for b in &report.batches {
            println!(
                "  {:>5}  {:>4}  {:>6}  {:>8.1}s  {:>9}  {}",
                b.batch, b.txs, b.chunks, b.latency_s, b.gas, b.l1_tx
            );
        }
        println!(
            "submitted {}, accepted {}, rejected {} ({}), committed {}",
            report.submitted,
            report.accepted,
            report.rejected,
            report
                .rejections
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            report.committed
        );
        println!(
            "throughput {:.2} tx/s over {:.1} s; L1 root equals the coordinator's: {}",
            report.throughput_tps, report.wall_s, report.l1_root_matches
        );
        println!(
            "granted doctor read the record: {}; revoked doctor refused: {}",
            report.granted_read_ok, report.revoked_read_refused
        );
    }
    let ok = report.l1_root_matches
        && report.committed == report.accepted
        && report.granted_read_ok
        && report.revoked_read_refused;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn run_demo(args: DemoArgs) -> Result<Report> {
    let say = |line: &str| {
        if !args.json {
            eprintln!("== {line}");
        }
    };
    say("starting nats-server, anvil and IPFS on loopback");
    let nats = start("nats-server", pulse_testkit::Nats::start)?;
    let anvil = start("anvil", pulse_testkit::Anvil::start)?;
    let ipfs = start("the IPFS node", pulse_testkit::Ipfs::start)?;
    let dir = tempfile::tempdir().context("creating a working directory")?;

    let params = CircuitParams::new(args.slots as usize, args.depth as usize);
    say(&format!(
        "Groth16 setup for {} slot(s) per chunk, tree depth {}",
        params.slots, params.depth
    ));
    let keys = tokio::task::spawn_blocking(move || {
        artifacts::setup(ChunkCircuit::blank(params), params, &mut rand::rngs::OsRng)
    })
    .await??;
    let keys_dir = dir.path().join("keys");
    keys.write(&keys_dir)?;

    let mut rng = ChaCha20Rng::from_entropy();
    let registrar = PrivateKey::random(&mut rng);
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir)?;
    let genesis = {
        let state = State::open(&state_dir.join(STATE_FILE), params.depth)?;
        state.init_genesis(&[registrar.public_key()])?.state_root()
    };
    let owner: PrivateKeySigner = pulse_testkit::DEV_ACCOUNTS[0].private_key.parse()?;
    let operator: PrivateKeySigner = pulse_testkit::DEV_ACCOUNTS[1].private_key.parse()?;
    let d = pulse_l1::deploy(
        &anvil.url(),
        owner.clone(),
        &pulse_l1::DeployParams {
            genesis_root: genesis,
            vk: keys.pk.vk.clone(),
            owner: owner.address(),
            operators: vec![operator.address()],
        },
    )
    .await?;
    say(&format!("rollup contract deployed at {}", d.address));

    let http = SocketAddr::from(([127, 0, 0, 1], pulse_testkit::free_port()));
    let config = CoordinatorConfig {
        nats_url: nats.url(),
        state_dir,
        keys_dir,
        ipfs_url: ipfs.api_url(),
        l1_rpc: anvil.url(),
        l1_contract: d.address,
        l1_operator: operator,
        l1_confirmations: 1,
        batch_max_txs: args.batch_txs as usize,
        batch_deadline: Duration::from_secs(2),
        job_lease: Duration::from_secs(30),
        job_timeout: Duration::from_secs(600),
        http_addr: http,
    };
    let stop = CancellationToken::new();
    let coordinator = Coordinator::start(config).await?;
    let coordinator = tokio::spawn(coordinator.run(stop.clone()));
    say(&format!(
        "coordinator up (HTTP API on http://{http}); starting {} worker(s)",
        args.workers
    ));
    let mut workers = Vec::new();
    for i in 0..args.workers {
        let cfg = pulse_worker::WorkerConfig::new(
            nats.url(),
            format!("hospital-{}", i + 1),
            dir.path().join(format!("cache-{i}")),
        );
        workers.push(tokio::spawn(pulse_worker::run(cfg, stop.clone())));
    }

    let client = async_nats::connect(nats.url()).await?;
    let js = jetstream::new(client);
    pulse_client::ensure_share_bucket(&js).await?;
    let mut w = Workload {
        js: js.clone(),
        submitted: 0,
        accepted: 0,
        rejected: 0,
        max_batch: 0,
        rejections: Default::default(),
    };
    let ipfs_client = pulse_ipfs::IpfsClient::new(&ipfs.api_url())?;

    let started = Instant::now();
    let patients_n = (args.txs / 12).max(2);
    let doctors_n = (args.txs / 24).max(2);
    say(&format!(
        "workload: {patients_n} patients, {doctors_n} doctors, about {} transactions",
        args.txs
    ));
    let mut reg = Person {
        key: registrar,
        id: 1,
        nonce: 0,
    };
    let mut patients = Vec::new();
    for _ in 0..patients_n {
        let key = PrivateKey::random(&mut rng);
        let r = w
            .send(&sign(
                &key,
                0,
                0,
                TxBody::Register {
                    public_key: key.public_key(),
                    role: Role::Patient,
                },
            )?)
            .await?;
        let id = created(&r)?.0.context("no account id")?;
        patients.push(Person { key, id, nonce: 1 });
    }
    let mut doctors = Vec::new();
    for _ in 0..doctors_n {
        let key = PrivateKey::random(&mut rng);
        let n = reg.next();
        let r = w
            .send(&sign(
                &reg.key,
                reg.id,
                n,
                TxBody::Register {
                    public_key: key.public_key(),
                    role: Role::Doctor,
                },
            )?)
            .await?;
        let id = created(&r)?.0.context("no account id")?;
        doctors.push(Person { key, id, nonce: 0 });
    }

    // Records, grants (with the file key wrapped for the doctor), access logs, revocations.
    let mut first_record: Option<(u64, u64, cid::Cid)> = None; // (record, grant, cid)
    let mut revoked_pair: Option<(u64, u64, usize)> = None; // (record, grant, doctor index)
    let mut round = 0usize;
    while w.submitted + 6 < args.txs {
        let pi = round % patients.len();
        let di = round % doctors.len();
        round += 1;
        let text = format!("synthetic demo record {round}: blood pressure 120/80 (not real data)");
        let p = &mut patients[pi];
        let env =
            pulse_client::seal_record(text.as_bytes(), &[(p.id, p.key.public_key())], &mut rng)?;
        let cid = ipfs_client.add(env.to_json()).await?;
        let n = p.next();
        let r = w
            .send(&sign(
                &p.key,
                p.id,
                n,
                TxBody::AddRecord {
                    patient: p.id,
                    cid,
                    metadata_hash: Fr::from(round as u64),
                    grant: None,
                },
            )?)
            .await?;
        let record = created(&r)?.1.context("no record id")?;
        let doctor_id = doctors[di].id;
        let doctor_pk = doctors[di].key.public_key();
        let share =
            pulse_client::add_recipient(&env, &cid, p.id, &p.key, doctor_id, &doctor_pk, &mut rng)?;
        pulse_client::put_share(&js, record, &share).await?;
        let n = p.next();
        let grant_tx = TxBody::Grant {
            grantee: doctor_id,
            scope: Scope::Record(record),
            permissions: Permissions {
                read: true,
                write: false,
            },
            expires_at: u64::MAX >> 8,
        };
        let r = w.send(&sign(&p.key, p.id, n, grant_tx)?).await?;
        let grant = created(&r)?.2.context("no grant id")?;
        let doc = &mut doctors[di];
        let n = doc.next();
        w.send(&sign(
            &doc.key,
            doc.id,
            n,
            TxBody::AccessLog {
                record,
                grant,
                purpose: Fr::from(1u64),
            },
        )?)
        .await?;
        if first_record.is_none() {
            first_record = Some((record, di as u64, cid));
        } else if revoked_pair.is_none() {
            let p = &mut patients[pi];
            let n = p.next();
            w.send(&sign(&p.key, p.id, n, TxBody::Revoke { grant })?)
                .await?;
            let doc = &mut doctors[di];
            // The revoked doctor tries again: refused (the nonce is not consumed).
            w.send(&sign(
                &doc.key,
                doc.id,
                doc.nonce,
                TxBody::AccessLog {
                    record,
                    grant,
                    purpose: Fr::from(2u64),
                },
            )?)
            .await?;
            revoked_pair = Some((record, grant, di));
        }
    }
    // Invalid input of every kind.
    let p = &patients[0];
    let forged = sign(&doctors[0].key, p.id, p.nonce, TxBody::Revoke { grant: 1 })?;
    w.send(&forged).await?;
    let replay = sign(&p.key, p.id, 1, TxBody::Revoke { grant: 1 })?;
    w.send(&replay).await?;
    w.send_raw(b"{\"version\":1,\"kind\":".to_vec(), "demo-malformed")
        .await?;
    w.send_raw(vec![b'x'; 16 * 1024], "demo-oversized").await?;

    say(&format!(
        "{} submitted; waiting for batch {} on L1",
        w.submitted, w.max_batch
    ));
    let mut status = pulse_l1::status(&anvil.url(), d.address, 10_000).await?;
    let deadline = Instant::now() + Duration::from_secs(1200);
    while status.batch_number < w.max_batch {
        if Instant::now() > deadline {
            bail!(
                "batches were not committed within 20 minutes (L1 at {}, need {})",
                status.batch_number,
                w.max_batch
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        status = pulse_l1::status(&anvil.url(), d.address, 10_000).await?;
    }
    let wall = started.elapsed().as_secs_f64();

    let api = |path: String| async move {
        let port = http.port();
        tokio::task::spawn_blocking(move || {
            pulse_testkit::http_request(port, "GET", &path, None, Duration::from_secs(10))
        })
        .await
        .map_err(|e| anyhow!("{e}"))?
        .map_err(|e| anyhow!("coordinator API: {e}"))
        .and_then(|a| {
            serde_json::from_str::<serde_json::Value>(&a.text())
                .map_err(|e| anyhow!("coordinator API answer: {e}"))
        })
    };
    // L1 has the batches; let the coordinator record their commits too.
    let mut st = api("/status".to_owned()).await?;
    for _ in 0..100 {
        let all = st["batches"]
            .as_array()
            .is_some_and(|b| b.iter().all(|b| b["status"] == "committed"));
        if all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        st = api("/status".to_owned()).await?;
    }
    let mut batches = Vec::new();
    for b in st["batches"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .rev()
    {
        batches.push(BatchLine {
            batch: b["batch"].as_u64().unwrap_or(0),
            txs: b["txs"].as_u64().unwrap_or(0),
            chunks: b["chunks"].as_u64().unwrap_or(0),
            latency_s: b["latency_s"].as_f64().unwrap_or(0.0),
            l1_tx: b["l1_tx"].as_str().unwrap_or("").to_owned(),
            gas: b["l1_gas"].as_u64().unwrap_or(0),
            data_cid: b["data_cid"].as_str().unwrap_or("").to_owned(),
        });
    }
    let committed: u64 = status.last_batches.iter().map(|b| b.tx_count).sum();
    let account = api("/accounts/1".to_owned()).await?;
    let l1_root_matches = account["state_root"].as_str() == Some(&status.state_root.to_string());

    // Reading: a granted doctor, then a revoked one.
    let l1_root = status.state_root.to_string();
    let read = |record: u64, doctor: usize| {
        let doctors = &doctors;
        let js = &js;
        let ipfs_client = &ipfs_client;
        let api = &api;
        let l1_root = &l1_root;
        async move {
            let rec = api(format!("/records/{record}")).await?;
            let proof_root_ok = rec["state_root"].as_str() == Some(l1_root.as_str());
            let grant_id = revoked_pair.filter(|r| r.0 == record).map(|r| r.1);
            if let Some(g) = grant_id {
                let grant = api(format!("/grants/{g}")).await?;
                if grant["grant"]["active"] == serde_json::json!(false) {
                    return Ok::<bool, anyhow::Error>(false);
                }
            }
            let cid: cid::Cid = rec["cid"].as_str().unwrap_or_default().parse()?;
            let bytes = ipfs_client.cat(&cid, Duration::from_secs(10)).await?;
            let env = pulse_client::RecordEnvelope::from_json(&bytes)?;
            let doc: &Person = &doctors[doctor];
            let Some(share) = pulse_client::get_share(js, record, doc.id).await? else {
                return Ok(false);
            };
            let plain = pulse_client::open_with_share(&env, &share, &doc.key)?;
            Ok(proof_root_ok && plain.starts_with(b"synthetic demo record"))
        }
    };
    let granted_read_ok = match first_record {
        Some((record, di, _)) => read(record, di as usize).await.unwrap_or(false),
        None => false,
    };
    let revoked_read_refused = match revoked_pair {
        Some((record, _, di)) => !read(record, di).await.unwrap_or(true),
        None => false,
    };

    stop.cancel();
    let _ = coordinator.await;
    for wk in workers {
        let _ = wk.await;
    }
    Ok(Report {
        submitted: w.submitted,
        accepted: w.accepted,
        rejected: w.rejected,
        committed,
        batches,
        l1_root_matches,
        throughput_tps: committed as f64 / wall.max(1e-9),
        wall_s: wall,
        rejections: w.rejections,
        granted_read_ok,
        revoked_read_refused,
    })
}
