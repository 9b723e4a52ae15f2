//! `pulse dev demo`: a realistic workload driven to committed L1 batches, on a running
//! local cluster (`--cluster`, from `pulse dev up`) or on a private one it starts and stops
//! (nats-server, anvil, an IPFS node and Prometheus on free loopback ports, a Groth16 setup,
//! the rollup contract, a coordinator and `--workers` worker processes).
//!
//! The workload goes through the client library as real clients do — patients
//! registering, doctors registered by the registrar, encrypted records added to IPFS,
//! grants with wrapped keys, access logs, revocations and some invalid transactions (a
//! forged signature, one signed for another deployment, a replayed nonce, access after
//! revocation, malformed JSON, an oversized message) — until every accepted transaction is
//! in a batch committed on L1. It
//! prints each batch's latency, the throughput, and checks that the L1 root is the
//! coordinator's; a granted doctor reads a record (Merkle proofs checked against the L1
//! root), a revoked one is refused.
//!
//! The record contents are synthetic.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use async_nats::jetstream;
use pulse_circuits::Fr;
use pulse_circuits::deployment::DeploymentId;
use pulse_circuits::eddsa::PrivateKey;
use pulse_circuits::tx::{Permissions, Role, Scope, SignedTransaction, Transaction, TxBody};
use pulse_client::{CoordinatorApi, KeyFile};
use pulse_protocol::{Receipt, ReceiptStatus};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use super::{ClusterInfo, ClusterShape};

/// `pulse dev demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Transactions to submit (valid and invalid together).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(12..=5000))]
    txs: u64,
    /// A running cluster's cluster.json (from `pulse dev up`); without it the demo starts
    /// a private cluster and stops it at the end.
    #[arg(long, env = "PULSE_CLUSTER")]
    cluster: Option<PathBuf>,
    /// The private cluster's shape (ignored with --cluster).
    #[command(flatten)]
    shape: ClusterShape,
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
    /// Chunk proofs of this run's batches assembled from shards on several workers.
    split_proofs: u64,
    /// Their shards.
    shards: u64,
    batches: Vec<BatchLine>,
    l1_root_matches: bool,
    throughput_tps: f64,
    wall_s: f64,
    rejections: std::collections::BTreeMap<String, u64>,
    granted_read_ok: bool,
    revoked_read_refused: bool,
    /// NATS servers the cluster gave (a JetStream cluster has several).
    nats_servers: usize,
}

/// Invalid transactions sent at the end of the workload.
const INVALID: u64 = 5;

struct Workload {
    js: jetstream::Context,
    /// The cluster's deployment, which transactions are signed and hashed for.
    deployment: DeploymentId,
    submitted: u64,
    accepted: u64,
    rejected: u64,
    max_batch: u64,
    first_batch: Option<u64>,
    rejections: std::collections::BTreeMap<String, u64>,
}

impl Workload {
    async fn send(&mut self, tx: &SignedTransaction) -> Result<Receipt> {
        self.send_for(tx, self.deployment).await
    }

