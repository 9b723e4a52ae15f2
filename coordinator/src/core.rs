//! The coordinator's event loop.

mod split_flow;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, Message};
use futures::StreamExt;
use pulse_circuits::artifacts::{ProofArtifact, VerifierArtifacts};
use pulse_circuits::deployment::Deployment;
use pulse_circuits::state::{State, StateView};
use pulse_circuits::tx::{MAX_TX_JSON_BYTES, SignedTransaction};
use pulse_l1::pipeline::SenderPipeline;
use pulse_l1::{BatchCommit, ChunkProof, Committed, L1Error, L1Sender, SenderConfig};
use pulse_protocol::nats::{LayoutOptions, ensure_layout};
use pulse_protocol::{
    JOB_STREAM, JobOutcome, JobResult, ProvingJob, RESULT_CONSUMER, RESULT_STREAM, Receipt,
    ReceiptStatus, TX_CONSUMER, TX_STREAM, decode, encode, job_id, job_subject,
    parse_job_id_generation, parse_shard_job_id, receipt_subject,
};
use pulse_prover::split::KeyHeader;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::api::{self, ApiState, Snapshot};
use crate::journal::{self, Entry, Journal};
use crate::lease::Lease;
use crate::metrics::{self, Metrics};
use crate::sequencer::{self, Command, Refusal, now_ms};
use crate::split::SplitChunk;
use crate::store::{BatchRecord, BatchStatus, Store};
use crate::{CoordinatorConfig, STATE_FILE, STORE_FILE, pubdata};

/// What a run did, for tests and the CLI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Transactions accepted.
    pub accepted: u64,
    /// Transactions rejected.
    pub rejected: u64,
    /// Batches committed on L1.
    pub committed_batches: u64,
    /// Proofs refused.
    pub invalid_proofs: u64,
    /// Transactions of promised batches re-created from the journal at start.
    pub replayed: u64,
    /// Chunk proofs assembled from shards (split proofs) and accepted.
    pub split_proofs: u64,
    /// Shards of those proofs.
    pub shards: u64,
    /// Shards a check showed to be wrong (each also counts as an invalid proof).
    pub bad_shards: u64,
}

struct OpenBatch {
    number: u64,
    first_received: Instant,
    first_received_ms: u64,
    hashes: HashSet<String>,
}

/// Tries at storing a receipt (up to about a minute with the pauses between them).
const RECEIPT_ATTEMPTS: u32 = 10;

/// A running coordinator.
pub struct Coordinator {
    config: CoordinatorConfig,
    js: jetstream::Context,
    store: Arc<Store>,
    state: Arc<State>,
    verifier: Arc<VerifierArtifacts>,
    sequencer: mpsc::Sender<Command>,
    /// Joined at stop, after `sequencer` is closed.
    sequencer_thread: Option<std::thread::JoinHandle<()>>,
    /// Where each promise is made durable before it is made.
    journal: Journal,
    /// Set when a promise could not be made durable: the coordinator stops, rolling the
    /// open batch back (its journaled part comes back at the next start).
    fatal: Option<String>,
    /// Cancelled at a graceful stop: the lease is released for a standby.
    lease_release: CancellationToken,
    /// Cancelled by the lease keeper when another coordinator holds the lease.
    lease_lost: CancellationToken,
    /// Stops the renewals (without releasing) when the coordinator is dropped.
    _lease_abandon: tokio_util::sync::DropGuard,
    /// Cancelled when the coordinator is dropped (its `run` ended, or was aborted as a
    /// killed process's would be): the L1 sender, the HTTP API and the metrics watcher
    /// stop with it, an L1 commit in flight left as it stands.
    halt: CancellationToken,
    _halt_guard: tokio_util::sync::DropGuard,
    /// Random per start: names this run's job publications (see `publish_missing_jobs`).
    run_id: u64,
    ipfs: pulse_ipfs::IpfsClient,
    pipeline: SenderPipeline,
    committed_tx: mpsc::Sender<(u64, Result<Committed, L1Error>)>,
    committed_rx: mpsc::Receiver<(u64, Result<Committed, L1Error>)>,
    open: Option<OpenBatch>,
    next_number: u64,
    /// Batches sealed and not yet final, by number.
    pending: BTreeMap<u64, BatchRecord>,
    /// When each pending batch's jobs were last published.
    published_at: HashMap<u64, Instant>,
    /// The next batch to hand to the L1 sender (they must go in order).
    next_to_commit: u64,
    /// Source messages held until their batch is final, by batch.
    held: HashMap<u64, Vec<Message>>,
    invalid_by_worker: BTreeMap<String, u64>,
    summary: Summary,
    snapshot: Arc<RwLock<Snapshot>>,
    /// The state as of the last batch committed on L1 (for the API's lookups).
    committed_view: Arc<RwLock<Option<Arc<StateView>>>>,
    /// The state as of each batch sealed by this run and not yet committed.
    sealed_views: BTreeMap<u64, Arc<StateView>>,
    metrics: Arc<Metrics>,
    circuit_id: String,
    pk_hash: String,
    vk_hash: String,
    /// The deployment transactions must be signed for (the contract's `deploymentId()`).
    deployment: Deployment,
    /// The proving key's header: its queries' sizes (for split plans) and what a split
    /// proof is assembled with.
    key: Arc<KeyHeader>,
    /// Chunks being proved split, by batch and chunk.
    splits: HashMap<(u64, usize), SplitChunk>,
    /// Chunks no live worker can take now (whole or split), with the reason said.
    split_blocked: HashMap<(u64, usize), String>,
    /// Workers whose shard consumer this run has made.
    shard_consumers: HashSet<String>,
    /// When the split proofs were last looked after.
    split_ticked: Instant,
    /// The availability committee, when the deployment has one.
    dac: Option<crate::dac::CommitteeSide>,
    /// Batches whose attestations are being collected (by a task of this run).
    attesting: HashSet<u64>,
    /// Attestations collected, by batch, until the batch is handed to the L1 sender.
    attested: HashMap<u64, Vec<pulse_l1::attest::Attestation>>,
    attested_tx: mpsc::Sender<(u64, Vec<pulse_l1::attest::Attestation>)>,
    attested_rx: mpsc::Receiver<(u64, Vec<pulse_l1::attest::Attestation>)>,
}

