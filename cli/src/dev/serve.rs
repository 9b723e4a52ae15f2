//! `pulse dev serve`: the supervisor behind `pulse dev up`. It owns every server and
//! service of the local cluster and stops them all on SIGTERM (or after `--ttl`).

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, anyhow, bail};
use pulse_circuits::artifacts::{self, CircuitParams};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_circuits::state::State;
use pulse_client::{KeyFile, Overwrite};
use pulse_coordinator::STATE_FILE;

use super::{CLUSTER_FILE, ClusterInfo, ClusterShape, GENESIS_FILE, PID_FILE};

/// `pulse dev serve` (internal).
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The dev directory.
    #[arg(long)]
    dir: PathBuf,
    #[command(flatten)]
    shape: ClusterShape,
    /// Stop by itself after this long.
    #[arg(long, value_parser = crate::coordinator::parse_duration)]
    ttl: Option<Duration>,
}

/// Runs `f`, turning a panic of testkit's launchers into an error.
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

/// A service child process (coordinator or worker) with its log.
struct Service {
    name: String,
    child: Child,
    log: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    pid_file: PathBuf,
    started: Instant,
    /// The wait before the next restart; doubles on each quick crash.
    backoff: Duration,
    /// When an exited service is to be started again.
    restart_at: Option<Instant>,
    restarts: u32,
}

