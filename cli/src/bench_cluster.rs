//! `pulse bench cluster`: what batch latency and throughput a cluster gives under load.
//!
//! It starts a private local cluster of the shape asked for (or uses a running one with
//! `--cluster`), registers `--users` patients and a few doctors, then submits `--txs`
//! transactions of a realistic mix (records added to IPFS, grants, access logs,
//! revocations), at `--rate` per second or as fast as receipts come back. It follows every
//! batch to its commit on L1 and reports batch-latency percentiles (first transaction
//! received → final on L1), throughput (transactions committed per second over the run),
//! the mean time in each stage (filling, proving, committing) and the share of latency not
//! spent proving. `--compare-workers` / `--compare-slots` runs a second configuration in the
//! same invocation. `--out DIR` writes `report.json` and SVG plots.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream;
use indicatif::{ProgressBar, ProgressStyle};
use pulse_circuits::Fr;
use pulse_circuits::eddsa::PrivateKey;
use pulse_circuits::tx::{Permissions, Role, Scope, Transaction, TxBody};
use pulse_client::KeyFile;
use pulse_protocol::ReceiptStatus;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::dev::{ClusterInfo, ClusterShape};

/// `pulse bench cluster`.
#[derive(clap::Args)]
pub struct ClusterBenchArgs {
    /// Transactions to submit after the users are registered.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..=100_000))]
    txs: u64,
    /// Patients submitting (each with its own nonce sequence).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    users: u64,
    /// Target submission rate (transactions per second); default: as fast as receipts come.
    #[arg(long)]
    rate: Option<f64>,
    /// A running cluster's cluster.json instead of a private cluster.
    #[arg(long)]
    cluster: Option<PathBuf>,
    #[command(flatten)]
    shape: ClusterShape,
    /// Also run this many workers, for comparison.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=16))]
    compare_workers: Option<u64>,
    /// Also run chunks of this many slots, for comparison.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    compare_slots: Option<u64>,
    /// Also run with NATS in plain text (credentials still on), to measure what TLS costs.
    #[arg(long)]
    compare_nats_plain_text: bool,
    /// Also run on this many NATS servers (3: a JetStream cluster, every stream at three
    /// replicas), to measure what replication costs.
    #[arg(long, value_parser = ["1", "3", "5"])]
    compare_nats_nodes: Option<String>,
    /// Also run with this many availability committee members (0: none, batch data in
    /// plaintext), to measure what sealing and attesting cost.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=16))]
    compare_committee_members: Option<u64>,
    /// Write report.json and SVG plots here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// One committed batch as the coordinator reports it.
#[derive(Clone, Debug, Serialize)]
struct BatchSample {
    batch: u64,
    txs: u64,
    chunks: u64,
    latency_s: f64,
    fill_s: f64,
    proving_s: f64,
    committing_s: f64,
    /// Seconds from the start of the run to the commit.
    committed_at_s: f64,
}

#[derive(Debug, Serialize)]
struct RunReport {
    label: String,
    workers: u64,
    slots: u64,
    depth: u64,
    batch_txs: u64,
    submitted: u64,
    accepted: u64,
    rejected: u64,
    committed: u64,
    batches: usize,
    p50_batch_latency_s: f64,
    p90_batch_latency_s: f64,
    p99_batch_latency_s: f64,
    throughput_tps: f64,
    /// The share of batch latency not spent proving.
    non_proving_share: f64,
    mean_stage_s: BTreeMap<&'static str, f64>,
    wall_s: f64,
    samples: Vec<BatchSample>,
}

#[derive(Debug, Serialize)]
struct Report {
    runs: Vec<RunReport>,
    /// Second run over first, for the comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    compare: Option<BTreeMap<&'static str, f64>>,
    // The headline fields of the first run, at the top level.
    p50_batch_latency_s: f64,
    p99_batch_latency_s: f64,
    throughput_tps: f64,
    non_proving_share: f64,
}

/// `pulse bench cluster`.
#[allow(clippy::print_stdout)]
pub fn run(args: ClusterBenchArgs) -> Result<ExitCode> {
    let mut shapes = vec![args.shape.clone()];
    if args.compare_workers.is_some()
        || args.compare_slots.is_some()
        || args.compare_nats_plain_text
        || args.compare_nats_nodes.is_some()
        || args.compare_committee_members.is_some()
    {
        if args.cluster.is_some() {
            bail!(
                "--compare-workers/--compare-slots/--compare-nats-plain-text/--compare-nats-nodes/--compare-committee-members start their own clusters: drop --cluster"
            );
        }
        let mut second = args.shape.clone();
        second.nats_plain_text = args.compare_nats_plain_text;
        if let Some(n) = &args.compare_nats_nodes {
            second.nats_nodes = n.parse().unwrap_or(1);
        }
        if let Some(w) = args.compare_workers {
            second.workers = w;
        }
        if let Some(s) = args.compare_slots {
            second.slots = s;
        }
        if let Some(m) = args.compare_committee_members {
            second.committee_members = m;
            second.committee_threshold = second.committee_threshold.min(m.max(1));
        }
        shapes.push(second);
    }
    let rt = crate::l1::runtime()?;
    let mut runs = Vec::new();
    for shape in &shapes {
        let label = format!(
            "{} worker(s), {} slot(s)/chunk, NATS {} on {} server(s), {}",
            shape.workers,
            shape.slots,
            if shape.nats_plain_text {
                "plain text"
            } else {
                "TLS"
            },
            shape.nats_nodes,
            if shape.committee_members == 0 {
                "batch data in plaintext".to_owned()
            } else {
                format!(
                    "batch data sealed, {} of {} attestations",
                    shape.committee_threshold, shape.committee_members
                )
            }
        );
        if !args.json {
            eprintln!(
                "== {label}: depth {}, batches of {} txs",
                shape.depth, shape.batch_txs
            );
        }
        let report = rt.block_on(async {
            match &args.cluster {
                Some(path) => {
                    let info = ClusterInfo::load(path)?;
                    load(&args, shape, &info, label.clone()).await
                }
                None => {
                    let dir = tempfile::Builder::new()
                        .prefix("pulse-bench-")
                        .tempdir()
                        .context("making a directory for the cluster")?;
                    let (mut child, info) = tokio::task::block_in_place(|| {
                        crate::dev::launch(
                            dir.path(),
                            shape,
                            Some(Duration::from_secs(7200)),
                            false,
                        )
                    })?;
                    let report = load(&args, shape, &info, label.clone()).await;
                    tokio::task::block_in_place(|| {
                        let _ = crate::dev::stop_pid(child.id(), Duration::from_secs(60));
                        let _ = child.wait();
                    });
                    report
                }
            }
        })?;
        runs.push(report);
    }
    let compare = (runs.len() == 2).then(|| {
        let (a, b) = (&runs[0], &runs[1]);
        let ratio = |x: f64, y: f64| if x > 0.0 { y / x } else { f64::NAN };
        BTreeMap::from([
            (
                "p50_batch_latency_ratio",
                ratio(a.p50_batch_latency_s, b.p50_batch_latency_s),
            ),
            (
                "p99_batch_latency_ratio",
                ratio(a.p99_batch_latency_s, b.p99_batch_latency_s),
            ),
            (
                "throughput_ratio",
                ratio(a.throughput_tps, b.throughput_tps),
            ),
        ])
    });
    let first = &runs[0];
    let report = Report {
        p50_batch_latency_s: first.p50_batch_latency_s,
        p99_batch_latency_s: first.p99_batch_latency_s,
        throughput_tps: first.throughput_tps,
        non_proving_share: first.non_proving_share,
        compare,
        runs,
    };
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
        std::fs::write(
            dir.join("latency_over_time.svg"),
            plot_latency_over_time(&report.runs),
        )?;
        std::fs::write(
            dir.join("throughput_over_time.svg"),
            plot_throughput(&report.runs),
        )?;
        std::fs::write(
            dir.join("latency_vs_batch_size.svg"),
            plot_latency_vs_size(&report.runs),
        )?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{:<34} {:>7} {:>9} {:>9} {:>9} {:>10} {:>11}  stages (fill/prove/commit, s)",
            "configuration", "batches", "p50 (s)", "p90 (s)", "p99 (s)", "tx/s", "non-proving"
        );
        for r in &report.runs {
            println!(
                "{:<34} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>10.1}%  {:.2}/{:.2}/{:.2}",
                r.label,
                r.batches,
                r.p50_batch_latency_s,
                r.p90_batch_latency_s,
                r.p99_batch_latency_s,
                r.throughput_tps,
                100.0 * r.non_proving_share,
                r.mean_stage_s.get("fill").copied().unwrap_or(0.0),
                r.mean_stage_s.get("proving").copied().unwrap_or(0.0),
                r.mean_stage_s.get("committing").copied().unwrap_or(0.0),
            );
        }
        if let Some(c) = &report.compare {
            println!(
                "second / first: p50 latency {:.2}, p99 latency {:.2}, throughput {:.2}",
                c["p50_batch_latency_ratio"], c["p99_batch_latency_ratio"], c["throughput_ratio"]
            );
        }
        if let Some(dir) = &args.out {
            println!("report and plots in {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

struct User {
    key: PrivateKey,
    id: u64,
    nonce: u64,
    /// (record, grant, doctor index) of the user's last granted record.
    granted: Option<(u64, u64, usize)>,
}

async fn load(
    args: &ClusterBenchArgs,
    shape: &ClusterShape,
    info: &ClusterInfo,
    label: String,
) -> Result<RunReport> {
    let client = info
        .client_endpoint()
        .connect("pulse bench cluster")
        .await
        .context("connecting to NATS as the cluster's client")?;
    let js = jetstream::new(client);
    let ipfs = pulse_ipfs::IpfsClient::new(&info.ipfs_url)?;
    // Signed for the cluster's contract, as its id on chain says (checked against Pulse's).
    let deployment = pulse_l1::read_deployment(&info.l1_rpc, info.contract)
        .await?
        .id;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let status_url = format!("{}/status", info.coordinator_url);
    let mut rng = ChaCha20Rng::from_entropy();
    let timeout = Duration::from_secs(120);
    let (mut submitted, mut accepted, mut rejected) = (0u64, 0u64, 0u64);
    let mut first_batch: Option<u64> = None;
    let mut max_batch = 0u64;
    let mut count = |status: &ReceiptStatus| {
        submitted += 1;
        match status {
            ReceiptStatus::Accepted { batch, .. } => {
                accepted += 1;
                max_batch = max_batch.max(*batch);
                first_batch = Some(first_batch.map_or(*batch, |f| f.min(*batch)));
            }
            ReceiptStatus::Rejected { .. } => rejected += 1,
            ReceiptStatus::Committed { .. } => {}
        }
    };
    let send = |key: &PrivateKey, signer: u64, nonce: u64, body: TxBody| {
        let js = js.clone();
        let tx = Transaction {
            signer,
            nonce,
            body,
        }
        .sign(key, deployment);
        async move {
            let tx = tx.context("signing")?;
            let r = pulse_client::submit(&js, &tx, deployment, timeout).await?;
            Ok::<_, anyhow::Error>(r.status)
        }
    };

    let started = Instant::now();
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.txs + args.users)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} txs, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("registering users");

    // Users: patients register themselves; doctors are registered by the registrar.
    let registrar = KeyFile::load(&info.registrar_key)?;
    // The registrar's nonce, read as the registrar (lookups answer signed requests only).
    let v = pulse_client::CoordinatorApi::new(&info.coordinator_url)?
        .with_signer(1, registrar.private_key().clone(), deployment)
        .json("account", "/accounts/1?view=latest")
        .await
        .context("reading the registrar's nonce")?;
    let registrar_nonce = v["account"]["nonce"].as_u64().context("registrar nonce")?;
    let doctors_n = (args.users / 4).max(1);
    let mut doctors = Vec::new();
    for k in 0..doctors_n {
        let key = PrivateKey::random(&mut rng);
        let status = send(
            registrar.private_key(),
            1,
            registrar_nonce + k,
            TxBody::Register {
                public_key: key.public_key(),
                role: Role::Doctor,
            },
        )
        .await?;
        count(&status);
        if let ReceiptStatus::Accepted {
            new_account: Some(id),
            ..
        } = status
        {
            doctors.push(User {
                key,
                id,
                nonce: 0,
                granted: None,
            });
        }
    }
    let mut users = Vec::new();
    for _ in 0..args.users {
        let key = PrivateKey::random(&mut rng);
        let body = TxBody::Register {
            public_key: key.public_key(),
            role: Role::Patient,
        };
        let status = send(&key, 0, 0, body).await?;
        count(&status);
        bar.inc(1);
        if let ReceiptStatus::Accepted {
            new_account: Some(id),
            ..
        } = status
        {
            users.push(User {
                key,
                id,
                nonce: 1,
                granted: None,
            });
        }
    }
    if users.is_empty() || doctors.is_empty() {
        bail!("no user could register; see the coordinator's log");
    }

    // The mix, per user in turn: add a record; grant a doctor; the doctor logs accesses;
    // now and then the grant is revoked.
    bar.set_message("submitting");
    let mut samples: BTreeMap<u64, BatchSample> = BTreeMap::new();
    let mut last_poll = Instant::now();
    let load_start = Instant::now();
    for i in 0..args.txs {
        if let Some(rate) = args.rate.filter(|r| *r > 0.0) {
            let due = load_start + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let ui = (i as usize) % users.len();
        let u = &mut users[ui];
        let status = match u.granted {
            None => {
                let content: Vec<u8> = (0..256).map(|_| rng.r#gen::<u8>()).collect();
                let cid = ipfs.add(content).await.context("adding to IPFS")?;
                let status = send(
                    &u.key,
                    u.id,
                    u.nonce,
                    TxBody::AddRecord {
                        patient: u.id,
                        cid,
                        metadata_hash: Fr::from(i),
                        grant: None,
                    },
                )
                .await?;
                if let ReceiptStatus::Accepted {
                    new_record: Some(r),
                    ..
                } = status
                {
                    u.nonce += 1;
                    u.granted = Some((r, 0, ui % doctors.len()));
                }
                status
            }
            Some((record, 0, di)) => {
                let body = TxBody::Grant {
                    grantee: doctors[di].id,
                    scope: Scope::Record(record),
                    permissions: Permissions {
                        read: true,
                        write: false,
                    },
                    expires_at: u64::MAX >> 8,
                };
                let status = send(&u.key, u.id, u.nonce, body).await?;
                if let ReceiptStatus::Accepted {
                    new_grant: Some(g), ..
                } = status
                {
                    u.nonce += 1;
                    u.granted = Some((record, g, di));
                } else {
                    u.granted = None;
                }
                status
            }
            Some((record, grant, di)) => {
                if rng.gen_bool(0.25) {
                    let status = send(&u.key, u.id, u.nonce, TxBody::Revoke { grant }).await?;
                    if matches!(status, ReceiptStatus::Accepted { .. }) {
                        u.nonce += 1;
                    }
                    u.granted = None;
                    status
                } else {
                    let d = &mut doctors[di];
                    let status = send(
                        &d.key,
                        d.id,
                        d.nonce,
                        TxBody::AccessLog {
                            record,
                            grant,
                            purpose: Fr::from(1u64),
                        },
                    )
                    .await?;
                    if matches!(status, ReceiptStatus::Accepted { .. }) {
                        d.nonce += 1;
                    }
                    status
                }
            }
        };
        count(&status);
        bar.inc(1);
        if last_poll.elapsed() > Duration::from_millis(500) {
            poll(&http, &status_url, started, &mut samples).await;
            last_poll = Instant::now();
        }
    }
    bar.set_message("waiting for the last batches on L1");
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        poll(&http, &status_url, started, &mut samples).await;
        let done = first_batch.is_none_or(|f| (f..=max_batch).all(|n| samples.contains_key(&n)));
        if done {
            break;
        }
        if Instant::now() > deadline {
            bail!("batches {first_batch:?}..={max_batch} were not all committed within 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let ours: Vec<BatchSample> = samples
        .into_values()
        .filter(|b| first_batch.is_some_and(|f| b.batch >= f && b.batch <= max_batch))
        .collect();
    let committed: u64 = ours.iter().map(|b| b.txs).sum();
    let mut lat: Vec<f64> = ours.iter().map(|b| b.latency_s).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if lat.is_empty() {
            return f64::NAN;
        }
        let k = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len());
        lat[k - 1]
    };
    let sum = |f: fn(&BatchSample) -> f64| ours.iter().map(f).sum::<f64>();
    let n = ours.len().max(1) as f64;
    let (lat_sum, prove_sum) = (sum(|b| b.latency_s), sum(|b| b.proving_s));
    let span = ours.iter().map(|b| b.committed_at_s).fold(0.0, f64::max);
    Ok(RunReport {
        label,
        workers: shape.workers,
        slots: shape.slots,
        depth: shape.depth,
        batch_txs: shape.batch_txs,
        submitted,
        accepted,
        rejected,
        committed,
        batches: ours.len(),
        p50_batch_latency_s: pct(0.50),
        p90_batch_latency_s: pct(0.90),
        p99_batch_latency_s: pct(0.99),
        throughput_tps: committed as f64 / span.max(1e-9),
        non_proving_share: if lat_sum > 0.0 {
            1.0 - prove_sum / lat_sum
        } else {
            f64::NAN
        },
        mean_stage_s: BTreeMap::from([
            ("fill", sum(|b| b.fill_s) / n),
            ("proving", prove_sum / n),
            ("committing", sum(|b| b.committing_s) / n),
        ]),
        wall_s: wall,
        samples: ours,
    })
}

/// Adds the committed batches `/status` lists to `samples`.
async fn poll(
    http: &reqwest::Client,
    url: &str,
    started: Instant,
    samples: &mut BTreeMap<u64, BatchSample>,
) {
    let Ok(resp) = http.get(url).send().await else {
        return;
    };
    let Ok(v) = resp.json::<serde_json::Value>().await else {
        return;
    };
    let now = started.elapsed().as_secs_f64();
    for b in v["batches"].as_array().into_iter().flatten() {
        let (Some(batch), Some(latency_s)) = (b["batch"].as_u64(), b["latency_s"].as_f64()) else {
            continue;
        };
        if b["status"] != "committed" || samples.contains_key(&batch) {
            continue;
        }
        let f = |k: &str| b[k].as_f64().unwrap_or(0.0);
        samples.insert(
            batch,
            BatchSample {
                batch,
                txs: b["txs"].as_u64().unwrap_or(0),
                chunks: b["chunks"].as_u64().unwrap_or(0),
                latency_s,
                fill_s: f("fill_s"),
                proving_s: f("proving_s"),
                committing_s: f("committing_s"),
                committed_at_s: now,
            },
        );
    }
}

// ---------------------------------------------------------------- SVG plots

const COLORS: [&str; 2] = ["#1f77b4", "#d62728"];
const W: f64 = 640.0;
const H: f64 = 360.0;
const PAD: f64 = 50.0;

fn svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    x_max: f64,
    y_max: f64,
    body: &str,
    legend: &[String],
) -> String {
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n<text x='{}' y='20' text-anchor='middle' font-size='14'>{title}</text>\n",
        W / 2.0
    );
    s.push_str(&format!(
        "<line x1='{PAD}' y1='{}' x2='{}' y2='{}' stroke='black'/>\n<line x1='{PAD}' y1='{PAD}' x2='{PAD}' y2='{}' stroke='black'/>\n",
        H - PAD, W - PAD / 2.0, H - PAD, H - PAD
    ));
    for i in 0..=4 {
        let fx = i as f64 / 4.0;
        let x = PAD + fx * (W - 1.5 * PAD);
        let y = H - PAD - fx * (H - 2.0 * PAD);
        s.push_str(&format!(
            "<text x='{x}' y='{}' text-anchor='middle'>{:.1}</text>\n<text x='{}' y='{}' text-anchor='end'>{:.1}</text>\n",
            H - PAD + 15.0, fx * x_max, PAD - 5.0, y + 4.0, fx * y_max
        ));
    }
    s.push_str(&format!(
        "<text x='{}' y='{}' text-anchor='middle'>{x_label}</text>\n<text x='14' y='{}' text-anchor='middle' transform='rotate(-90 14 {})'>{y_label}</text>\n",
        W / 2.0, H - 10.0, H / 2.0, H / 2.0
    ));
    for (i, l) in legend.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        s.push_str(&format!(
            "<rect x='{}' y='{}' width='10' height='10' fill='{c}'/><text x='{}' y='{}'>{l}</text>\n",
            W - 260.0, 35.0 + 16.0 * i as f64, W - 245.0, 44.0 + 16.0 * i as f64
        ));
    }
    s.push_str(body);
    s.push_str("</svg>\n");
    s
}