fn receipt_id(msg: &Message) -> Option<String> {
    let id = msg
        .headers
        .as_ref()?
        .get("Nats-Msg-Id")?
        .as_str()
        .to_owned();
    let ok = !id.is_empty()
        && id.len() <= 80
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then_some(id)
}

impl Coordinator {
    /// Opens the state and the store, connects to NATS (creating the stream layout), IPFS
    /// and L1, checks that they agree (the contract's deployment id is the one Pulse
    /// computes for its chain and address, which signatures are then checked against), and
    /// publishes the proving key for the workers.
    ///
    /// # Errors
    /// Any of those steps failing, with what was being done.
    pub async fn start(config: CoordinatorConfig) -> Result<Self> {
        Self::start_or_stand_by(config, &CancellationToken::new()).await
    }

    /// As [`Coordinator::start`], first taking the lease: while another coordinator holds
    /// it, this one stands by (until `cancel` fires). The state is opened, rebuilt or
    /// caught up only once the lease is held.
    ///
    /// # Errors
    /// As [`Coordinator::start`]; also when cancelled while standing by.
    pub async fn start_or_stand_by(
        config: CoordinatorConfig,
        cancel: &CancellationToken,
    ) -> Result<Self> {
        // What is local is checked before anything connects or waits.
        std::fs::create_dir_all(&config.state_dir).with_context(|| {
            format!(
                "creating the state directory {}",
                config.state_dir.display()
            )
        })?;
        let verifier = VerifierArtifacts::load(&config.keys_dir)
            .with_context(|| format!("loading the keys in {}", config.keys_dir.display()))?;
        let params = verifier.manifest.params;
        let key_path = config
            .keys_dir
            .join(pulse_circuits::artifacts::PROVING_KEY_FILE);
        let key = KeyHeader::read(&key_path).context("reading the proving key's header")?;
        if key.vk != verifier.vk {
            bail!(
                "{} is not the proving key of the verifying key beside it: run pulse setup again",
                key_path.display()
            );
        }

        let client = config
            .nats
            .connect("pulse-coordinator")
            .await
            .context("connecting to NATS with the coordinator's credentials")?;
        let js = jetstream::new(client);
        let lease = Lease::acquire(
            &js,
            &config.name,
            config.lease_ttl,
            config.nats_replicas,
            cancel,
        )
        .await
        .context("taking the coordinator lease")?;
        let lease_release = CancellationToken::new();
        let lease_lost = CancellationToken::new();
        // Renewed from now on: a rebuild may take longer than the lease lives. Dropping the
        // coordinator (or a failed start) stops the renewals without releasing: the lease
        // then expires, as it does when the process is killed.
        let lease_abandon = CancellationToken::new();
        tokio::spawn(lease.keep(
            lease_release.clone(),
            lease_abandon.clone(),
            lease_lost.clone(),
        ));
        let abandon_guard = lease_abandon.drop_guard();

        // A state directory without a state (a new disk, a lost one): rebuilt from L1 and
        // IPFS when the deployment's genesis is known.
        if let Some(genesis) = &config.genesis
            && !config.state_dir.join(STATE_FILE).exists()
        {
            if genesis.depth != params.depth {
                bail!(
                    "the genesis file is for tree depth {} but the keys are for depth {}",
                    genesis.depth,
                    params.depth
                );
            }
            warn!(
                state_dir = %config.state_dir.display(),
                "no rollup state here: rebuilding it from L1 and IPFS"
            );
            let report = crate::rebuild::rebuild(
                &crate::rebuild::RebuildConfig {
                    l1_rpc: config.l1_rpc.clone(),
                    contract: config.l1_contract,
                    ipfs_url: config.ipfs_url.clone(),
                    genesis: genesis.clone(),
                    out: config.state_dir.clone(),
                    fetch_timeout: Duration::from_secs(60),
                    reader: config
                        .committee
                        .clone()
                        .zip(config.committee_key.clone())
                        .map(|(committee, key)| crate::rebuild::CommitteeReader { committee, key }),
                },
                |done, total| info!(done, total, "rebuilding the state"),
            )
            .await
            .context("rebuilding the state from L1 and IPFS")?;
            info!(
                batches = report.batches,
                transactions = report.transactions,
                seconds = report.seconds,
                matches = report.matches,
                "state rebuilt from L1 and IPFS"
            );
            if !report.matches {
                bail!("the rebuilt state's root is not the one L1 holds; see the rebuild's report");
            }
        }
        let state = Arc::new(
            State::open(&config.state_dir.join(STATE_FILE), params.depth)
                .context("opening the rollup state")?,
        );
        let store = Arc::new(
            Store::open(&config.state_dir.join(STORE_FILE))
                .context("opening the coordinator store")?,
        );

        ensure_layout(
            &js,
            LayoutOptions {
                job_lease: config.job_lease,
                replicas: config.nats_replicas,
                ..LayoutOptions::default()
            },
        )
        .await
        .context("setting up the JetStream layout")?;
        let journal = Journal::open(js.clone(), config.nats_replicas)
            .await
            .context("opening the sequencing journal")?;
        pulse_protocol::keys::publish_proving_key(&js, &config.keys_dir)
            .await
            .context("publishing the proving key to the NATS object store")?;

        let ipfs = pulse_ipfs::IpfsClient::new(&config.ipfs_url).context("the IPFS API URL")?;
        let sender = L1Sender::connect(
            &config.l1_rpc,
            config.l1_operator.clone(),
            config.l1_contract,
            SenderConfig {
                confirmations: config.l1_confirmations,
                ..SenderConfig::default()
            },
        )
        .await
        .context("connecting to L1")?;
        let status = pulse_l1::status(&config.l1_rpc, config.l1_contract, 0)
            .await
            .context("reading the rollup contract")?;
        let onchain = status.batch_number;
        let deployment = pulse_l1::read_deployment(&config.l1_rpc, config.l1_contract)
            .await
            .context("checking the rollup contract's deployment id")?;
        info!(%deployment, "transactions are checked against this deployment");
        let onchain_committee =
            pulse_l1::attest::read_committee(&config.l1_rpc, config.l1_contract)
                .await
                .context("reading the rollup contract's committee")?;
        let dac = match &config.committee {
            Some(c) => {
                onchain_committee
                    .check_matches(c)
                    .map_err(anyhow::Error::msg)?;
                info!(
                    members = c.members.len(),
                    threshold = c.threshold,
                    "batch data is sealed for the availability committee"
                );
                Some(crate::dac::CommitteeSide::new(c.clone())?)
            }
            None if onchain_committee.threshold > 0 => bail!(
                "the rollup contract requires {} attestations of its {}-member availability committee per batch: give the committee file (--committee)",
                onchain_committee.threshold,
                onchain_committee.members.len()
            ),
            None => None,
        };

        // A batch sealed but never applied to the state (a crash between the two writes):
        // drop its record; its transactions were never acknowledged and come back.
        if let Some(b) = store
            .last_number()?
            .map(|n| store.get(n))
            .transpose()?
            .flatten()
        {
            let root = state.roots()?.state_root();
            let before = b.chunks.first().map(|c| c.roots_before.state_root());
            let after = b.chunks.last().map(|c| c.roots_after.state_root());
            if after != Some(root) && before == Some(root) && b.status == BatchStatus::Proving {
                warn!(
                    batch = b.number,
                    "dropping a batch sealed but not applied before a crash"
                );
                store.delete(&b)?;
            }
        }
        let last = store.last_known()?;
        if onchain > last {
            bail!(
                "the rollup contract is at batch {onchain} but this coordinator's records end at {last}: this state directory belongs to another deployment, or is behind: rebuild it (pulse state rebuild)"
            );
        }
        let root_here = pulse_l1::contract::word(state.roots()?.state_root());
        if last > 0 && last == onchain && root_here != status.state_root {
            bail!(
                "the state in {} is not the one the rollup contract holds at batch {last}: rebuild it from L1 and IPFS (pulse state rebuild --out DIR) and start from that directory",
                config.state_dir.display()
            );
        }
        if last == 0 && root_here != status.state_root {
            bail!(
                "the state in {} does not start at the contract's genesis root: deploy the contract with this state's root (pulse l1 deploy --state)",
                config.state_dir.display()
            );
        }

        let halt = CancellationToken::new();
        let (pipeline, _task) = SenderPipeline::spawn(sender, 64, halt.clone());
        let (committed_tx, committed_rx) = mpsc::channel(64);
        let (attested_tx, attested_rx) = mpsc::channel(64);
        let (sequencer, sequencer_thread) = sequencer::spawn(
            state.clone(),
            store.clone(),
            params.slots,
            deployment.clone(),
        )
        .context("starting the sequencer thread")?;
        let mut pending = BTreeMap::new();
        for b in store.unfinished()? {
            pending.insert(b.number, b);
        }
        let first_unfinished = pending.keys().next().copied().unwrap_or(last + 1);
        // With nothing in flight the state is the one L1 holds.
        let committed_view = if pending.is_empty() {
            Some(Arc::new(state.view()?))
        } else {
            None
        };
        let manifest = &verifier.manifest;
        let metrics = Metrics::new(config.batch_deadline, config.job_timeout)
            .context("registering the metrics")?;
        Ok(Self {
            circuit_id: manifest.circuit_id.0.to_hex(),
            pk_hash: manifest.pk_hash.to_hex(),
            vk_hash: manifest.vk_hash.to_hex(),
            config,
            js,
            store,
            state,
            verifier: Arc::new(verifier),
            sequencer,
            sequencer_thread: Some(sequencer_thread),
            journal,
            fatal: None,
            lease_release,
            lease_lost,
            _lease_abandon: abandon_guard,
            _halt_guard: halt.clone().drop_guard(),
            halt,
            run_id: crate::random_id(),
            ipfs,
            pipeline,
            committed_tx,
            committed_rx,
            open: None,
            next_number: last + 1,
            pending,
            published_at: HashMap::new(),
            next_to_commit: first_unfinished.max(onchain + 1).min(last + 1),
            held: HashMap::new(),
            invalid_by_worker: BTreeMap::new(),
            summary: Summary::default(),
            snapshot: Arc::new(RwLock::new(Snapshot::default())),
            committed_view: Arc::new(RwLock::new(committed_view)),
            sealed_views: BTreeMap::new(),
            metrics: Arc::new(metrics),
            deployment,
            key: Arc::new(key),
            splits: HashMap::new(),
            split_blocked: HashMap::new(),
            shard_consumers: HashSet::new(),
            split_ticked: Instant::now(),
            dac,
            attesting: HashSet::new(),
            attested: HashMap::new(),
            attested_tx,
            attested_rx,
        })
    }