    /// Sends as a client of `deployment` would (its hash there as the message id).
    async fn send_for(
        &mut self,
        tx: &SignedTransaction,
        deployment: DeploymentId,
    ) -> Result<Receipt> {
        let r = pulse_client::submit(&self.js, tx, deployment, Duration::from_secs(60)).await?;
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
                self.first_batch = Some(self.first_batch.map_or(*batch, |f| f.min(*batch)));
            }
            ReceiptStatus::Rejected { reason, .. } => {
                self.rejected += 1;
                *self.rejections.entry(reason.clone()).or_default() += 1;
            }
            ReceiptStatus::Committed { .. } => {}
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn sign(
    deployment: DeploymentId,
    key: &PrivateKey,
    signer: u64,
    nonce: u64,
    body: TxBody,
) -> Result<SignedTransaction> {
    Ok(Transaction {
        signer,
        nonce,
        body,
    }
    .sign(key, deployment)?)
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
        if report.split_proofs > 0 {
            println!(
                "{} chunk proofs split across workers ({} shards)",
                report.split_proofs, report.shards
            );
        }
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
    let quiet = args.json;
    let say = move |line: &str| {
        if !quiet {
            eprintln!("== {line}");
        }
    };
    match &args.cluster {
        Some(path) => {
            let info = ClusterInfo::load(path)?;
            say(&format!("using the cluster of {}", path.display()));
            workload(&args, &info, say).await
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("pulse-demo-")
                .tempdir()
                .context("making a directory for the private cluster")?;
            say(&format!(
                "starting a private cluster in {} ({} slot(s) per chunk, depth {}, {} worker(s))",
                dir.path().display(),
                args.shape.slots,
                args.shape.depth,
                args.shape.workers
            ));
            let (mut child, info) = tokio::task::block_in_place(|| {
                super::launch(
                    dir.path(),
                    &args.shape,
                    Some(Duration::from_secs(3600)),
                    false,
                )
            })?;
            say(&format!(
                "cluster up: coordinator {}, rollup {} on {}",
                info.coordinator_url, info.contract, info.l1_rpc
            ));
            let report = workload(&args, &info, say).await;
            say("stopping the private cluster");
            tokio::task::block_in_place(|| {
                let _ = super::stop_pid(child.id(), Duration::from_secs(60));
                let _ = child.wait();
            });
            report
        }
    }
}

async fn workload(args: &DemoArgs, info: &ClusterInfo, say: impl Fn(&str)) -> Result<Report> {
    let client = info
        .client_endpoint()
        .connect("pulse dev demo")
        .await
        .context("connecting to NATS as the cluster's client")?;
    let js = jetstream::new(client);
    let deployment = pulse_l1::read_deployment(&info.l1_rpc, info.contract).await?;
    if deployment.id != info.deployment_id {
        bail!(
            "the cluster file says deployment id {}, the contract {} ({deployment})",
            info.deployment_id,
            info.contract
        );
    }
    let d = deployment.id;
    let mut w = Workload {
        js: js.clone(),
        deployment: d,
        submitted: 0,
        accepted: 0,
        rejected: 0,
        max_batch: 0,
        first_batch: None,
        rejections: Default::default(),
    };
    let ipfs_client = pulse_ipfs::IpfsClient::new(&info.ipfs_url)?;
    // Lookups as the registrar (account 1): the API answers only signed lookups.
    let registrar = KeyFile::load(&info.registrar_key)?;
    let registrar_api = CoordinatorApi::new(&info.coordinator_url)?
        .with_depth(info.depth)
        .with_signer(1, registrar.private_key().clone(), d);
    let api = |path: String| {
        let registrar_api = &registrar_api;
        async move {
            registrar_api
                .json("account", &path)
                .await
                .with_context(|| format!("GET {path} as the registrar"))
        }
    };
    let registrar_nonce = api("/accounts/1?view=latest".to_owned()).await?["account"]["nonce"]
        .as_u64()
        .context("the coordinator's account 1 has no nonce")?;
    let mut rng = ChaCha20Rng::from_entropy();

    let started = Instant::now();
    let patients_n = (args.txs / 12).max(2);
    let doctors_n = (args.txs / 24).max(2);
    say(&format!(
        "workload: {patients_n} patients, {doctors_n} doctors, about {} transactions",
        args.txs
    ));
    let mut reg = Person {
        key: registrar.private_key().clone(),
        id: 1,
        nonce: registrar_nonce,
    };
    let mut patients = Vec::new();
    for _ in 0..patients_n {
        let key = PrivateKey::random(&mut rng);
        let r = w
            .send(&sign(
                d,
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
                d,
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
    let mut first_record: Option<(u64, u64, usize)> = None; // (record, grant, doctor index)
    let mut revoked_pair: Option<(u64, u64, usize)> = None; // (record, grant, doctor index)
    let mut round = 0usize;
    // Rounds of 3 (or 5) transactions while room is left for the invalid ones at the end.
    // At least two rounds: the second one revokes.
    while w.submitted + INVALID + 5 <= args.txs || revoked_pair.is_none() {
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
                d,
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
        let r = w.send(&sign(d, &p.key, p.id, n, grant_tx)?).await?;
        let grant = created(&r)?.2.context("no grant id")?;
        let doc = &mut doctors[di];
        let n = doc.next();
        w.send(&sign(
            d,
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
            first_record = Some((record, grant, di));
        } else if revoked_pair.is_none() {
            let p = &mut patients[pi];
            let n = p.next();
            w.send(&sign(d, &p.key, p.id, n, TxBody::Revoke { grant })?)
                .await?;
            let doc = &mut doctors[di];
            // The revoked doctor tries again: refused (the nonce is not consumed).
            w.send(&sign(
                d,
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
    // Fill up to the count with access logs of the first granted doctor.
    if let Some((record, grant, di)) = first_record {
        while w.submitted + INVALID < args.txs {
            let doc = &mut doctors[di];
            let n = doc.next();
            w.send(&sign(
                d,
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
        }
    }
    // Invalid input of every kind.
    let p = &patients[0];
    let forged = sign(
        d,
        &doctors[0].key,
        p.id,
        p.nonce,
        TxBody::Revoke { grant: 1 },
    )?;
    w.send(&forged).await?;
    // The right key, but signed (and hashed) for the same contract on another chain.
    let elsewhere = pulse_l1::deployment(deployment.chain_id ^ 1, info.contract).id;
    let foreign = sign(
        elsewhere,
        &p.key,
        p.id,
        p.nonce,
        TxBody::Revoke { grant: 1 },
    )?;
    w.send_for(&foreign, elsewhere).await?;
    let replay = sign(d, &p.key, p.id, 1, TxBody::Revoke { grant: 1 })?;
    w.send(&replay).await?;
    w.send_raw(b"{\"version\":1,\"kind\":".to_vec(), "demo-malformed")
        .await?;
    w.send_raw(vec![b'x'; 16 * 1024], "demo-oversized").await?;

    say(&format!(
        "{} submitted; waiting for batch {} on L1",
        w.submitted, w.max_batch
    ));
    let mut status = pulse_l1::status(&info.l1_rpc, info.contract, 0).await?;
    let deadline = Instant::now() + Duration::from_secs(1200);
    let mut blocked_since: Option<Instant> = None;
    while status.batch_number < w.max_batch {
        if Instant::now() > deadline {
            bail!(
                "batches were not committed within 20 minutes (L1 at {}, need {})",
                status.batch_number,
                w.max_batch
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        status = pulse_l1::status(&info.l1_rpc, info.contract, 0).await?;
        // A chunk no live worker can take (whole or split) does not wait 20 minutes: after
        // the workers have had time to register, the coordinator's reason is the answer.
        let st = api("/status".to_owned()).await?;
        match st["blocked"].as_array().and_then(|b| b.first()) {
            Some(b) => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(20) {
                    bail!(
                        "batch {} cannot be proved: {}",
                        b["batch"],
                        b["reason"]
                            .as_str()
                            .unwrap_or("the coordinator gives no reason")
                    );
                }
            }
            None => blocked_since = None,
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let first_batch = w.first_batch;
    let ours = (w.max_batch - first_batch.unwrap_or(w.max_batch) + 1) as usize;
    let status = pulse_l1::status(&info.l1_rpc, info.contract, ours).await?;

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
    let in_run = |n: u64| first_batch.is_some_and(|f| n >= f && n <= w.max_batch);
    let mut batches = Vec::new();
    let batches_json = st["batches"].as_array().cloned().unwrap_or_default();
    for b in batches_json
        .iter()
        .rev()
        .filter(|b| in_run(b["batch"].as_u64().unwrap_or(0)))
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
    let split_proofs: u64 = batches_json
        .iter()
        .filter(|b| in_run(b["batch"].as_u64().unwrap_or(0)))
        .map(|b| b["split_proofs"].as_u64().unwrap_or(0))
        .sum();
    let shards: u64 = batches_json
        .iter()
        .filter(|b| in_run(b["batch"].as_u64().unwrap_or(0)))
        .map(|b| b["shards"].as_u64().unwrap_or(0))
        .sum();
    let committed: u64 = status
        .last_batches
        .iter()
        .filter(|b| in_run(b.number))
        .map(|b| b.tx_count)
        .sum();
    let l1_root = pulse_circuits::field::fr_from_decimal(&status.state_root.to_string())
        .map_err(|e| anyhow!("the L1 root is not a field element: {e}"))?;
    let account = api("/accounts/1".to_owned()).await?;
    let l1_root_matches = account["state_root"].as_str()
        == Some(pulse_circuits::field::fr_to_decimal(&l1_root).as_str());

    // Reading as a light client: Merkle proofs checked against the L1 root, the read rule,
    // then IPFS and decryption. A granted doctor, then a revoked one.
    let say = &say;
    let read = |record: u64, grant: u64, doctor: usize| {
        let doctors = &doctors;
        let js = &js;
        let ipfs_client = &ipfs_client;
        async move {
            let doc: &Person = &doctors[doctor];
            // Signed as the doctor: the coordinator answers only a reader it lets read.
            let lookup = CoordinatorApi::new(&info.coordinator_url)?
                .with_depth(info.depth)
                .with_signer(doc.id, doc.key.clone(), d);
            let rec = match lookup.record_under(record, Some(grant), l1_root).await {
                Ok(r) => r,
                Err(e @ pulse_client::LookupError::NotFound { .. }) => {
                    say(&format!(
                        "doctor {} refused for record {record} by the coordinator: {e}",
                        doc.id
                    ));
                    return Ok::<bool, anyhow::Error>(false);
                }
                Err(e) => return Err(e.into()),
            };
            let grant = lookup.grant(grant, l1_root).await?;
            if let Err(refusal) =
                pulse_client::check_read_access(doc.id, &rec.record, Some(&grant), now_secs())
            {
                say(&format!(
                    "doctor {} refused for record {record}: {refusal}",
                    doc.id
                ));
                return Ok::<bool, anyhow::Error>(false);
            }
            let bytes = ipfs_client.cat(&rec.cid, Duration::from_secs(10)).await?;
            let env = pulse_client::RecordEnvelope::from_json(&bytes)?;
            let Some(share) = pulse_client::get_share(js, record, doc.id).await? else {
                return Ok(false);
            };
            let plain = pulse_client::open_with_share(&env, &share, &doc.key)?;
            Ok(plain.starts_with(b"synthetic demo record"))
        }
    };
    let granted_read_ok = match first_record {
        Some((record, grant, di)) => read(record, grant, di).await.unwrap_or(false),
        None => false,
    };
    let revoked_read_refused = match revoked_pair {
        Some((record, grant, di)) => !read(record, grant, di).await.unwrap_or(true),
        None => false,
    };

    Ok(Report {
        submitted: w.submitted,
        accepted: w.accepted,
        rejected: w.rejected,
        committed,
        split_proofs,
        shards,
        batches,
        l1_root_matches,
        throughput_tps: committed as f64 / wall.max(1e-9),
        wall_s: wall,
        rejections: w.rejections,
        granted_read_ok,
        revoked_read_refused,
        nats_servers: info
            .nats_url
            .split(',')
            .filter(|u| !u.trim().is_empty())
            .count(),
    })
}