fn px(x: f64, x_max: f64) -> f64 {
    PAD + x / x_max.max(1e-9) * (W - 1.5 * PAD)
}

fn py(y: f64, y_max: f64) -> f64 {
    H - PAD - y / y_max.max(1e-9) * (H - 2.0 * PAD)
}

fn legend(runs: &[RunReport]) -> Vec<String> {
    runs.iter().map(|r| r.label.clone()).collect()
}

fn plot_latency_over_time(runs: &[RunReport]) -> String {
    let x_max = runs
        .iter()
        .flat_map(|r| r.samples.iter().map(|b| b.committed_at_s))
        .fold(1.0, f64::max);
    let y_max = runs
        .iter()
        .flat_map(|r| r.samples.iter().map(|b| b.latency_s))
        .fold(1.0, f64::max)
        * 1.1;
    let mut body = String::new();
    for (i, r) in runs.iter().enumerate() {
        let pts: Vec<String> = r
            .samples
            .iter()
            .map(|b| {
                format!(
                    "{:.1},{:.1}",
                    px(b.committed_at_s, x_max),
                    py(b.latency_s, y_max)
                )
            })
            .collect();
        body.push_str(&format!(
            "<polyline fill='none' stroke='{}' stroke-width='1.5' points='{}'/>\n",
            COLORS[i % 2],
            pts.join(" ")
        ));
    }
    svg(
        "Batch latency over time",
        "seconds since start (commit time)",
        "batch latency (s)",
        x_max,
        y_max,
        &body,
        &legend(runs),
    )
}