    /// Runs until `shutdown` is cancelled.
    ///
    /// # Errors
    /// NATS consumers that cannot be opened, or the HTTP port already taken.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<Summary> {
        let listener = tokio::net::TcpListener::bind(self.config.http_addr)
            .await
            .with_context(|| format!("binding the HTTP API to {}", self.config.http_addr))?;
        let api_state = ApiState {
            snapshot: self.snapshot.clone(),
            store: self.store.clone(),
            state: self.state.clone(),
            committed: self.committed_view.clone(),
            metrics: self.metrics.clone(),
            auth: Arc::new(api::Authenticator::new(self.deployment.id)),
        };
        // The background tasks stop at a graceful stop and when the coordinator is dropped.
        let background = self.halt.child_token();
        tokio::spawn({
            let (shutdown, background) = (shutdown.clone(), background.clone());
            async move {
                tokio::select! {
                    () = shutdown.cancelled() => background.cancel(),
                    () = background.cancelled() => {}
                }
            }
        });
        tokio::spawn(metrics::watch(
            self.js.clone(),
            self.metrics.clone(),
            background.clone(),
        ));
        let api_shutdown = background;
        let api_task = tokio::spawn(async move {
            let app = api::router(api_state);
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(async move { api_shutdown.cancelled().await })
                .await
            {
                error!(error = %e, "HTTP API stopped");
            }
        });