/// A service that ran this long before it exited is restarted after the shortest wait.
const STABLE_AFTER: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Service {
    fn spawn(name: &str, args: &[String], env: &[(&str, &str)], logs: &Path) -> Result<Self> {
        let log = logs.join(format!("{name}.log"));
        let pid_file = logs.join(format!("{name}.pid"));
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let child = Self::start(name, args, &env, &log, false)?;
        std::fs::write(&pid_file, child.id().to_string())
            .with_context(|| format!("writing {}", pid_file.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
            args: args.to_vec(),
            env,
            pid_file,
            started: Instant::now(),
            backoff: FIRST_BACKOFF,
            restart_at: None,
            restarts: 0,
        })
    }

    fn start(
        name: &str,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
        append: bool,
    ) -> Result<Child> {
        let exe = std::env::current_exe().context("finding the pulse executable")?;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone().context("sharing a log file")?;
        let mut cmd = Command::new(exe);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        cmd.env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().with_context(|| format!("starting {name}"))
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Restarts the service once it has exited and its backoff has passed: a crash costs
    /// a wait of 1 s, doubling up to 30 s while it keeps crashing within a minute of each
    /// start.
    fn supervise(&mut self) {
        let Some(status) = self.exited() else {
            return;
        };
        let now = Instant::now();
        match self.restart_at {
            None => {
                if self.started.elapsed() >= STABLE_AFTER {
                    self.backoff = FIRST_BACKOFF;
                }
                eprintln!(
                    "{} exited ({status}); restarting it in {:?}; see {}",
                    self.name,
                    self.backoff,
                    self.log.display()
                );
                self.restart_at = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
            Some(at) if now >= at => {
                match Self::start(&self.name, &self.args, &self.env, &self.log, true) {
                    Ok(child) => {
                        self.child = child;
                        self.started = now;
                        self.restart_at = None;
                        self.restarts += 1;
                        let _ = std::fs::write(&self.pid_file, self.child.id().to_string());
                        eprintln!(
                            "{} restarted (restart {}, pid {})",
                            self.name,
                            self.restarts,
                            self.child.id()
                        );
                    }
                    Err(e) => {
                        eprintln!("{} could not be restarted: {e:#}", self.name);
                        self.restart_at = Some(now + self.backoff);
                        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            Some(_) => {}
        }
    }

    fn stop(&mut self, grace: Duration) {
        if self.exited().is_none() {
            let _ = super::stop_pid(self.child.id(), grace);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// `pulse dev serve`.
pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    crate::l1::runtime()?.block_on(run(args))
}

async fn run(args: ServeArgs) -> Result<ExitCode> {
    let dir = args.dir.clone();
    std::fs::write(dir.join(PID_FILE), std::process::id().to_string())
        .context("writing the pid file")?;
    let logs = dir.join("logs");
    // A fresh cluster: state from an earlier run would not match the new chain.
    for sub in ["logs", "keys", "state", "workers", "committee"] {
        let _ = std::fs::remove_dir_all(dir.join(sub));
    }
    std::fs::create_dir_all(&logs).context("creating the log directory")?;
    let shape = &args.shape;
    if shape.committee_members > 0 && shape.committee_threshold > shape.committee_members {
        bail!(
            "--committee-threshold {} is more than the {} committee members: use 1 to {}",
            shape.committee_threshold,
            shape.committee_members,
            shape.committee_members
        );
    }

    eprintln!("starting nats-server, anvil and the IPFS node on loopback");
    let tls = !shape.nats_plain_text;
    let mut nats = start("nats-server", || {
        pulse_testkit::Nats::start_with(pulse_testkit::NatsOptions {
            tls,
            nodes: usize::try_from(shape.nats_nodes).unwrap_or(1),
        })
    })?;
    let anvil = start("anvil", pulse_testkit::Anvil::start)?;
    let ipfs = start("the IPFS node", pulse_testkit::Ipfs::start)?;

    // Every worker's NATS user is added at once, before any worker starts: adding one
    // reloads the servers, and a reload can refuse a client that is authenticating at that
    // moment. A ceremony needs them first (its participants are the workers' users);
    // otherwise they are added once the coordinator is up, as before ceremonies.
    let mut endpoints = Vec::new();
    let coordinator_nats = nats.coordinator();

    let params = CircuitParams::new(shape.slots as usize, shape.depth as usize);
    let keys_dir = dir.join("keys");
    let keys = if shape.setup == "single-party" {
        eprintln!(
            "Groth16 setup (single party) for {} slot(s) per chunk, tree depth {}",
            params.slots, params.depth
        );
        let keys = tokio::task::spawn_blocking(move || {
            artifacts::setup(ChunkCircuit::blank(params), params, &mut rand::rngs::OsRng)
        })
        .await??;
        keys.write(&keys_dir)?;
        keys
    } else {
        endpoints = add_worker_users(&mut nats, shape.workers)?;
        let ids: Vec<String> = (1..=shape.workers)
            .map(|i| format!("hospital-{i}"))
            .collect();
        eprintln!(
            "Groth16 keys by a phase-2 ceremony through the cluster (the operator, {}, then a beacon) for {} slot(s) per chunk, tree depth {}",
            ids.join(", "),
            params.slots,
            params.depth
        );
        let ceremony = DevCeremony {
            dir: dir.join("ceremony"),
            logs: logs.clone(),
            params,
            participants: ids.iter().cloned().zip(endpoints.iter().cloned()).collect(),
            nats_url: nats.url(),
            ipfs_url: ipfs.api_url(),
        };
        ceremony.run(&coordinator_nats, &keys_dir).await?
    };
    // The genesis registrar (account 1), kept as a key file for registering doctors.
    let registrar = KeyFile::new(
        pulse_circuits::eddsa::PrivateKey::random(&mut rand::rngs::OsRng),
        Some(1),
    );
    let registrar_key = dir.join("registrar.key");
    registrar.save(&registrar_key, Overwrite::Replace)?;
    let state_dir = dir.join("state");
    std::fs::create_dir_all(&state_dir)?;
    let genesis = {
        let state = State::open(&state_dir.join(STATE_FILE), params.depth)?;
        state.init_genesis(&[registrar.public_key()])?.state_root()
    };
    // The genesis in public form, for rebuilding the state from L1 and IPFS.
    let genesis_file = dir.join(GENESIS_FILE);
    pulse_coordinator::rebuild::Genesis {
        version: 1,
        depth: params.depth,
        registrars: vec![registrar.public_key()],
    }
    .save(&genesis_file)
    .context("writing the genesis file")?;
    let committee = if shape.committee_members > 0 {
        let c = DevCommittee::make(
            &dir.join("committee"),
            shape.committee_members,
            shape.committee_threshold,
        )?;
        eprintln!(
            "availability committee: {} of {} ({}); batch data is sealed for them",
            shape.committee_threshold,
            shape.committee_members,
            c.members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Some(c)
    } else {
        None
    };
    let member_endpoints = match &committee {
        Some(c) => c
            .members
            .iter()
            .map(|m| {
                start("a committee member's NATS user", || {
                    nats.endpoint(pulse_access::Role::Member, &m.name)
                })
            })
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    // anvil's public dev accounts: 0 owns the contract, 1 operates it.
    let owner: PrivateKeySigner = pulse_testkit::DEV_ACCOUNTS[0].private_key.parse()?;
    let operator_hex = pulse_testkit::DEV_ACCOUNTS[1].private_key;
    let operator: PrivateKeySigner = operator_hex.parse()?;
    let deployed = pulse_l1::deploy(
        &anvil.url(),
        owner.clone(),
        &pulse_l1::DeployParams {
            genesis_root: genesis,
            vk: keys.pk.vk.clone(),
            owner: owner.address(),
            operators: vec![operator.address()],
            committee: committee
                .as_ref()
                .map(|c| c.members.iter().map(|m| m.signer.address()).collect())
                .unwrap_or_default(),
            threshold: committee
                .as_ref()
                .map_or(0, |c| c.committee.threshold.into()),
        },
    )
    .await?;
    eprintln!("rollup contract deployed at {}", deployed.address);

    let http = SocketAddr::from(([127, 0, 0, 1], pulse_testkit::free_port()));
    let mut services = Vec::new();
    let coordinator_args: Vec<String> = vec![
        "coordinator".into(),
        "run".into(),
        format!("--nats={}", nats.url()),
        format!(
            "--nats-credentials={}",
            creds_of(&coordinator_nats)?.display()
        ),
        format!("--state-dir={}", state_dir.display()),
        format!("--keys={}", keys_dir.display()),
        format!("--ipfs={}", ipfs.api_url()),
        format!("--l1-rpc={}", anvil.url()),
        format!("--contract={}", deployed.address),
        format!("--batch-max-txs={}", shape.batch_txs),
        format!("--batch-deadline={}ms", shape.batch_deadline.as_millis()),
        format!("--http={http}"),
        format!("--genesis={}", genesis_file.display()),
        format!("--nats-replicas={}", shape.nats_nodes),
        format!("--split={}", shape.split),
    ];
    let mut coordinator_args = with_ca(coordinator_args, &coordinator_nats);
    if let Some(c) = &committee {
        coordinator_args.push(format!("--committee={}", c.file.display()));
        coordinator_args.push(format!("--committee-key={}", c.operator_key.display()));
    }
    services.push(Service::spawn(
        "coordinator",
        &coordinator_args,
        &[("PULSE_L1_PRIVATE_KEY", operator_hex)],
        &logs,
    )?);
    let coordinator_url = format!("http://{http}");
    wait_http(
        &mut services[0],
        http.port(),
        "/health",
        Duration::from_secs(120),
    )
    .await?;
    eprintln!("coordinator up at {coordinator_url}");
    if endpoints.is_empty() {
        endpoints = add_worker_users(&mut nats, shape.workers)?;
    }

    let mut worker_ports = Vec::new();
    let mut worker_credentials = std::collections::BTreeMap::new();
    for (i, endpoint) in endpoints.into_iter().enumerate() {
        let name = format!("worker-{}", i + 1);
        let id = format!("hospital-{}", i + 1);
        let port = pulse_testkit::free_port();
        worker_ports.push(port);
        let creds = creds_of(&endpoint)?;
        worker_credentials.insert(id.clone(), creds.clone());
        let args: Vec<String> = vec![
            "worker".into(),
            "run".into(),
            format!("--nats={}", nats.url()),
            format!("--nats-credentials={}", creds.display()),
            format!("--id={id}"),
            format!("--key-cache={}", dir.join("workers").join(&name).display()),
            format!("--metrics-addr=127.0.0.1:{port}"),
        ];
        let mut args = args;
        if let Some(bytes) = shape.worker_base_memory {
            args.push(format!("--base-memory={bytes}"));
        }
        let args = with_ca(args, &endpoint);
        services.push(Service::spawn(&name, &args, &[], &logs)?);
    }

    if let Some(c) = &committee {
        for (m, endpoint) in c.members.iter().zip(&member_endpoints) {
            let args: Vec<String> = vec![
                "committee".into(),
                "run".into(),
                format!("--nats={}", nats.url()),
                format!("--nats-credentials={}", creds_of(endpoint)?.display()),
                format!("--committee={}", c.file.display()),
                format!("--key={}", m.key_file.display()),
                format!("--attestation-key-file={}", m.signer_file.display()),
                format!("--ipfs={}", ipfs.api_url()),
                format!("--l1-rpc={}", anvil.url()),
                format!("--contract={}", deployed.address),
            ];
            let args = with_ca(args, endpoint);
            services.push(Service::spawn(
                &format!("member-{}", m.name),
                &args,
                &[],
                &logs,
            )?);
        }
    }

    let targets: Vec<String> = worker_ports
        .iter()
        .map(|p| format!("'127.0.0.1:{p}'"))
        .collect();
    let prometheus = start("Prometheus", || {
        pulse_testkit::Prometheus::start(&format!(
            "global:\n  scrape_interval: 2s\n  evaluation_interval: 2s\nscrape_configs:\n  - job_name: pulse-coordinator\n    static_configs:\n      - targets: ['{http}']\n  - job_name: pulse-worker\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ))
    })?;

    let client_nats = nats.client();
    let operator_nats = nats.endpoint(pulse_access::Role::Operator, "operator");
    let info = ClusterInfo {
        version: 1,
        nats_url: nats.url(),
        nats_ca: client_nats.ca.clone(),
        nats_credentials: super::RoleCredentials {
            coordinator: creds_of(&coordinator_nats)?,
            worker: worker_credentials
                .values()
                .next()
                .cloned()
                .context("the cluster has no worker")?,
            client: creds_of(&client_nats)?,
            operator: creds_of(&operator_nats)?,
            workers: worker_credentials,
        },
        coordinator_url,
        ipfs_url: ipfs.api_url(),
        l1_rpc: anvil.url(),
        chain_id: deployed.chain_id,
        contract: deployed.address,
        deployment_id: deployed.deployment_id,
        prometheus_url: prometheus.url(),
        slots: params.slots,
        depth: params.depth,
        workers: shape.workers as usize,
        registrar_key,
        genesis: genesis_file,
        dir: dir.clone(),
        pid: std::process::id(),
        committee: committee.as_ref().map(|c| super::CommitteeFiles {
            file: c.file.clone(),
            keys: c
                .members
                .iter()
                .map(|m| (m.name.clone(), m.key_file.clone()))
                .collect(),
        }),
    };
    write_env(&dir, &info)?;
    let tmp = dir.join(format!("{CLUSTER_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&info)?)?;
    std::fs::rename(&tmp, dir.join(CLUSTER_FILE))?;
    eprintln!("cluster up; waiting for SIGTERM");

    let started = Instant::now();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    let reason = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM".to_owned(),
            _ = tokio::signal::ctrl_c() => break "Ctrl-C".to_owned(),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if args.ttl.is_some_and(|ttl| started.elapsed() > ttl) {
            break "its time to live ran out".to_owned();
        }
        for s in &mut services {
            s.supervise();
        }
    };
    eprintln!("stopping the cluster ({reason})");
    let _ = std::fs::remove_file(dir.join(CLUSTER_FILE));
    // Workers first (they hand back their jobs), then the coordinator, then the servers.
    for s in services.iter_mut().rev() {
        s.stop(Duration::from_secs(20));
    }
    drop(prometheus);
    drop(ipfs);
    drop(anvil);
    drop(nats);
    let _ = std::fs::remove_file(dir.join(PID_FILE));
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Polls `GET path` on the loopback port until it answers 200, failing early if the
/// service exits.
async fn wait_http(service: &mut Service, port: u16, path: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let p = path.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            pulse_testkit::http_request(port, "GET", &p, None, Duration::from_secs(2))
                .is_ok_and(|a| a.status == 200)
        })
        .await
        .unwrap_or(false);
        if ok {
            return Ok(());
        }
        if let Some(status) = service.exited() {
            bail!(
                "{} exited ({status}) before answering; its log {} ends:\n{}",
                service.name,
                service.log.display(),
                super::tail(&service.log)
            );
        }
        if start.elapsed() > timeout {
            bail!(
                "{} did not answer on 127.0.0.1:{port}{path} within {timeout:?}",
                service.name
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Adds the NATS users `hospital-1` … `hospital-<workers>`.
fn add_worker_users(
    nats: &mut pulse_testkit::Nats,
    workers: u64,
) -> Result<Vec<pulse_access::NatsEndpoint>> {
    (1..=workers)
        .map(|i| {
            let id = format!("hospital-{i}");
            start("a worker's NATS user", || nats.worker(&id))
        })
        .collect()
}

/// The dev cluster's ceremony, run through the cluster: the operator contributes here, then
/// each worker's identity in its own `pulse ceremony join` process (its own credentials),
/// each contribution verified by the host before the next, then a beacon.
struct DevCeremony {
    dir: PathBuf,
    logs: PathBuf,
    params: CircuitParams,
    participants: Vec<(String, pulse_access::NatsEndpoint)>,
    nats_url: String,
    ipfs_url: String,
}

/// How long a dev participant waits for its turn and its verdict.
const DEV_TURN: Duration = Duration::from_secs(600);

impl DevCeremony {
    async fn run(
        self,
        host_nats: &pulse_access::NatsEndpoint,
        keys_dir: &Path,
    ) -> Result<artifacts::KeyArtifacts> {
        let say = |step: &str| eprintln!("  ceremony: {step}");
        let (dir, params) = (self.dir.clone(), self.params);
        let mut c = tokio::task::spawn_blocking(move || {
            let mut c = pulse_ceremony::ceremony::dev_ceremony_start(&dir, params, &|step| {
                eprintln!("  ceremony: {step}");
            })?;
            eprintln!("  ceremony: contribution of the operator");
            c.contribute("operator", b"", &|_| {})?;
            Ok::<_, pulse_ceremony::ceremony::CeremonyError>(c)
        })
        .await??;
        let id = c.manifest.circuit_hash.clone();
        let mut joins = Vec::new();
        for (name, endpoint) in &self.participants {
            let log = self.logs.join(format!("ceremony-{name}.log"));
            let mut args = vec![
                "ceremony".to_owned(),
                "join".into(),
                format!("--nats={}", self.nats_url),
                format!("--nats-credentials={}", creds_of(endpoint)?.display()),
                format!("--ipfs={}", self.ipfs_url),
                format!("--ceremony={id}"),
                format!("--wait={}s", DEV_TURN.as_secs()),
            ];
            args = with_ca(args, endpoint);
            joins.push((
                name.clone(),
                Service::start(name, &args, &[], &log, false)?,
                log,
            ));
        }
        let client = host_nats
            .connect("pulse-dev-ceremony")
            .await
            .context("connecting the ceremony's host to NATS")?;
        let js = async_nats::jetstream::new(client);
        let ipfs = pulse_ipfs::IpfsClient::new(&self.ipfs_url)?;
        let names: Vec<String> = self.participants.iter().map(|(n, _)| n.clone()).collect();
        let options = crate::ceremony_net::HostOptions {
            turn_timeout: DEV_TURN,
            max_zkey: 1 << 30,
        };
        let hosted = crate::ceremony_net::host(&mut c, &js, &ipfs, &names, &options, &say).await;
        for (name, mut child, log) in joins {
            if hosted.is_err() {
                // No more turns will come: the participants would wait out their time.
                let _ = child.kill();
            }
            let status = tokio::task::spawn_blocking(move || child.wait()).await??;
            if !status.success() && hosted.is_ok() {
                bail!(
                    "the ceremony participant {name} failed ({status}); the end of {}:\n{}",
                    log.display(),
                    super::tail(&log)
                );
            }
        }
        let report = hosted?;
        if !report.skipped.is_empty() {
            bail!(
                "ceremony participants were skipped: {}",
                report
                    .skipped
                    .iter()
                    .map(|s| format!("{}: {}", s.participant, s.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        for a in &report.accepted {
            eprintln!(
                "  ceremony: contribution #{} of {} verified and accepted ({}…)",
                a.index,
                a.participant,
                &a.hash[..16.min(a.hash.len())]
            );
        }
        let out = keys_dir.to_path_buf();
        let (keys, report) = tokio::task::spawn_blocking(move || {
            pulse_ceremony::ceremony::dev_ceremony_close(&mut c, &out, &|step| {
                eprintln!("  ceremony: {step}");
            })
        })
        .await??;
        eprintln!("  ceremony transcript {}", report.transcript_hash);
        Ok(keys)
    }
}

/// The dev cluster's availability committee: `hospital-1` … with fresh keys, in
/// DIR/committee.
struct DevCommittee {
    file: PathBuf,
    /// The operator's reader key (it rebuilds a lost state from the sealed data).
    operator_key: PathBuf,
    committee: pulse_dac::Committee,
    members: Vec<DevMember>,
}

struct DevMember {
    name: String,
    key_file: PathBuf,
    signer: PrivateKeySigner,
    signer_file: PathBuf,
}

impl DevCommittee {
    fn make(dir: &Path, n: u64, threshold: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut members = Vec::new();
        let mut listed = Vec::new();
        for i in 1..=n {
            let name = format!("hospital-{i}");
            let key = pulse_dac::MemberKey::generate(&name);
            let key_file = dir.join(format!("{name}.key"));
            key.save(&key_file)?;
            let signer = PrivateKeySigner::random();
            let signer_file = dir.join(format!("{name}.attestation-key"));
            crate::user::write_private(&signer_file, hex::encode(signer.to_bytes()).as_bytes())?;
            listed.push(pulse_dac::Member {
                name: name.clone(),
                x25519: key.public_hex(),
                address: signer.address().to_string(),
            });
            members.push(DevMember {
                name,
                key_file,
                signer,
                signer_file,
            });
        }
        let mut committee = pulse_dac::Committee::new(u32::try_from(threshold)?, listed)?;
        let operator = pulse_dac::MemberKey::generate("operator");
        let operator_key = dir.join("operator.key");
        operator.save(&operator_key)?;
        committee.readers.push(pulse_dac::committee::Reader {
            name: "operator".into(),
            x25519: operator.public_hex(),
        });
        committee.check("the dev committee")?;
        let file = dir.join("committee.json");
        std::fs::write(&file, committee.to_json() + "\n")
            .with_context(|| format!("writing {}", file.display()))?;
        Ok(Self {
            file,
            operator_key,
            committee,
            members,
        })
    }
}

/// `args` with `--nats-ca` when the endpoint has a CA.
fn with_ca(mut args: Vec<String>, endpoint: &pulse_access::NatsEndpoint) -> Vec<String> {
    if let Some(ca) = &endpoint.ca {
        args.push(format!("--nats-ca={}", ca.display()));
    }
    args
}

fn creds_of(endpoint: &pulse_access::NatsEndpoint) -> Result<PathBuf> {
    endpoint
        .credentials
        .clone()
        .context("no NATS credentials for this role")
}

fn write_env(dir: &Path, info: &ClusterInfo) -> Result<()> {
    let text = format!(
        "# Written by `pulse dev up`: `source` it to point the pulse commands at the local cluster.\nexport PULSE_CLUSTER='{}'\nexport PULSE_NATS='{}'\nexport PULSE_NATS_CA='{}'\nexport PULSE_NATS_CREDENTIALS='{}'\nexport PULSE_COORDINATOR='{}'\nexport PULSE_IPFS='{}'\nexport PULSE_L1_RPC='{}'\nexport PULSE_L1_CONTRACT='{}'\nexport PULSE_DEPTH='{}'\n",
        dir.join(CLUSTER_FILE).display(),
        info.nats_url,
        info.nats_ca
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        info.nats_credentials.client.display(),
        info.coordinator_url,
        info.ipfs_url,
        info.l1_rpc,
        info.contract,
        info.depth
    );
    std::fs::write(dir.join("cluster.env"), text).context("writing cluster.env")
}