fn plot_throughput(runs: &[RunReport]) -> String {
    const WINDOW: f64 = 5.0;
    let x_max = runs
        .iter()
        .flat_map(|r| r.samples.iter().map(|b| b.committed_at_s))
        .fold(1.0, f64::max);
    let series: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|r| {
            let buckets = (x_max / WINDOW).ceil() as usize + 1;
            let mut txs = vec![0u64; buckets];
            for b in &r.samples {
                txs[(b.committed_at_s / WINDOW) as usize] += b.txs;
            }
            txs.iter()
                .enumerate()
                .map(|(k, t)| ((k as f64 + 0.5) * WINDOW, *t as f64 / WINDOW))
                .collect()
        })
        .collect();
    let y_max = series.iter().flatten().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let mut body = String::new();
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x, x_max), py(*y, y_max)))
            .collect();
        body.push_str(&format!(
            "<polyline fill='none' stroke='{}' stroke-width='1.5' points='{}'/>\n",
            COLORS[i % 2],
            pts.join(" ")
        ));
    }
    svg(
        "Committed throughput (5 s windows)",
        "seconds since start",
        "transactions / s",
        x_max,
        y_max,
        &body,
        &legend(runs),
    )
}

fn plot_latency_vs_size(runs: &[RunReport]) -> String {
    let x_max = runs
        .iter()
        .flat_map(|r| r.samples.iter().map(|b| b.txs as f64))
        .fold(1.0, f64::max)
        * 1.1;
    let y_max = runs
        .iter()
        .flat_map(|r| r.samples.iter().map(|b| b.latency_s))
        .fold(1.0, f64::max)
        * 1.1;
    let mut body = String::new();
    for (i, r) in runs.iter().enumerate() {
        for b in &r.samples {
            body.push_str(&format!(
                "<circle cx='{:.1}' cy='{:.1}' r='3' fill='{}'/>\n",
                px(b.txs as f64, x_max),
                py(b.latency_s, y_max),
                COLORS[i % 2]
            ));
        }
    }
    svg(
        "Batch latency against batch size",
        "transactions in the batch",
        "batch latency (s)",
        x_max,
        y_max,
        &body,
        &legend(runs),
    )
}