        let tx_consumer: jetstream::consumer::PullConsumer = self
            .js
            .get_stream(TX_STREAM)
            .await?
            .get_consumer(TX_CONSUMER)
            .await
            .map_err(|e| anyhow::anyhow!("opening the transaction consumer: {e}"))?;
        let result_consumer: jetstream::consumer::PullConsumer = self
            .js
            .get_stream(RESULT_STREAM)
            .await?
            .get_consumer(RESULT_CONSUMER)
            .await
            .map_err(|e| anyhow::anyhow!("opening the result consumer: {e}"))?;
        let mut txs = tx_consumer
            .messages()
            .await
            .context("pulling transactions")?;
        let mut results = result_consumer
            .messages()
            .await
            .context("pulling results")?;
        let mut tick = tokio::time::interval(Duration::from_millis(200));

        // Batches left unfinished by a previous run.
        let unfinished: Vec<u64> = self.pending.keys().copied().collect();
        for n in unfinished {
            if let Some(b) = self.pending.get(&n) {
                info!(batch = n, status = b.status.as_str(), "resuming a batch");
            }
            self.publish_missing_jobs(n).await;
        }
        // Batches promised by receipts but not sealed here (a crash, or a standby taking
        // over): re-created from the journal before any new transaction is taken.
        if let Err(e) = self.replay_journal().await {
            // What was re-created so far rolls back.
            self.open = None;
            self.stop(api_task).await;
            return Err(e);
        }
        self.try_commit_next().await;
        self.refresh_snapshot().await;

        loop {
            if let Some(why) = self.fatal.take() {
                error!("{why}");
                // No seal: the open batch rolls back; its journaled part is re-created at
                // the next start.
                self.open = None;
                self.stop(api_task).await;
                bail!(why);
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.lease_lost.cancelled() => {
                    self.fatal = Some("the coordinator lease is lost (another coordinator is active, or NATS was unreachable for its time to live): this coordinator stops".to_owned());
                }
                Some(m) = txs.next() => match m {
                    Ok(m) => self.on_tx(m).await,
                    Err(e) => warn!(error = %e, "transaction stream error"),
                },
                Some(m) = results.next() => match m {
                    Ok(m) => self.on_result(m).await,
                    Err(e) => warn!(error = %e, "result stream error"),
                },
                Some((n, r)) = self.committed_rx.recv() => self.on_committed(n, r).await,
                Some((n, atts)) = self.attested_rx.recv() => {
                    self.attesting.remove(&n);
                    self.attested.insert(n, atts);
                    self.try_commit_next().await;
                }
                _ = tick.tick() => self.on_tick().await,
            }
        }
        info!("coordinator stopping");
        self.stop(api_task).await;
        self.lease_release.cancel();
        Ok(self.summary.clone())
    }

    /// Re-creates, from the journal, the batches whose transactions were promised (receipts
    /// sent) but that this state does not hold: the open batch a crash rolled back, or the
    /// sealed-but-uncommitted batches of an active coordinator this one took over from.
    /// Each is applied in the journaled order at its journaled time, so it seals to the same
    /// roots; batches this store already holds only teach it their transactions, so that
    /// redeliveries are recognised.
    async fn replay_journal(&mut self) -> Result<()> {
        let batches = journal::read(&self.js)
            .await
            .context("reading the sequencing journal")?;
        let ours = self.deployment.to_string();
        let held = self.next_number - 1;
        for (&n, b) in &batches {
            if b.deployment != ours {
                warn!(
                    batch = n,
                    "the journal holds a batch of another deployment; ignored"
                );
                continue;
            }
            let hashes: Vec<String> = b.txs.iter().map(|(h, _)| h.clone()).collect();
            if n <= held {
                self.store
                    .remember(n, &hashes)
                    .context("indexing the journal's transactions")?;
                continue;
            }
            if n != self.next_number {
                bail!(
                    "the sequencing journal continues at batch {n} but this state holds batches up to {held}: the batches between are lost to it; rebuild from L1 (pulse state rebuild) or ask the operator"
                );
            }
            info!(
                batch = n,
                txs = b.txs.len(),
                sealed = b.sealed,
                "re-creating a promised batch from the journal"
            );
            for (hash, json) in &b.txs {
                let tx = SignedTransaction::from_json(json).map_err(|e| {
                    anyhow::anyhow!(
                        "the journal's transaction {hash} of batch {n} does not parse: {e}"
                    )
                })?;
                let (reply, rx) = oneshot::channel();
                self.sequencer
                    .send(Command::Apply {
                        tx: Box::new(tx),
                        time: b.time,
                        reply,
                    })
                    .await
                    .map_err(|_| anyhow::anyhow!("the sequencer has stopped"))?;
                match rx.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(Refusal::Rejected(e))) => bail!(
                        "the journal's batch {n} does not apply to this state: transaction {hash} is refused ({e}); the state is not the one the journal was written on — rebuild it from L1"
                    ),
                    Ok(Err(Refusal::Storage(e))) => bail!("re-creating batch {n}: {e}"),
                    Err(_) => bail!("the sequencer has stopped"),
                }
            }
            self.open = Some(OpenBatch {
                number: n,
                first_received: Instant::now(),
                first_received_ms: now_ms(),
                hashes: hashes.into_iter().collect(),
            });
            self.summary.replayed += b.txs.len() as u64;
            if b.sealed {
                self.seal().await;
                if let Some(why) = self.fatal.take() {
                    bail!(why);
                }
            }
        }
        Ok(())
    }

    /// A graceful stop keeps what the receipts promised and releases the state: the open
    /// batch is sealed (its receipts named its number; a crash instead rolls it back and its
    /// transactions are sequenced again, with new receipts), the HTTP API is given a moment
    /// to finish, and the sequencer thread is joined, so that the state file is closed when
    /// `run` returns and a successor can open it at once.
    async fn stop(&mut self, mut api_task: JoinHandle<()>) {
        if self.open.is_some() {
            info!("sealing the open batch before stopping");
            self.seal().await;
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut api_task)
            .await
            .is_err()
        {
            warn!("the HTTP API did not finish within 5 s of the stop; closing it");
            api_task.abort();
            let _ = api_task.await;
        }
        if let Ok(mut g) = self.committed_view.write() {
            *g = None;
        }
        self.sealed_views.clear();
        // Closing the channel ends the sequencer thread.
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.sequencer, closed));
        if let Some(thread) = self.sequencer_thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                error!("the sequencer thread ended abnormally");
            }
        }
    }

    /// Publishes a receipt and waits until JetStream stores it, trying again for a while
    /// when it is not (a NATS node lost, the receipts stream electing a new leader): a
    /// client that missed it cannot get it by resubmitting, since the transaction stream
    /// drops a repeat of the same hash.
    async fn receipt(&self, id: &str, tx_hash: Option<String>, status: ReceiptStatus) {
        let r = Receipt { tx_hash, status };
        let subject = receipt_subject(id);
        let body = encode(&r);
        let mut pause = Duration::from_millis(250);
        for attempt in 1..=RECEIPT_ATTEMPTS {
            let stored = match self.js.publish(subject.clone(), body.clone().into()).await {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match stored {
                Ok(()) => return,
                Err(e) if attempt == RECEIPT_ATTEMPTS => {
                    error!(error = %e, attempts = attempt, "receipt not stored; giving up");
                }
                Err(e) => {
                    warn!(error = %e, retry_in = ?pause, "receipt not stored; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(4));
                }
            }
        }
    }

    async fn reject(
        &mut self,
        msg: Message,
        id: Option<&str>,
        hash: Option<String>,
        reason: &str,
        message: String,
    ) {
        self.summary.rejected += 1;
        self.metrics.tx_rejected(reason);
        info!(reason, "transaction rejected");
        if let Some(id) = id {
            self.receipt(
                id,
                hash,
                ReceiptStatus::Rejected {
                    reason: reason.to_owned(),
                    message,
                },
            )
            .await;
        }
        if let Err(e) = msg.ack().await {
            warn!(error = %e, "ack of a rejected transaction failed");
        }
    }

    async fn on_tx(&mut self, msg: Message) {
        self.metrics
            .tx_received(msg.info().map_or(1, |i| i.delivered));
        let id = receipt_id(&msg);
        if msg.payload.len() > MAX_TX_JSON_BYTES {
            let size = msg.payload.len();
            self.reject(
                msg,
                id.as_deref(),
                None,
                "too_large",
                format!(
                    "the message is {size} bytes; a transaction is at most {MAX_TX_JSON_BYTES}"
                ),
            )
            .await;
            return;
        }
        let text = String::from_utf8_lossy(&msg.payload).into_owned();
        let stx = match SignedTransaction::from_json(&text) {
            Ok(t) => t,
            Err(e) => {
                let reason = e.reason();
                self.reject(msg, id.as_deref(), None, reason, e.to_string())
                    .await;
                return;
            }
        };
        let hash = match stx.hash(self.deployment.id) {
            Ok(h) => h.to_string(),
            Err(e) => {
                let reason = e.reason();
                self.reject(msg, id.as_deref(), None, reason, e.to_string())
                    .await;
                return;
            }
        };
        let id = id.unwrap_or_else(|| hash.clone());
        if id != hash {
            // The receipt goes to the client's id with no hash of ours, which it would not
            // recognise.
            let (state, deployment) = (self.state.clone(), self.deployment.clone());
            let (reason, message) = tokio::task::spawn_blocking(move || {
                sequencer::foreign_id_refusal(&state, &stx, &deployment)
            })
            .await
            .unwrap_or_else(|e| ("id_mismatch", format!("checking the signature failed: {e}")));
            self.reject(msg, Some(&id), None, reason, message).await;
            return;
        }

        // A redelivery of a transaction already sequenced: hold it (or ack it if final).
        if self.open.as_ref().is_some_and(|o| o.hashes.contains(&hash)) {
            if let Some(o) = &self.open {
                self.held.entry(o.number).or_default().push(msg);
            }
            return;
        }
        match self.store.batch_of(&hash) {
            Ok(Some(b)) => {
                if self.pending.contains_key(&b) {
                    self.held.entry(b).or_default().push(msg);
                } else {
                    let _ = msg.ack().await;
                }
                return;
            }
            Ok(None) => {}
            Err(e) => {
                error!(error = %e, "store read failed; transaction left for redelivery");
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
                return;
            }
        }

        let (reply, rx) = oneshot::channel();
        let json = stx.to_json();
        if self
            .sequencer
            .send(Command::Apply {
                tx: Box::new(stx),
                time: now_ms() / 1000,
                reply,
            })
            .await
            .is_err()
        {
            error!("the sequencer has stopped");
            return;
        }
        match rx.await {
            Ok(Ok((applied, time))) => {
                // The promise is made durable before it is made.
                let opens = self.open.is_none();
                let number = self.open.as_ref().map_or(self.next_number, |o| o.number);
                let mut written = Ok(());
                if opens {
                    written = self
                        .journal
                        .write(&Entry::Open {
                            batch: number,
                            time,
                            deployment: self.deployment.to_string(),
                        })
                        .await;
                }
                if written.is_ok() {
                    written = self
                        .journal
                        .write(&Entry::Tx {
                            batch: number,
                            hash: hash.clone(),
                            tx: json,
                        })
                        .await;
                }
                if let Err(e) = written {
                    // Left unacknowledged: it comes back after the restart.
                    self.fatal = Some(format!(
                        "transaction {hash} was applied but could not be journaled, so no receipt was sent and this coordinator stops: {e}"
                    ));
                    return;
                }
                let open = self.open.get_or_insert_with(|| OpenBatch {
                    number,
                    first_received: Instant::now(),
                    first_received_ms: now_ms(),
                    hashes: HashSet::new(),
                });
                open.hashes.insert(hash.clone());
                let count = open.hashes.len();
                self.metrics.tx_accepted(open.first_received_ms, count);
                self.held.entry(number).or_default().push(msg);
                self.summary.accepted += 1;
                self.receipt(
                    &id,
                    Some(hash),
                    ReceiptStatus::Accepted {
                        batch: number,
                        new_account: applied.new_account,
                        new_record: applied.new_record,
                        new_grant: applied.new_grant,
                    },
                )
                .await;
                if count >= self.config.batch_max_txs {
                    self.seal().await;
                }
            }
            Ok(Err(Refusal::Rejected(e))) => {
                let reason = e.reason();
                self.reject(msg, Some(&id), Some(hash), reason, e.to_string())
                    .await;
            }
            Ok(Err(Refusal::Storage(e))) => {
                error!(error = %e, "state store failure; transaction left for redelivery");
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
            }
            Err(_) => {
                error!("the sequencer has stopped; transaction left for redelivery");
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
            }
        }
    }

    async fn seal(&mut self) {
        let Some(open) = self.open.take() else { return };
        let started_ms = now_ms();
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Seal {
            number: open.number,
            first_received_ms: open.first_received_ms,
            reply,
        };
        if self.sequencer.send(cmd).await.is_err() {
            error!("the sequencer has stopped");
            return;
        }
        match rx.await {
            Ok(Ok(Some(record))) => {
                info!(
                    batch = record.number,
                    txs = record.tx_hashes.len(),
                    chunks = record.chunks.len(),
                    "batch sealed"
                );
                self.next_number = record.number + 1;
                self.metrics.batch_sealed(&record, started_ms);
                let n = record.number;
                // Nothing else commits to the state until the next seal: this view is
                // the state after batch n.
                match self.state.view() {
                    Ok(v) => {
                        self.sealed_views.insert(n, Arc::new(v));
                    }
                    Err(e) => {
                        warn!(batch = n, error = %e, "cannot keep a view of the sealed state")
                    }
                }
                self.pending.insert(n, record);
                if let Err(e) = self.journal.write(&Entry::Seal { batch: n }).await {
                    // The next batch's opening seals it in the journal too.
                    warn!(batch = n, error = %e, "the seal could not be journaled");
                }
                self.publish_missing_jobs(n).await;
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                self.fatal = Some(format!(
                    "sealing batch {} failed ({e}); this coordinator stops and re-creates the batch from the journal at its next start",
                    open.number
                ));
            }
            Err(_) => error!("the sequencer has stopped"),
        }
        self.refresh_snapshot().await;
    }

    /// Publishes a job for every chunk of batch `n` that has no proof yet, under a new
    /// generation (so that JetStream's deduplication does not swallow a re-publication).
    /// The message id also names this run: a coordinator that took over (or restarted
    /// without its store) re-creates a batch at generation 1 again, and without it its jobs
    /// would be dropped as duplicates of its predecessor's for the stream's window.
    async fn publish_missing_jobs(&mut self, n: u64) {
        let Some(b) = self.pending.get_mut(&n) else {
            return;
        };
        if b.status != BatchStatus::Proving {
            return;
        }
        b.generation += 1;
        if let Err(e) = self.store.put(b) {
            error!(batch = n, error = %e, "cannot record the job generation");
        }
        let generation = b.generation;
        let missing: Vec<usize> = (0..b.chunks.len())
            .filter(|&i| b.proofs[i].is_none())
            .collect();
        for i in missing {
            // A split in progress goes on until its deadline: its shards have their own
            // retries, and a new plan would throw its work away.
            if self.split_in_progress(n, i) {
                continue;
            }
            self.publish_chunk(n, i, generation).await;
        }
        self.published_at.insert(n, Instant::now());
    }

    /// Publishes the job of chunk `i` of batch `n` under `generation`: whole, or (as the
    /// split policy decides) the witness job of a split proof; nothing while no live
    /// worker can take it (said once; the tick asks again).
    async fn publish_chunk(&mut self, n: u64, i: usize, generation: u32) {
        let split = match self.plan_chunk(n, i, generation) {
            split_flow::ChunkPlan::Whole => Vec::new(),
            split_flow::ChunkPlan::Split(spans) => spans,
            split_flow::ChunkPlan::Blocked => return,
        };
        self.publish_job(n, i, generation, split).await;
    }

    /// Publishes chunk `i` of batch `n`'s job with the split plan `split` (empty: whole).
    async fn publish_job(
        &mut self,
        n: u64,
        i: usize,
        generation: u32,
        split: Vec<pulse_protocol::ShardSpan>,
    ) {
        let Some(w) = self.pending.get(&n).and_then(|b| b.chunks.get(i)) else {
            return;
        };
        let params = self.verifier.manifest.params;
        let job = ProvingJob {
            job_id: job_id(n, i, generation),
            batch: n,
            chunk: i as u32,
            attempt: generation,
            circuit_id: self.circuit_id.clone(),
            pk_hash: self.pk_hash.clone(),
            vk_hash: self.vk_hash.clone(),
            slots: params.slots as u32,
            depth: params.depth as u32,
            witness: w.clone(),
            split,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}.{:016x}", job.job_id, self.run_id).as_str(),
        );
        let published = self
            .js
            .publish_with_headers(job_subject(&self.circuit_id), headers, encode(&job).into())
            .await;
        match published {
            Ok(ack) => match ack.await {
                Ok(_) => self.metrics.jobs_published(1),
                Err(e) => {
                    warn!(batch = n, chunk = i, error = %e, "job not stored; it will be published again")
                }
            },
            Err(e) => {
                warn!(batch = n, chunk = i, error = %e, "job not published; it will be published again")
            }
        }
    }

    async fn on_result(&mut self, msg: Message) {
        self.metrics
            .result_received(msg.info().map_or(1, |i| i.delivered));
        let result = match decode::<JobResult>(&msg.payload) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "unreadable job result dropped");
                let _ = msg.ack_with(AckKind::Term).await;
                return;
            }
        };
        if let Some(id) = parse_shard_job_id(&result.job_id) {
            let _ = msg.ack().await;
            self.on_shard_result(id, result).await;
            self.refresh_snapshot().await;
            return;
        }
        let parsed = parse_job_id_generation(&result.job_id);
        let Some((n, chunk, generation)) = parsed else {
            warn!(job = %result.job_id, "result for an unknown job id dropped");
            let _ = msg.ack().await;
            return;
        };
        if let JobOutcome::Witnessed { scalars, .. } = result.outcome {
            let _ = msg.ack().await;
            self.on_witnessed(n, chunk, generation, &result.worker_id, scalars)
                .await;
            self.refresh_snapshot().await;
            return;
        }
        if let JobOutcome::Shard { .. } = result.outcome {
            warn!(job = %result.job_id, worker = %result.worker_id, "shard sums for a proving job dropped");
            let _ = msg.ack().await;
            return;
        }
        let Some(b) = self.pending.get(&n) else {
            let _ = msg.ack().await;
            return;
        };
        if chunk >= b.chunks.len() || b.proofs[chunk].is_some() {
            let _ = msg.ack().await;
            return;
        }
        let worker = result.worker_id.clone();
        match result.outcome {
            // Answered above.
            JobOutcome::Witnessed { .. } | JobOutcome::Shard { .. } => {
                let _ = msg.ack().await;
            }
            JobOutcome::Failed { reason } => {
                warn!(batch = n, chunk, worker = %worker, reason = %reason, "a worker could not prove a chunk");
                self.metrics.job_failed();
                let _ = msg.ack().await;
                // A whole job refused (a worker short of base memory, say) while the live
                // workers call for a split: planned again now, not at the job timeout.
                self.replan_if_split(n, chunk).await;
            }
            JobOutcome::Proved {
                proof,
                witness_seconds,
                prove_seconds,
                backend,
            } => {
                self.metrics
                    .proof_reported(&backend, witness_seconds, prove_seconds);
                let check_started = Instant::now();
                let expected = b.chunks[chunk].public_inputs();
                let verifier = self.verifier.clone();
                let to_check = proof.clone();
                let checked = tokio::task::spawn_blocking(move || -> Result<(), String> {
                    let artifact =
                        ProofArtifact::from_json(&to_check).map_err(|e| e.to_string())?;
                    if artifact.public_inputs != expected {
                        return Err(
                            "the proof is for other public inputs than the chunk's".to_owned()
                        );
                    }
                    verifier.verify(&artifact).map_err(|e| e.to_string())?;
                    Ok(())
                })
                .await
                .unwrap_or_else(|e| Err(format!("proof check panicked: {e}")));
                self.metrics.proof_checked(
                    n,
                    check_started.elapsed().as_secs_f64(),
                    checked.is_ok(),
                    &worker,
                );
                match checked {
                    Ok(()) => {
                        info!(batch = n, chunk, worker = %worker, backend = %backend, prove_seconds, "proof accepted");
                        if !self.record_proof(n, chunk, proof, worker) {
                            let _ = msg.ack_with(AckKind::Nak(None)).await;
                            return;
                        }
                        let _ = msg.ack().await;
                        self.forget_split(n, chunk);
                        self.try_commit_next().await;
                    }
                    Err(reason) => {
                        warn!(batch = n, chunk, worker = %worker, reason = %reason, "invalid proof refused; the chunk is proven again");
                        *self.invalid_by_worker.entry(worker).or_default() += 1;
                        self.summary.invalid_proofs += 1;
                        let _ = msg.ack().await;
                        self.publish_missing_jobs(n).await;
                    }
                }
            }
        }
        self.refresh_snapshot().await;
    }

    /// Records an accepted proof of chunk `chunk` of batch `n`, made by `prover`; whether
    /// the store took it (if not, the proof is asked for again).
    fn record_proof(&mut self, n: u64, chunk: usize, proof: String, prover: String) -> bool {
        let Some(b) = self.pending.get_mut(&n) else {
            return true;
        };
        b.proofs[chunk] = Some(proof);
        b.provers[chunk] = Some(prover);
        if b.proofs.iter().all(Option::is_some) {
            b.status = BatchStatus::Committing;
            b.proven_ms = Some(now_ms());
        }
        if let Err(e) = self.store.put(b) {
            error!(batch = n, error = %e, "cannot record a proof; it will be asked for again");
            b.proofs[chunk] = None;
            b.provers[chunk] = None;
            b.status = BatchStatus::Proving;
            b.proven_ms = None;
            return false;
        }
        true
    }

    /// Hands the next batch in order to the L1 sender once it is proven.
    async fn try_commit_next(&mut self) {
        loop {
            let n = self.next_to_commit;
            let Some(b) = self.pending.get_mut(&n) else {
                return;
            };
            if b.status != BatchStatus::Committing {
                return;
            }
            if b.data_cid.is_none() {
                let state = &self.state;
                let cid_of = |id| state.record(id).ok().flatten().map(|r| r.cid);
                let data = match serde_json::to_vec(&pubdata::of(b, cid_of)) {
                    Ok(d) => d,
                    Err(e) => {
                        error!(batch = n, error = %e, "cannot encode the public data");
                        return;
                    }
                };
                // With a committee only its members can read the data.
                let data = match &self.dac {
                    Some(side) => match pulse_dac::seal(&data, n, &side.committee) {
                        Ok(sealed) => sealed,
                        Err(e) => {
                            error!(batch = n, error = %e, "cannot seal the public data for the committee");
                            return;
                        }
                    },
                    None => data,
                };
                let add_started = Instant::now();
                let added = self.ipfs.add(data).await;
                self.metrics
                    .ipfs_added(add_started.elapsed().as_secs_f64(), added.is_ok());
                match added {
                    Ok(cid) => {
                        b.data_cid = Some(cid.to_string());
                        if let Err(e) = self.store.put(b) {
                            error!(batch = n, error = %e, "cannot record the data CID");
                        }
                    }
                    Err(e) => {
                        warn!(batch = n, error = %e, "adding the public data to IPFS failed; retrying");
                        return;
                    }
                }
            }
            let mut chunks = Vec::with_capacity(b.chunks.len());
            for p in b.proofs.iter().flatten() {
                match ProofArtifact::from_json(p)
                    .map_err(|e| e.to_string())
                    .and_then(|a| ChunkProof::new(&a.public_inputs, a.proof))
                {
                    Ok(c) => chunks.push(c),
                    Err(e) => {
                        error!(batch = n, error = %e, "a stored proof does not parse");
                        return;
                    }
                }
            }
            let data_cid = b.data_cid.clone().unwrap_or_default();
            let attestations = match &self.dac {
                None => Vec::new(),
                Some(side) => match self.attested.remove(&n) {
                    Some(a) => a,
                    None => {
                        if self.attesting.contains(&n) {
                            return;
                        }
                        let commitments: Vec<_> = chunks.iter().map(|c| c.commitment).collect();
                        if let Err(e) =
                            crate::dac::request(&self.js, side, n, &data_cid, &commitments).await
                        {
                            warn!(batch = n, error = %e, "asking the committee to attest failed; retrying");
                            return;
                        }
                        let digest = pulse_l1::attest::attestation_digest(
                            self.deployment.id,
                            n,
                            &data_cid,
                            &commitments,
                        );
                        info!(batch = n, cid = %data_cid, "asked the committee to attest the batch data");
                        self.attesting.insert(n);
                        tokio::spawn(crate::dac::collect(
                            self.js.clone(),
                            side.clone(),
                            n,
                            data_cid.clone(),
                            digest,
                            self.attested_tx.clone(),
                            self.halt.clone(),
                        ));
                        return;
                    }
                },
            };
            let commit = BatchCommit {
                number: n,
                chunks,
                data_cid,
                tx_count: b.tx_hashes.len() as u64,
                attestations: pulse_l1::attest::pack(&attestations),
            };
            match self.pipeline.submit(commit).await {
                Ok(rx) => {
                    self.metrics.l1_submitted(n);
                    let done = self.committed_tx.clone();
                    tokio::spawn(async move {
                        let r = rx
                            .await
                            .unwrap_or(Err(L1Error::BadAnswer("the L1 sender stopped".to_owned())));
                        let _ = done.send((n, r)).await;
                    });
                    self.next_to_commit = n + 1;
                }
                Err(e) => {
                    error!(batch = n, error = %e, "the L1 sender has stopped");
                    return;
                }
            }
        }
    }

    /// Batch `n` is final on L1: lookups now answer from the state after it.
    fn advance_committed_view(&mut self, n: u64) {
        let view = match self.sealed_views.remove(&n) {
            Some(v) => Some(v),
            // Sealed before a restart: its state is the latest one only when nothing was
            // sealed after it.
            None if self.pending.keys().all(|&p| p <= n) && self.sealed_views.is_empty() => {
                self.state.view().ok().map(Arc::new)
            }
            None => None,
        };
        self.sealed_views.retain(|&k, _| k > n);
        if let Some(v) = view {
            match self.committed_view.write() {
                Ok(mut g) => *g = Some(v),
                Err(p) => *p.into_inner() = Some(v),
            }
        }
    }

    async fn on_committed(&mut self, n: u64, r: Result<Committed, L1Error>) {
        let Some(mut b) = self.pending.remove(&n) else {
            return;
        };
        match r {
            Ok(c) => {
                b.status = BatchStatus::Committed;
                self.advance_committed_view(n);
                b.l1_tx = Some(c.tx_hash.to_string());
                b.l1_gas = Some(c.gas_used);
                b.committed_ms = Some(now_ms());
                if let Err(e) = self.store.put(&b) {
                    error!(batch = n, error = %e, "cannot record the commit (it is final on L1)");
                }
                self.summary.committed_batches += 1;
                self.metrics.batch_committed(&b);
                let latency = b
                    .committed_ms
                    .unwrap_or(0)
                    .saturating_sub(b.first_received_ms) as f64
                    / 1000.0;
                info!(batch = n, txs = b.tx_hashes.len(), l1_tx = %c.tx_hash, latency_s = latency, "batch committed on L1");
                for h in &b.tx_hashes {
                    self.receipt(
                        h,
                        Some(h.clone()),
                        ReceiptStatus::Committed {
                            batch: n,
                            l1_tx: c.tx_hash.to_string(),
                        },
                    )
                    .await;
                }
                let mut acked = true;
                for m in self.held.remove(&n).unwrap_or_default() {
                    if let Err(e) = m.ack().await {
                        acked = false;
                        warn!(error = %e, "ack of a committed transaction failed; it will be recognised on redelivery");
                    }
                }
                // Final and acknowledged: the journal need not remember it (otherwise it
                // ages out).
                if acked && let Err(e) = journal::forget_batch(&self.js, n).await {
                    warn!(batch = n, error = %e, "the journal keeps a committed batch");
                }
            }
            Err(e) => {
                error!(batch = n, error = %e, "L1 refused the batch: the state and L1 disagree; operator action needed");
                self.metrics.batch_refused(n);
                b.status = BatchStatus::Failed;
                b.failure = Some(e.to_string());
                let _ = self.store.put(&b);
            }
        }
        self.refresh_snapshot().await;
    }

    async fn on_tick(&mut self) {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.first_received.elapsed() >= self.config.batch_deadline)
        {
            self.seal().await;
        }
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(n, b)| {
                b.status == BatchStatus::Proving
                    && self
                        .published_at
                        .get(n)
                        .is_none_or(|t| t.elapsed() >= self.config.job_timeout)
            })
            .map(|(n, _)| *n)
            .collect();
        for n in late {
            warn!(
                batch = n,
                "jobs unanswered past the timeout; publishing them again"
            );
            let unanswered = self
                .pending
                .get(&n)
                .map_or(0, |b| b.proofs.iter().filter(|p| p.is_none()).count());
            self.metrics.jobs_timed_out(unanswered);
            self.publish_missing_jobs(n).await;
        }
        self.split_tick().await;
        self.try_commit_next().await;
    }

    async fn refresh_snapshot(&mut self) {
        let oldest = self
            .open
            .iter()
            .map(|o| o.first_received_ms)
            .chain(self.pending.values().map(|b| b.first_received_ms))
            .min();
        self.metrics.set_oldest_unfinished(oldest);
        let queue = match self.js.get_stream(TX_STREAM).await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        };
        let jobs = match self.js.get_stream(JOB_STREAM).await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        };
        let mut s = match self.snapshot.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        s.open_batch = self.open.as_ref().map(|o| (o.number, o.hashes.len()));
        s.queue_depth = queue;
        s.jobs_queued = jobs;
        s.accepted = self.summary.accepted;
        s.rejected = self.summary.rejected;
        s.committed_batches = self.summary.committed_batches;
        s.invalid_proofs = self.invalid_by_worker.clone();
        s.split_proofs = self.summary.split_proofs;
        s.shards = self.summary.shards;
        let mut blocked: Vec<(u64, usize, String)> = self
            .split_blocked
            .iter()
            .map(|(&(n, c), why)| (n, c, why.clone()))
            .collect();
        blocked.sort();
        s.blocked = blocked;
        s.contract = self.config.l1_contract.to_string();
    }
}
