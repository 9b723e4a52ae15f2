//! The coordinator on real nats-server, anvil and js-ipfs, with proving workers that pull
//! jobs from JetStream like the real ones (an honest one, one that returns a wrong proof, one
//! that takes a job and dies): transactions of every kind and invalid ones go in (one
//! signed for another deployment among them), receipts come back, batches are proven,
//! checked, published and committed on L1 exactly once, across a coordinator restart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use ark_bn254::{G1Affine, G2Affine};
use ark_ec::{AffineRepr, CurveGroup};
use ark_groth16::Proof;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::PullConsumer};
use cid::Cid;
use futures::StreamExt;
use pulse_circuits::Fr;
use pulse_circuits::artifacts::{self, CircuitParams, KeyArtifacts, ProofArtifact};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_circuits::deployment::Deployment;
use pulse_circuits::eddsa::PrivateKey;
use pulse_circuits::state::State;
use pulse_circuits::tx::{Permissions, Role, Scope, SignedTransaction, Transaction, TxBody};
use pulse_coordinator::rebuild::{self, Genesis, RebuildConfig, RebuildError};
use pulse_coordinator::{Coordinator, CoordinatorConfig, STATE_FILE};
use pulse_protocol::{
    JOB_CONSUMER, JOB_STREAM, JobOutcome, JobResult, ProvingJob, RECEIPT_STREAM, RESULT_SUBJECT,
    Receipt, ReceiptStatus, TX_STREAM, TX_SUBJECT, decode, encode, receipt_subject,
};
use pulse_prover::{CpuBackend, Prover};
use pulse_testkit::NatsEndpoint;
use pulse_testkit::{Anvil, DEV_ACCOUNTS, Ipfs, Nats};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SLOTS: usize = 2;
const DEPTH: usize = 5;
const CID: &str = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

struct Cluster {
    nats: Nats,
    anvil: Anvil,
    ipfs: Ipfs,
    dir: tempfile::TempDir,
    keys: Arc<KeyArtifacts>,
    contract: alloy::primitives::Address,
    registrar: PrivateKey,
}

fn keys() -> Arc<KeyArtifacts> {
    static K: std::sync::OnceLock<Arc<KeyArtifacts>> = std::sync::OnceLock::new();
    K.get_or_init(|| {
        let params = CircuitParams::new(SLOTS, DEPTH);
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        Arc::new(artifacts::setup(ChunkCircuit::blank(params), params, &mut rng).expect("setup"))
    })
    .clone()
}

impl Cluster {
    async fn start() -> Self {
        Self::start_with_nats(1).await
    }

    /// With `nodes` NATS servers (3: a JetStream cluster).
    async fn start_with_nats(nodes: usize) -> Self {
        let nats = Nats::start_with(pulse_testkit::NatsOptions {
            nodes,
            ..Default::default()
        });
        let anvil = Anvil::start();
        let ipfs = Ipfs::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = keys();
        keys.write(&dir.path().join("keys")).expect("write keys");
        let registrar = PrivateKey::random(&mut ChaCha20Rng::seed_from_u64(77));
        let state_dir = dir.path().join("state");
        std::fs::create_dir_all(&state_dir).expect("state dir");
        let genesis = {
            let state = State::open(&state_dir.join(STATE_FILE), DEPTH).expect("state");
            state
                .init_genesis(&[registrar.public_key()])
                .expect("genesis")
                .state_root()
        };
        let owner: PrivateKeySigner = DEV_ACCOUNTS[0].private_key.parse().expect("key");
        let d = pulse_l1::deploy(
            &anvil.url(),
            owner.clone(),
            &pulse_l1::DeployParams {
                genesis_root: genesis,
                vk: keys.pk.vk.clone(),
                owner: owner.address(),
                operators: vec![operator().address()],
                committee: Vec::new(),
                threshold: 0,
            },
        )
        .await
        .expect("deploy");
        assert_eq!(
            d.for_signing(),
            here(),
            "the first contract on a fresh anvil"
        );
        Cluster {
            nats,
            anvil,
            ipfs,
            dir,
            keys,
            contract: d.address,
            registrar,
        }
    }

    fn config(&self, max_txs: usize) -> CoordinatorConfig {
        CoordinatorConfig {
            nats: self.nats.coordinator(),
            state_dir: self.dir.path().join("state"),
            keys_dir: self.dir.path().join("keys"),
            ipfs_url: self.ipfs.api_url(),
            l1_rpc: self.anvil.url(),
            l1_contract: self.contract,
            l1_operator: operator(),
            l1_confirmations: 1,
            batch_max_txs: max_txs,
            batch_deadline: Duration::from_millis(1500),
            job_lease: Duration::from_secs(2),
            job_timeout: Duration::from_secs(60),
            http_addr: SocketAddr::from(([127, 0, 0, 1], pulse_testkit::free_port())),
            genesis: None,
            name: "coordinator".to_owned(),
            lease_ttl: pulse_coordinator::LEASE_TTL,
            nats_replicas: 1,
            split: pulse_coordinator::split::SplitConfig::default(),
            committee: None,
            committee_key: None,
        }
    }

    fn genesis(&self) -> Genesis {
        Genesis {
            version: 1,
            depth: DEPTH,
            registrars: vec![self.registrar.public_key()],
        }
    }

    /// Unpins `cid` on the IPFS node and collects garbage: the node no longer has it.
    fn ipfs_forget(&self, cid: &str) {
        let port = self.ipfs.port();
        for path in [
            format!("/api/v0/pin/rm?arg={cid}"),
            "/api/v0/repo/gc".to_owned(),
        ] {
            let a = pulse_testkit::http_request(port, "POST", &path, None, Duration::from_secs(30))
                .expect("IPFS answers");
            assert_eq!(a.status, 200, "{path}: {}", a.text());
        }
    }

    async fn js(&self) -> (async_nats::Client, jetstream::Context) {
        // As client software: submits transactions, reads receipts.
        let c = self
            .nats
            .client()
            .connect("test client")
            .await
            .expect("connect");
        (c.clone(), jetstream::new(c))
    }
}

fn operator() -> PrivateKeySigner {
    DEV_ACCOUNTS[1].private_key.parse().expect("key")
}

/// The deployment every test cluster runs: the owner's first contract on a fresh anvil.
fn here() -> Deployment {
    let owner: PrivateKeySigner = DEV_ACCOUNTS[0].private_key.parse().expect("key");
    pulse_l1::deployment(pulse_testkit::ANVIL_CHAIN_ID, owner.address().create(0))
}

async fn start_coordinator(
    config: CoordinatorConfig,
) -> (CancellationToken, JoinHandle<pulse_coordinator::Summary>) {
    let c = Coordinator::start(config).await.expect("coordinator start");
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let task = tokio::spawn(async move { c.run(token).await.expect("coordinator run") });
    (cancel, task)
}

/// A real `pulse-worker`, with its own key cache (it fetches the key from NATS).
fn spawn_real_worker(
    nats: NatsEndpoint,
    id: &'static str,
    stop: CancellationToken,
) -> (JoinHandle<u64>, tempfile::TempDir) {
    let cache = tempfile::tempdir().expect("cache dir");
    let config = pulse_worker::WorkerConfig::new(nats, id, cache.path());
    let task = tokio::spawn(async move {
        pulse_worker::run(config, stop)
            .await
            .expect("worker")
            .jobs_done
    });
    (task, cache)
}

/// [`spawn_real_worker`] giving at most `base_memory` bytes to a key's bases.
fn spawn_real_worker_limited(
    nats: NatsEndpoint,
    id: &'static str,
    base_memory: u64,
    stop: CancellationToken,
) -> (JoinHandle<u64>, tempfile::TempDir) {
    let cache = tempfile::tempdir().expect("cache dir");
    let mut config = pulse_worker::WorkerConfig::new(nats, id, cache.path());
    config.base_memory = Some(base_memory);
    let task = tokio::spawn(async move {
        pulse_worker::run(config, stop)
            .await
            .expect("worker")
            .jobs_done
    });
    (task, cache)
}

/// Bytes of the test key's bases, as a worker's base memory counts them.
fn key_base_bytes() -> u64 {
    let pk = &keys().pk;
    pulse_prover::split::QueryLens {
        assignment: pk.a_query.len(),
        l: pk.l_query.len(),
        h: pk.h_query.len(),
    }
    .base_bytes()
}

/// Workers that misbehave, pulling jobs as `pulse-worker` does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Returns a tampered proof for its first job, then behaves.
    LiesOnce,
    /// Takes one job and vanishes without answering (a crash).
    DiesOnFirstJob,
}

/// Pull a job, prove it (or not), publish the result, ack the job.
fn spawn_worker(
    nats: NatsEndpoint,
    id: &'static str,
    keys: Arc<KeyArtifacts>,
    behaviour: Behaviour,
    stop: CancellationToken,
) -> JoinHandle<u64> {
    tokio::spawn(async move {
        let client = nats.connect(id).await.expect("connect");
        let js = jetstream::new(client);
        let consumer: PullConsumer = loop {
            match js.get_stream(JOB_STREAM).await {
                Ok(s) => match s.get_consumer(JOB_CONSUMER).await {
                    Ok(c) => break c,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                },
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let prover = Arc::new(Prover::new(CpuBackend::new(), keys.pk.clone()).expect("prover"));
        let mut messages = consumer.messages().await.expect("messages");
        let mut done = 0u64;
        let mut lied = false;
        loop {
            let msg = tokio::select! {
                () = stop.cancelled() => return done,
                m = messages.next() => match m { Some(Ok(m)) => m, _ => continue },
            };
            if behaviour == Behaviour::DiesOnFirstJob {
                // Took the job, never answers: its lease runs out.
                drop(msg);
                return done;
            }
            let job: ProvingJob = decode(&msg.payload).expect("a job");
            let params = CircuitParams::new(job.slots as usize, job.depth as usize);
            let witness = job.witness.clone();
            let inputs = witness.public_inputs();
            let p = prover.clone();
            let proof = if behaviour == Behaviour::LiesOnce && !lied {
                // A lie costs nothing to make: it is answered at once, well within the job's
                // lease even on a loaded machine (a slow liar's job goes to another worker).
                lied = true;
                Proof {
                    a: G1Affine::generator(),
                    b: G2Affine::generator(),
                    c: (G1Affine::generator() + G1Affine::generator()).into_affine(),
                }
            } else {
                tokio::task::spawn_blocking(move || {
                    p.prove(
                        ChunkCircuit { params, witness },
                        &mut ChaCha20Rng::seed_from_u64(1),
                    )
                    .expect("prove")
                })
                .await
                .expect("join")
            };
            let artifact = ProofArtifact {
                circuit_id: keys.manifest.circuit_id,
                vk_hash: keys.manifest.vk_hash,
                public_inputs: inputs,
                proof,
            };
            let result = JobResult {
                job_id: job.job_id,
                worker_id: id.to_owned(),
                outcome: JobOutcome::Proved {
                    proof: artifact.to_json(),
                    witness_seconds: 0.0,
                    prove_seconds: 0.0,
                    backend: "cpu".to_owned(),
                },
            };
            js.publish(RESULT_SUBJECT, encode(&result).into())
                .await
                .expect("publish")
                .await
                .expect("stored");
            msg.double_ack().await.expect("ack");
            done += 1;
        }
    })
}

/// Publishes `payload` with message id `id` and returns the first receipt on `id`'s subject.
async fn submit_raw(
    client: &async_nats::Client,
    js: &jetstream::Context,
    id: &str,
    payload: Vec<u8>,
) -> Receipt {
    let mut sub = client
        .subscribe(receipt_subject(id))
        .await
        .expect("subscribe");
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", id);
    js.publish_with_headers(TX_SUBJECT, h, payload.into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let msg = tokio::time::timeout(Duration::from_secs(30), sub.next())
        .await
        .expect("a receipt in time")
        .expect("receipt");
    decode(&msg.payload).expect("receipt decodes")
}

async fn submit(
    client: &async_nats::Client,
    js: &jetstream::Context,
    stx: &SignedTransaction,
) -> Receipt {
    submit_for(&here(), client, js, stx).await
}

/// Submits as a client of `deployment` does: with the transaction's hash there as its id.
async fn submit_for(
    deployment: &Deployment,
    client: &async_nats::Client,
    js: &jetstream::Context,
    stx: &SignedTransaction,
) -> Receipt {
    let id = stx.hash(deployment.id).expect("hash").to_string();
    submit_raw(client, js, &id, stx.to_json().into_bytes()).await
}

fn sign_for(
    deployment: &Deployment,
    key: &PrivateKey,
    signer: u64,
    nonce: u64,
    body: TxBody,
) -> SignedTransaction {
    Transaction {
        signer,
        nonce,
        body,
    }
    .sign(key, deployment.id)
    .expect("sign")
}

fn sign(key: &PrivateKey, signer: u64, nonce: u64, body: TxBody) -> SignedTransaction {
    sign_for(&here(), key, signer, nonce, body)
}

/// A new patient's self-registration, with a fresh key.
fn new_patient(rng: &mut ChaCha20Rng) -> SignedTransaction {
    let k = PrivateKey::random(rng);
    sign(
        &k,
        0,
        0,
        TxBody::Register {
            public_key: k.public_key(),
            role: Role::Patient,
        },
    )
}

fn accepted(r: &Receipt) -> u64 {
    match &r.status {
        ReceiptStatus::Accepted { batch, .. } => *batch,
        other => panic!("expected acceptance, got {other:?}"),
    }
}

fn rejected(r: &Receipt) -> String {
    match &r.status {
        ReceiptStatus::Rejected { reason, .. } => reason.clone(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

async fn wait_for_l1_batch(c: &Cluster, n: u64) -> pulse_l1::RollupStatus {
    for _ in 0..600 {
        let st = pulse_l1::status(&c.anvil.url(), c.contract, 100)
            .await
            .expect("status");
        // The events too: a node can serve a block's storage before its logs.
        let logged = st.last_batches.last().map_or(0, |b| b.number);
        if st.batch_number >= n && logged >= n {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("L1 never reached batch {n}");
}

/// Active coordinator A and standby B against one cluster ([`start_pair`]).
struct Pair {
    a_task: JoinHandle<anyhow::Result<pulse_coordinator::Summary>>,
    b_task: JoinHandle<pulse_coordinator::Summary>,
    b_stop: CancellationToken,
    b_http: SocketAddr,
}

/// Starts A (active, sealing a batch `a_deadline` after its first transaction) and B
/// (standing by with an empty state directory, the genesis and its own NATS user, its
/// config adjusted by `tune_b`), both under a lease of `ttl`. Add the workers' NATS users
/// first: adding one reloads the server.
async fn start_pair(
    c: &mut Cluster,
    ttl: Duration,
    a_deadline: Duration,
    tune_b: impl FnOnce(&mut CoordinatorConfig),
) -> Pair {
    let b_nats = c
        .nats
        .endpoint(pulse_access::Role::Coordinator, "coordinator-b");
    let mut a_config = c.config(2);
    a_config.name = "coordinator-a".to_owned();
    a_config.lease_ttl = ttl;
    a_config.batch_deadline = a_deadline;
    let a = Coordinator::start(a_config).await.expect("A starts");
    let a_task = tokio::spawn(async move { a.run(CancellationToken::new()).await });

    let mut b_config = c.config(2);
    b_config.nats = b_nats;
    b_config.name = "coordinator-b".to_owned();
    b_config.lease_ttl = ttl;
    b_config.state_dir = c.dir.path().join("state-b");
    b_config.genesis = Some(c.genesis());
    tune_b(&mut b_config);
    let b_http = b_config.http_addr;
    let b_stop = CancellationToken::new();
    let b_token = b_stop.clone();
    let b_task = tokio::spawn(async move {
        let b = Coordinator::start_or_stand_by(b_config, &CancellationToken::new())
            .await
            .expect("B takes over");
        b.run(b_token).await.expect("B runs")
    });
    Pair {
        a_task,
        b_task,
        b_stop,
        b_http,
    }
}

/// L1 holds batches 1 to the last promised one, each once, each with exactly the
/// transactions whose receipts named it.
fn assert_committed_once(st: &pulse_l1::RollupStatus, promised: &BTreeMap<u64, u64>) {
    let last = promised.keys().last().copied().unwrap_or(0);
    let numbers: Vec<u64> = st.last_batches.iter().map(|b| b.number).collect();
    assert_eq!(numbers, (1..=last).collect::<Vec<_>>(), "each batch once");
    let committed: BTreeMap<u64, u64> = st
        .last_batches
        .iter()
        .map(|b| (b.number, b.tx_count))
        .collect();
    assert_eq!(
        &committed, promised,
        "every receipt's batch holds its transactions"
    );
}

fn state_root(dir: &Path) -> Fr {
    // The coordinator holds the state open; read it through a copy.
    let copy = dir.join("copy.redb");
    std::fs::copy(dir.join(STATE_FILE), &copy).expect("copy state");
    let s = State::open(&copy, DEPTH).expect("open copy");
    let r = s.roots().expect("roots").state_root();
    drop(s);
    let _ = std::fs::remove_file(&copy);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_of_every_kind_end_in_committed_l1_batches() {
    let mut c = Cluster::start().await;
    let config = c.config(4);
    let http = config.http_addr;
    let (cancel, task) = start_coordinator(config).await;
    let stop = CancellationToken::new();
    // Every worker user exists before any worker connects: adding one reloads the server,
    // and a reload can refuse a client that is authenticating at that moment.
    let liar_nats = c.nats.worker("liar");
    let honest_nats = c.nats.worker("honest");
    let liar = spawn_worker(
        liar_nats,
        "liar",
        c.keys.clone(),
        Behaviour::LiesOnce,
        stop.clone(),
    );
    let (honest, _cache) = spawn_real_worker(honest_nats, "honest", stop.clone());
    let (client, js) = c.js().await;

    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let p = PrivateKey::random(&mut rng);
    let d = PrivateKey::random(&mut rng);
    let mut batches = std::collections::BTreeSet::new();
    // Registrations: a patient by itself, a doctor by the registrar (account 1).
    let r = submit(
        &client,
        &js,
        &sign(
            &p,
            0,
            0,
            TxBody::Register {
                public_key: p.public_key(),
                role: Role::Patient,
            },
        ),
    )
    .await;
    batches.insert(accepted(&r));
    let pid = match r.status {
        ReceiptStatus::Accepted {
            new_account: Some(a),
            ..
        } => a,
        _ => panic!("no account"),
    };
    let r = submit(
        &client,
        &js,
        &sign(
            &c.registrar,
            1,
            0,
            TxBody::Register {
                public_key: d.public_key(),
                role: Role::Doctor,
            },
        ),
    )
    .await;
    batches.insert(accepted(&r));
    let did = match r.status {
        ReceiptStatus::Accepted {
            new_account: Some(a),
            ..
        } => a,
        _ => panic!("no account"),
    };
    let cid = Cid::from_str(CID).expect("cid");
    let add = sign(
        &p,
        pid,
        1,
        TxBody::AddRecord {
            patient: pid,
            cid,
            metadata_hash: Fr::from(3u64),
            grant: None,
        },
    );
    batches.insert(accepted(&submit(&client, &js, &add).await));
    let grant = sign(
        &p,
        pid,
        2,
        TxBody::Grant {
            grantee: did,
            scope: Scope::All,
            permissions: Permissions {
                read: true,
                write: true,
            },
            expires_at: u64::MAX >> 8,
        },
    );
    batches.insert(accepted(&submit(&client, &js, &grant).await));
    batches.insert(accepted(
        &submit(
            &client,
            &js,
            &sign(
                &d,
                did,
                0,
                TxBody::AccessLog {
                    record: 1,
                    grant: 1,
                    purpose: Fr::from(9u64),
                },
            ),
        )
        .await,
    ));
    batches.insert(accepted(
        &submit(&client, &js, &sign(&p, pid, 3, TxBody::Revoke { grant: 1 })).await,
    ));

    // Invalid ones get rejection receipts with a reason.
    // Signed with someone else's key.
    let forged = sign(
        &d,
        pid,
        4,
        TxBody::AddRecord {
            patient: pid,
            cid,
            metadata_hash: Fr::from(4u64),
            grant: None,
        },
    );
    assert_eq!(
        rejected(&submit(&client, &js, &forged).await),
        "bad_signature"
    );
    assert_eq!(
        rejected(&submit(&client, &js, &sign(&p, pid, 1, TxBody::Revoke { grant: 1 })).await),
        "stale_nonce"
    );
    let after_revoke = sign(
        &d,
        did,
        1,
        TxBody::AccessLog {
            record: 1,
            grant: 1,
            purpose: Fr::from(9u64),
        },
    );
    let reason = rejected(&submit(&client, &js, &after_revoke).await);
    assert!(reason.contains("grant"), "{reason}");
    assert_eq!(
        rejected(&submit_raw(&client, &js, "garbage-1", b"{not json".to_vec()).await),
        "malformed_json"
    );
    // Signed (and hashed, for its message id) for the same contract on another chain: the
    // receipt on the client's id names this deployment.
    let elsewhere = pulse_l1::deployment(1, c.contract);
    let stranger = PrivateKey::random(&mut rng);
    let foreign = sign_for(
        &elsewhere,
        &stranger,
        0,
        0,
        TxBody::Register {
            public_key: stranger.public_key(),
            role: Role::Patient,
        },
    );
    let r = submit_for(&elsewhere, &client, &js, &foreign).await;
    assert_eq!(r.tx_hash, None, "not a hash the client would recognise");
    match &r.status {
        ReceiptStatus::Rejected { reason, message } => {
            assert_eq!(reason, "bad_signature");
            for needle in [
                "not valid for this deployment".to_owned(),
                format!("chain {}", pulse_testkit::ANVIL_CHAIN_ID),
                here().contract_hex(),
            ] {
                assert!(message.contains(&needle), "`{message}` lacks `{needle}`");
            }
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        rejected(&submit_raw(&client, &js, "big-1", vec![b' '; 20_000]).await),
        "too_large"
    );

    let last = *batches.iter().max().expect("batches");
    let st = wait_for_l1_batch(&c, last).await;
    assert_eq!(st.batch_number, last);
    let total: u64 = st.last_batches.iter().map(|b| b.tx_count).sum();
    assert_eq!(
        total, 6,
        "every accepted transaction is in exactly one committed batch"
    );
    assert!(
        st.last_batches
            .iter()
            .all(|b| b.data_cid.starts_with("bafk"))
    );

    // The API: the status page's numbers, and a record with a proof against the L1 root.
    // Lookups answer from the state the coordinator knows to be final on L1, so wait until
    // it has seen the last commit confirmed (L1 can show it a moment earlier).
    let mut status: serde_json::Value = http_get(http, "/status").await;
    for _ in 0..200 {
        let all_committed = status["batches"]
            .as_array()
            .is_some_and(|b| b.iter().all(|b| b["status"] == "committed"));
        if all_committed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = http_get(http, "/status").await;
    }
    assert_eq!(status["invalid_proofs"]["liar"], 1, "{status}");
    assert_eq!(status["accepted"], 6);
    assert_eq!(status["rejected"], 6);
    let mut rec: serde_json::Value = signed_get(http, "/records/1", &p, pid).await.1;
    for _ in 0..100 {
        if rec["state_root"].as_str() == Some(st.state_root.to_string().as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        rec = signed_get(http, "/records/1", &p, pid).await.1;
    }
    assert_eq!(rec["cid"], CID);
    assert_eq!(
        rec["state_root"].as_str().map(str::to_owned),
        Some(st.state_root.to_string()),
        "lookups answer from the state L1 holds; status: {}",
        http_get(http, "/status").await
    );

    // --- Lookups for the parties only.
    // Unsigned: 401 saying how to sign, the same for an id that exists and one that does not.
    for path in [
        "/records/1",
        "/records/999",
        "/grants/1",
        "/accounts/2",
        "/accounts/2/access",
    ] {
        let (code, body) = raw_get(http, path, None).await;
        assert_eq!(code, 401, "{path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("not signed") && e.contains("Pulse-EdDSA")),
            "{path}: {body}"
        );
        assert!(
            !body.to_string().contains("999") && !body.to_string().contains("record 1"),
            "{path}: no hint of the id: {body}"
        );
    }
    // The patient: its records, grants and access history, proven against L1.
    let l1_root = pulse_circuits::field::fr_from_decimal(&st.state_root.to_string()).expect("root");
    let as_patient = pulse_client::CoordinatorApi::new(&format!("http://{http}"))
        .expect("api")
        .with_depth(DEPTH)
        .with_signer(pid, p.clone(), here().id);
    let records = as_patient
        .records_of(pid, l1_root)
        .await
        .expect("the patient's records");
    assert_eq!(records.iter().map(|r| r.record.id).collect::<Vec<_>>(), [1]);
    assert_eq!(records[0].cid.to_string(), CID);
    let grants = as_patient
        .grants_of(pid, l1_root)
        .await
        .expect("the patient's grants");
    assert_eq!(grants.len(), 1);
    assert_eq!(
        (
            grants[0].leaf.patient,
            grants[0].leaf.grantee,
            grants[0].leaf.active
        ),
        (pid, did, false)
    );
    let access = as_patient.access_of(pid).await.expect("the access history");
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(
        (access[0].reader, access[0].record, access[0].grant),
        (did, 1, 1)
    );
    // The doctor: the grants made to it (revoked now), its own access; not the record any more.
    let as_doctor = pulse_client::CoordinatorApi::new(&format!("http://{http}"))
        .expect("api")
        .with_depth(DEPTH)
        .with_signer(did, d.clone(), here().id);
    let held = as_doctor
        .grants_of(did, l1_root)
        .await
        .expect("the doctor's grants");
    assert_eq!(held.iter().map(|g| g.id).collect::<Vec<_>>(), [1]);
    assert_eq!(
        as_doctor.access_of(did).await.expect("its accesses").len(),
        1
    );
    assert!(matches!(
        as_doctor.record_under(1, Some(1), l1_root).await,
        Err(pulse_client::LookupError::NotFound { .. })
    ));
    // Another account (the registrar) is refused the patient's data, as if it did not exist.
    for path in [
        "/records/1".to_owned(),
        "/grants/1".to_owned(),
        format!("/accounts/{pid}"),
        format!("/accounts/{pid}/records"),
        format!("/accounts/{pid}/grants"),
        format!("/accounts/{pid}/access"),
    ] {
        let (code, body) = signed_get(http, &path, &c.registrar, 1).await;
        assert_eq!(code, 404, "{path}: {body}");
    }
    let (code, _) = signed_get(http, "/records/999", &c.registrar, 1).await;
    assert_eq!(
        code, 404,
        "the same answer for a record that does not exist"
    );
    // A doctor's account is in the directory: the patient reads it (to grant access).
    assert_eq!(
        signed_get(http, &format!("/accounts/{did}"), &p, pid)
            .await
            .0,
        200
    );
    // Replayed and stale signatures are refused; one signed for another path too.
    let now = now_ms();
    let auth = pulse_protocol::lookup_auth::LookupAuth::sign(
        &p,
        pid,
        here().id,
        now,
        42,
        "GET",
        "/records/1",
    )
    .header();
    assert_eq!(raw_get(http, "/records/1", Some(&auth)).await.0, 200);
    let (code, body) = raw_get(http, "/records/1", Some(&auth)).await;
    assert_eq!(code, 401, "{body}");
    assert!(body.to_string().contains("used already"), "{body}");
    let other_path = pulse_protocol::lookup_auth::LookupAuth::sign(
        &p,
        pid,
        here().id,
        now,
        43,
        "GET",
        "/records/2",
    )
    .header();
    let (code, body) = raw_get(http, "/records/1", Some(&other_path)).await;
    assert_eq!(code, 401, "{body}");
    assert!(body.to_string().contains("does not verify"), "{body}");
    let stale = pulse_protocol::lookup_auth::LookupAuth::sign(
        &p,
        pid,
        here().id,
        now - 120_000,
        44,
        "GET",
        "/records/1",
    )
    .header();
    let (code, body) = raw_get(http, "/records/1", Some(&stale)).await;
    assert_eq!(code, 401, "{body}");
    assert!(body.to_string().contains("stale"), "{body}");
    let elsewhere_auth = pulse_protocol::lookup_auth::LookupAuth::sign(
        &p,
        pid,
        pulse_l1::deployment(1, c.contract).id,
        now,
        45,
        "GET",
        "/records/1",
    )
    .header();
    assert_eq!(
        raw_get(http, "/records/1", Some(&elsewhere_auth)).await.0,
        401,
        "signed for another deployment"
    );

    stop.cancel();
    cancel.cancel();
    let summary = task.await.expect("join");
    assert_eq!(summary.invalid_proofs, 1);
    let _ = (liar.await, honest.await);
    assert_eq!(
        pulse_l1::contract::word(state_root(&c.dir.path().join("state"))),
        st.state_root
    );

    // --- The state rebuilt from L1 and IPFS alone.
    let rebuilt = c.dir.path().join("rebuilt");
    let rebuild_config = RebuildConfig {
        l1_rpc: c.anvil.url(),
        contract: c.contract,
        ipfs_url: c.ipfs.api_url(),
        genesis: c.genesis(),
        out: rebuilt.clone(),
        fetch_timeout: Duration::from_secs(20),
        reader: None,
    };
    let mut seen = Vec::new();
    let report = rebuild::rebuild(&rebuild_config, |done, total| seen.push((done, total)))
        .await
        .expect("rebuild");
    assert!(report.matches, "{report:?}");
    assert_eq!(report.batches, last);
    assert_eq!(report.transactions, 6, "{report:?}");
    assert_eq!(report.l1_root, st.state_root.to_string());
    assert_eq!(report.root, report.l1_root);
    assert_eq!(seen.last(), Some(&(last, last)));
    {
        let s = State::open(&rebuilt.join(STATE_FILE), DEPTH).expect("rebuilt state");
        let r = s.record(1).expect("read").expect("record 1");
        assert_eq!(
            r.cid, CID,
            "the record's CID comes back from the batch data"
        );
        assert_eq!(s.account_by_key(&p.public_key()).expect("read"), Some(pid));
    }
    // A rebuild never overwrites a state.
    match rebuild::rebuild(&rebuild_config, |_, _| {}).await {
        Err(e @ RebuildError::OutputExists(_)) => {
            assert!(e.to_string().contains("empty or new directory"), "{e}");
        }
        other => panic!("expected a refusal to overwrite, got {other:?}"),
    }

    // --- The coordinator's state directory lost while it is stopped: given the genesis,
    // it rebuilds the state at start and carries on.
    std::fs::remove_dir_all(c.dir.path().join("state")).expect("delete the state");
    let mut config = c.config(1);
    config.genesis = Some(c.genesis());
    let http = config.http_addr;
    let (cancel, task) = start_coordinator(config).await;
    let stop = CancellationToken::new();
    let (honest, _cache2) = spawn_real_worker(c.nats.worker("honest"), "honest", stop.clone());
    let late = PrivateKey::random(&mut rng);
    let r = submit(
        &client,
        &js,
        &sign(
            &late,
            0,
            0,
            TxBody::Register {
                public_key: late.public_key(),
                role: Role::Patient,
            },
        ),
    )
    .await;
    let next = accepted(&r);
    assert_eq!(
        next,
        last + 1,
        "numbering carries on after the rebuilt batches"
    );
    let st2 = wait_for_l1_batch(&c, next).await;
    assert_eq!(st2.batch_number, next);
    let numbers: Vec<u64> = st2.last_batches.iter().map(|b| b.number).collect();
    assert_eq!(numbers, (1..=next).collect::<Vec<_>>(), "no batch twice");
    // The record added before the loss is still served, with its CID (to its owner).
    let mut rec = signed_get(http, "/records/1", &p, pid).await.1;
    for _ in 0..100 {
        if rec["state_root"].as_str() == Some(st2.state_root.to_string().as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        rec = signed_get(http, "/records/1", &p, pid).await.1;
    }
    assert_eq!(rec["cid"], CID);
    assert_eq!(
        rec["state_root"].as_str(),
        Some(st2.state_root.to_string().as_str())
    );
    stop.cancel();
    cancel.cancel();
    task.await.expect("join");
    let _ = honest.await;
    assert_eq!(
        pulse_l1::contract::word(state_root(&c.dir.path().join("state"))),
        st2.state_root
    );

    // --- A batch's data gone from IPFS: the rebuild stops and names the batch and the CID.
    let first_cid = st2.last_batches[0].data_cid.clone();
    c.ipfs_forget(&first_cid);
    let missing = RebuildConfig {
        out: c.dir.path().join("rebuilt-2"),
        fetch_timeout: Duration::from_secs(5),
        ..rebuild_config
    };
    match rebuild::rebuild(&missing, |_, _| {}).await {
        Err(e @ RebuildError::Data { batch: 1, .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("batch 1") && text.contains(&first_cid),
                "{text}"
            );
            assert!(text.contains("pinned"), "says what to do: {text}");
        }
        other => panic!("expected batch 1's data to be missing, got {other:?}"),
    }
    assert!(
        !c.dir.path().join("rebuilt-2").join(STATE_FILE).exists(),
        "a stopped rebuild leaves no state a coordinator could take for a whole one"
    );
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `GET path` with an optional `Authorization` header: the status and the JSON body.
async fn raw_get(addr: SocketAddr, path: &str, auth: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().get(format!("http://{addr}{path}"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.expect("http");
    let code = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    (code, body)
}

/// `GET path` signed as `account` with `key` for this deployment.
async fn signed_get(
    addr: SocketAddr,
    path: &str,
    key: &PrivateKey,
    account: u64,
) -> (u16, serde_json::Value) {
    let auth = pulse_protocol::lookup_auth::LookupAuth::sign(
        key,
        account,
        here().id,
        now_ms(),
        rand::random(),
        "GET",
        path,
    )
    .header();
    raw_get(addr, path, Some(&auth)).await
}

async fn http_get(addr: SocketAddr, path: &str) -> serde_json::Value {
    let port = addr.port();
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let a = pulse_testkit::http_request(port, "GET", &path, None, Duration::from_secs(5))
            .expect("http");
        assert_eq!(a.status, 200, "{}", a.text());
        serde_json::from_str(&a.text()).expect("json")
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_coordinator_and_a_crashed_worker_lose_nothing_and_commit_once() {
    let mut c = Cluster::start().await;
    let (client, js) = c.js().await;
    let (cancel, task) = start_coordinator(c.config(2)).await;
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mut batch_of = Vec::new();
    for _ in 0..4 {
        let r = submit(&client, &js, &new_patient(&mut rng)).await;
        batch_of.push(accepted(&r));
    }
    // Jobs are out (no worker yet); kill the coordinator before anything is committed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel.cancel();
    task.await.expect("join");
    assert_eq!(
        pulse_l1::status(&c.anvil.url(), c.contract, 10)
            .await
            .expect("status")
            .batch_number,
        0
    );

    // Restart; a worker takes a job and dies; an honest one finishes everything.
    let (cancel, task) = start_coordinator(c.config(2)).await;
    let stop = CancellationToken::new();
    let dead = spawn_worker(
        c.nats.worker("dead"),
        "dead",
        c.keys.clone(),
        Behaviour::DiesOnFirstJob,
        stop.clone(),
    );
    assert_eq!(dead.await.expect("join"), 0);
    let (honest, _cache) = spawn_real_worker(c.nats.worker("honest"), "honest", stop.clone());
    let last = *batch_of.iter().max().expect("batch");
    let st = wait_for_l1_batch(&c, last).await;
    let total: u64 = st.last_batches.iter().map(|b| b.tx_count).sum();
    assert_eq!(total, 4, "each accepted transaction committed exactly once");
    let numbers: Vec<u64> = st.last_batches.iter().map(|b| b.number).collect();
    assert_eq!(
        numbers,
        (1..=last).collect::<Vec<_>>(),
        "one event per batch"
    );
    stop.cancel();
    cancel.cancel();
    task.await.expect("join");
    let _ = honest.await;
}

/// The connection names the server holds, as the operator (monitoring) sees them.
async fn connection_names(c: &Cluster) -> String {
    let operator = c
        .nats
        .operator()
        .connect("monitor")
        .await
        .expect("operator connects");
    let answer = operator
        .request("$SYS.REQ.SERVER.PING.CONNZ", "{}".into())
        .await
        .expect("connz");
    String::from_utf8_lossy(&answer.payload).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_worker_is_cut_off_and_the_other_completes_the_batches() {
    let mut c = Cluster::start().await;
    let (client, js) = c.js().await;
    let (cancel, task) = start_coordinator(c.config(2)).await;
    let stop = CancellationToken::new();
    // Both users exist before either worker connects (adding one reloads the server).
    let a_nats = c.nats.worker("hospital-a");
    let b_nats = c.nats.worker("hospital-b");
    let (revoked, _cache_a) = spawn_real_worker(a_nats, "hospital-a", stop.clone());
    let (kept, _cache_b) = spawn_real_worker(b_nats, "hospital-b", stop.clone());
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let register =
        async |rng: &mut ChaCha20Rng| accepted(&submit(&client, &js, &new_patient(rng)).await);
    let mut last = 0;
    for _ in 0..2 {
        last = last.max(register(&mut rng).await);
    }
    wait_for_l1_batch(&c, last).await;
    let names = connection_names(&c).await;
    assert!(
        names.contains("pulse-worker hospital-a") && names.contains("pulse-worker hospital-b"),
        "{names}"
    );

    // The operator revokes hospital-a and reloads: it is cut off, hospital-b stays.
    tokio::task::block_in_place(|| c.nats.revoke(pulse_testkit::Role::Worker, "hospital-a"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let names = connection_names(&c).await;
        if !names.contains("pulse-worker hospital-a") {
            assert!(names.contains("pulse-worker hospital-b"), "{names}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "hospital-a still connected: {names}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Later batches are proved by hospital-b alone.
    for _ in 0..4 {
        last = last.max(register(&mut rng).await);
    }
    let st = wait_for_l1_batch(&c, last).await;
    let total: u64 = st.last_batches.iter().map(|b| b.tx_count).sum();
    assert_eq!(total, 6, "every accepted transaction committed once");
    assert!(
        !connection_names(&c)
            .await
            .contains("pulse-worker hospital-a"),
        "the revoked worker came back"
    );
    stop.cancel();
    cancel.cancel();
    task.await.expect("join");
    revoked.abort();
    let _ = kept.await;
}

/// Two coordinators against one NATS: A active, B standing by with an empty state
/// directory and its own NATS user. A is killed (its task dropped mid-run, as SIGKILL would:
/// no seal, no lease release) with sealed batches waiting for proofs and an open batch whose
/// transactions have receipts. B takes the lease once it expires, rebuilds the state from
/// L1 and IPFS, re-creates the promised batches from the journal, and commits them: every
/// transaction in the batch its receipt named, each batch once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_takes_over_from_a_killed_coordinator_and_keeps_every_receipt() {
    let mut c = Cluster::start().await;
    let (client, js) = c.js().await;
    let ttl = Duration::from_secs(3);
    // Users first: adding one reloads the server.
    let worker_nats = c.nats.worker("honest");
    let Pair {
        a_task,
        b_task,
        b_stop,
        b_http,
    } = start_pair(&mut c, ttl, Duration::from_secs(30), |_| {}).await;

    // Five registrations: batches 1 and 2 sealed (no worker yet), batch 3 open with one.
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let mut promised: BTreeMap<u64, u64> = BTreeMap::new();
    for _ in 0..5 {
        let r = submit(&client, &js, &new_patient(&mut rng)).await;
        *promised.entry(accepted(&r)).or_default() += 1;
    }
    assert_eq!(
        promised,
        BTreeMap::from([(1, 2), (2, 2), (3, 1)]),
        "A's receipts"
    );
    assert!(
        pulse_testkit::http_request(
            b_http.port(),
            "GET",
            "/health",
            None,
            Duration::from_secs(1)
        )
        .is_err(),
        "B stands by while A holds the lease"
    );

    a_task.abort();
    let _ = a_task.await;
    let killed = std::time::Instant::now();
    let stop = CancellationToken::new();
    let (honest, _cache) = spawn_real_worker(worker_nats, "honest", stop.clone());

    let first = wait_for_l1_batch(&c, 1).await;
    let takeover = killed.elapsed();
    let st = wait_for_l1_batch(&c, 3).await;
    eprintln!(
        "takeover: A killed -> first batch committed by B in {:.2} s (lease {ttl:?}); batch 1 in block {}",
        takeover.as_secs_f64(),
        first.last_batches[0].block_number
    );
    assert_committed_once(&st, &promised);

    b_stop.cancel();
    let summary = b_task.await.expect("join B");
    assert_eq!(
        summary.replayed, 5,
        "B re-created every promised transaction"
    );
    stop.cancel();
    let _ = honest.await;
    assert_eq!(
        pulse_l1::contract::word(state_root(&c.dir.path().join("state-b"))),
        st.state_root,
        "L1's root is B's"
    );
}

/// Submits as a client that rides out a NATS node's loss: publishes until a quorum stores
/// the transaction (the hash is the message id, so a repeat is stored once), then reads
/// the receipt from the receipts stream (a receipt published while the client was
/// reconnecting is not missed).
async fn submit_surviving(js: &jetstream::Context, stx: &SignedTransaction) -> Receipt {
    let id = stx.hash(here().id).expect("hash").to_string();
    let mut stored = false;
    let mut why = String::new();
    // A stream whose leader died takes seconds to elect another: up to a minute.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", id.as_str());
        let ack = match js
            .publish_with_headers(TX_SUBJECT, h, stx.to_json().into_bytes().into())
            .await
        {
            Ok(ack) => ack.await.map_err(|e| why = e.to_string()).is_ok(),
            Err(e) => {
                why = e.to_string();
                false
            }
        };
        if ack {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(stored, "the cluster never stored transaction {id}: {why}");
    let subject = receipt_subject(&id);
    // The coordinator retries a receipt it could not store for up to about a minute.
    for _ in 0..900 {
        // A direct get, as client software reads receipts (it may not read stream info).
        if let Ok(stream) = js.get_stream_no_info(RECEIPT_STREAM).await
            && let Ok(m) = stream.direct_get_last_for_subject(&subject).await
        {
            return decode(&m.payload).expect("receipt decodes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no receipt for {id}");
}

/// A three-node NATS cluster, every stream and bucket at three replicas. Under a workload,
/// the node leading the transaction stream is killed with SIGKILL: submissions go on
/// (a quorum of two stores them), the coordinator and the worker move to the other nodes.
/// The node is restarted and catches up. Every accepted transaction is committed once, no
/// batch twice, and L1's root is the coordinator's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_nats_node_loses_nothing_and_catches_up_after_restart() {
    let mut c = Cluster::start_with_nats(3).await;
    let worker_nats = c.nats.worker("honest");
    let mut config = c.config(2);
    config.nats_replicas = 3;
    let (cancel, task) = start_coordinator(config).await;
    let stop = CancellationToken::new();
    let (honest, _cache) = spawn_real_worker(worker_nats, "honest", stop.clone());
    let (_client, js) = c.js().await;

    let mut rng = ChaCha20Rng::seed_from_u64(41);
    let mut promised: BTreeMap<u64, u64> = BTreeMap::new();
    for _ in 0..3 {
        let r = submit_surviving(&js, &new_patient(&mut rng)).await;
        *promised.entry(accepted(&r)).or_default() += 1;
    }
    // Stream info is the coordinator's to read, not a client's.
    let observer = jetstream::new(
        c.nats
            .coordinator()
            .connect("test observer")
            .await
            .expect("connect"),
    );
    let leader = observer
        .get_stream(TX_STREAM)
        .await
        .expect("tx stream")
        .info()
        .await
        .expect("info")
        .cluster
        .clone()
        .and_then(|c| c.leader)
        .expect("the tx stream has a leader");
    let victim: usize = leader
        .strip_prefix("nats-")
        .and_then(|n| n.parse::<usize>().ok())
        .map(|n| n - 1)
        .expect("node names are nats-N");
    tokio::task::block_in_place(|| c.nats.kill_node(victim));
    let killed = std::time::Instant::now();
    for i in 0..4 {
        let r = submit_surviving(&js, &new_patient(&mut rng)).await;
        if i == 0 {
            eprintln!(
                "NATS node {leader} (the transaction stream's leader) killed -> the next transaction's receipt in {:.2} s",
                killed.elapsed().as_secs_f64()
            );
        }
        *promised.entry(accepted(&r)).or_default() += 1;
    }
    tokio::task::block_in_place(|| c.nats.restart_node(victim));
    for _ in 0..3 {
        let r = submit_surviving(&js, &new_patient(&mut rng)).await;
        *promised.entry(accepted(&r)).or_default() += 1;
    }
    let last = *promised.keys().last().expect("batches");
    let st = wait_for_l1_batch(&c, last).await;
    assert_committed_once(&st, &promised);
    let (status, body) = c
        .nats
        .node_health(victim)
        .expect("the restarted node answers");
    assert_eq!(status, 200, "the restarted node caught up: {body}");

    cancel.cancel();
    let summary = task.await.expect("join coordinator");
    stop.cancel();
    let _ = honest.await;
    assert_eq!(summary.replayed, 0, "no restart, nothing replayed");
    assert_eq!(
        pulse_l1::contract::word(state_root(&c.dir.path().join("state"))),
        st.state_root,
        "L1's root is the coordinator's"
    );
}

/// One JSON-RPC call to the test's anvil.
async fn anvil_rpc(c: &Cluster, method: &str, params: serde_json::Value) -> serde_json::Value {
    let port = c.anvil.port();
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    let method = method.to_owned();
    tokio::task::spawn_blocking(move || {
        let a = pulse_testkit::http_request(
            port,
            "POST",
            "/",
            Some(("application/json", body.as_bytes())),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{method}: {e}"));
        let v: serde_json::Value = serde_json::from_slice(&a.body).expect("JSON-RPC answer");
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    })
    .await
    .expect("join")
}

/// The hashes of the operator's transactions waiting in anvil's pool.
async fn pending_commits(c: &Cluster) -> Vec<String> {
    let pool = anvil_rpc(c, "txpool_content", serde_json::json!([])).await;
    let me = format!("{:#x}", operator().address());
    pool["pending"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(from, _)| from.to_lowercase() == me)
        .flat_map(|(_, by_nonce)| by_nonce.as_object().into_iter().flatten())
        .filter_map(|(_, tx)| tx["hash"].as_str().map(str::to_owned))
        .collect()
}

/// As the standby test, but A is killed between L1 submission and confirmation: anvil
/// stops mining, A submits batch 1's commit and dies with it in the pool. B takes over,
/// re-creates batches 1 and 2 from the journal, proves batch 1 again and sends its commit
/// with the operator's confirmed nonce, which replaces A's in the pool. Mining resumes:
/// batch 1 is committed once (by B's transaction; A's is never included), then batch 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_takes_over_from_a_coordinator_killed_between_l1_submission_and_confirmation() {
    let mut c = Cluster::start().await;
    let (client, js) = c.js().await;
    let ttl = Duration::from_secs(3);
    let worker_nats = c.nats.worker("honest");
    // A's last pull request on the results consumer outlives its kill in this process and
    // can swallow B's first results (they come back after the consumer's ack wait); B
    // publishes its jobs again after this long. See the closing note of issue #14.
    let Pair {
        a_task,
        b_task,
        b_stop,
        b_http: _,
    } = start_pair(&mut c, ttl, Duration::from_secs(60), |b| {
        b.job_timeout = Duration::from_secs(10)
    })
    .await;

    anvil_rpc(&c, "evm_setAutomine", serde_json::json!([false])).await;
    let mut rng = ChaCha20Rng::seed_from_u64(43);
    let mut promised: BTreeMap<u64, u64> = BTreeMap::new();
    for _ in 0..3 {
        let r = submit(&client, &js, &new_patient(&mut rng)).await;
        *promised.entry(accepted(&r)).or_default() += 1;
    }
    assert_eq!(promised, BTreeMap::from([(1, 2), (2, 1)]), "A's receipts");

    let stop = CancellationToken::new();
    let (honest, _cache) = spawn_real_worker(worker_nats, "honest", stop.clone());
    let mut a_commit = Vec::new();
    for _ in 0..1200 {
        a_commit = pending_commits(&c).await;
        if !a_commit.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        a_commit.len(),
        1,
        "A submitted batch 1's commit: {a_commit:?}"
    );
    a_task.abort();
    let _ = a_task.await;
    let killed = std::time::Instant::now();

    // B proves batch 1 again and replaces A's commit in the pool.
    let mut b_commit = Vec::new();
    for _ in 0..1200 {
        b_commit = pending_commits(&c).await;
        if b_commit.len() == 1 && b_commit != a_commit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        b_commit.len() == 1 && b_commit != a_commit,
        "B's commit replaced A's: A {a_commit:?}, pool {b_commit:?}"
    );
    let replaced = killed.elapsed();
    anvil_rpc(&c, "evm_setAutomine", serde_json::json!([true])).await;
    anvil_rpc(&c, "evm_mine", serde_json::json!([])).await;
    let first = wait_for_l1_batch(&c, 1).await;
    eprintln!(
        "takeover: A killed with its commit in the pool -> B's commit replaced it in {:.2} s (lease {ttl:?}); batch 1 confirmed {:.2} s after the kill",
        replaced.as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(first.last_batches.len(), 1);

    let st = wait_for_l1_batch(&c, 2).await;
    assert_committed_once(&st, &promised);
    assert_eq!(
        format!("{:#x}", st.last_batches[0].tx_hash),
        b_commit[0],
        "batch 1 is B's transaction"
    );
    let a_receipt = anvil_rpc(
        &c,
        "eth_getTransactionReceipt",
        serde_json::json!([a_commit[0]]),
    )
    .await;
    assert!(
        a_receipt.is_null(),
        "A's commit was never included: {a_receipt}"
    );

    b_stop.cancel();
    let summary = b_task.await.expect("join B");
    assert_eq!(
        summary.replayed, 3,
        "B re-created every promised transaction"
    );
    stop.cancel();
    let _ = honest.await;
    assert_eq!(
        pulse_l1::contract::word(state_root(&c.dir.path().join("state-b"))),
        st.state_root,
        "L1's root is B's"
    );
}

/// A counter on the coordinator's `/metrics` (0 when absent).
async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        let a = pulse_testkit::http_request(
            addr.port(),
            "GET",
            "/metrics",
            None,
            Duration::from_secs(5),
        )
        .expect("metrics answer");
        a.text()
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("{name} "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0.0)
    })
    .await
    .expect("join")
}

/// The IPFS node is killed after batch 1 is sealed and before its proofs are in: the
/// coordinator cannot publish the batch's data and keeps trying, while it goes on
/// accepting transactions. The node comes back (same port, same repository) and every
/// batch is committed once, with its data on IPFS: a rebuild from L1 and IPFS reaches
/// L1's root.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ipfs_node_restarted_mid_batch_delays_the_commit_and_loses_nothing() {
    let mut c = Cluster::start().await;
    let worker_nats = c.nats.worker("honest");
    let config = c.config(2);
    let http = config.http_addr;
    let (cancel, task) = start_coordinator(config).await;
    let (client, js) = c.js().await;

    let mut rng = ChaCha20Rng::seed_from_u64(47);
    let mut promised: BTreeMap<u64, u64> = BTreeMap::new();
    for _ in 0..2 {
        let r = submit(&client, &js, &new_patient(&mut rng)).await;
        *promised.entry(accepted(&r)).or_default() += 1;
    }
    tokio::task::block_in_place(|| c.ipfs.stop());
    let stop = CancellationToken::new();
    let (honest, _cache) = spawn_real_worker(worker_nats, "honest", stop.clone());
    let failures = "pulse_coordinator_ipfs_add_failures_total";
    let mut failed = 0.0;
    for _ in 0..1200 {
        failed = metric(http, failures).await;
        if failed >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failed >= 1.0, "batch 1 proved and its data add failed");
    for _ in 0..2 {
        let r = submit(&client, &js, &new_patient(&mut rng)).await;
        *promised.entry(accepted(&r)).or_default() += 1;
    }
    assert!(
        pulse_l1::status(&c.anvil.url(), c.contract, 0)
            .await
            .expect("status")
            .batch_number
            == 0,
        "nothing committed without its data"
    );
    tokio::task::block_in_place(|| c.ipfs.restart());
    let r = submit(&client, &js, &new_patient(&mut rng)).await;
    *promised.entry(accepted(&r)).or_default() += 1;

    let last = *promised.keys().last().expect("batches");
    let st = wait_for_l1_batch(&c, last).await;
    assert_committed_once(&st, &promised);

    let report = rebuild::rebuild(
        &RebuildConfig {
            l1_rpc: c.anvil.url(),
            contract: c.contract,
            ipfs_url: c.ipfs.api_url(),
            genesis: c.genesis(),
            out: c.dir.path().join("rebuilt"),
            fetch_timeout: Duration::from_secs(20),
            reader: None,
        },
        |_, _| {},
    )
    .await
    .expect("rebuild from L1 and the restarted IPFS node");
    assert!(report.matches, "{report:?}");

    cancel.cancel();
    let _ = task.await.expect("join coordinator");
    stop.cancel();
    let _ = honest.await;
    assert_eq!(
        pulse_l1::contract::word(state_root(&c.dir.path().join("state"))),
        st.state_root,
        "L1's root is the coordinator's"
    );
}

/// Waits until `/status` lists a blocked chunk; returns its reason.
async fn wait_blocked(http: SocketAddr, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let status = http_get(http, "/status").await;
        if let Some(b) = status["blocked"].as_array().and_then(|b| b.first()) {
            return b["reason"].as_str().unwrap_or_default().to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no chunk reported blocked: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the coordinator has recorded batch `n` as committed; returns `/status`.
async fn wait_recorded(http: SocketAddr, n: u64) -> serde_json::Value {
    for _ in 0..200 {
        let status = http_get(http, "/status").await;
        let done = status["batches"].as_array().is_some_and(|b| {
            b.iter()
                .any(|b| b["batch"] == n && b["status"] == "committed")
        });
        if done {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("batch {n} never recorded as committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_no_worker_holds_is_proved_split_by_two_and_one_alone_is_told_so() {
    let mut c = Cluster::start().await;
    let (client, js) = c.js().await;
    // Both users exist before either worker connects (adding one reloads the server).
    let a_nats = c.nats.worker("small-a");
    let b_nats = c.nats.worker("small-b");
    let config = c.config(1);
    let http = config.http_addr;
    let (cancel, task) = start_coordinator(config).await;
    let stop = CancellationToken::new();
    // Each gives its bases 60 % of the key: neither proves the chunk whole.
    let limit = key_base_bytes() * 6 / 10;
    let (a, _cache_a) = spawn_real_worker_limited(a_nats, "small-a", limit, stop.clone());
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let n = accepted(&submit(&client, &js, &new_patient(&mut rng)).await);

    // One such worker alone: the coordinator says why the chunk waits (no hang, no loop).
    let why = wait_blocked(http, Duration::from_secs(60)).await;
    for needle in [
        "no live worker can take this chunk",
        "MiB of bases",
        "--base-memory",
        "1 live worker(s)",
    ] {
        assert!(why.contains(needle), "`{why}` lacks `{needle}`");
    }

    // A second one: the chunk is proved by both together, and the batch commits.
    let (b, _cache_b) = spawn_real_worker_limited(b_nats, "small-b", limit, stop.clone());
    let st = wait_for_l1_batch(&c, n).await;
    assert_eq!(st.batch_number, n);
    let status = wait_recorded(http, n).await;
    let batch = status["batches"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["batch"] == n).cloned())
        .expect("the batch");
    assert_eq!(batch["split_proofs"], batch["chunks"], "{batch}");
    assert_eq!(
        batch["shards"].as_u64(),
        batch["chunks"].as_u64().map(|c| 2 * c),
        "two shards a chunk: {batch}"
    );
    assert_eq!(status["blocked"], serde_json::json!([]), "{status}");
    let metrics = pulse_testkit::http_request(
        http.port(),
        "GET",
        "/metrics",
        None,
        Duration::from_secs(10),
    )
    .expect("metrics")
    .text();
    assert!(
        metrics.contains("pulse_coordinator_split_proofs_total 1"),
        "{metrics}"
    );
    stop.cancel();
    cancel.cancel();
    let summary = task.await.expect("join");
    assert_eq!(summary.split_proofs, 1);
    assert_eq!(summary.shards, 2);
    assert_eq!(summary.bad_shards, 0);
    let _ = (a.await, b.await);
}

/// A registered worker that answers its first shard with wrong sums and computes the rest
/// honestly, from the shard's bases alone, as `pulse-worker` does.
fn spawn_lying_shard_worker(
    nats: NatsEndpoint,
    id: &'static str,
    keys_dir: std::path::PathBuf,
    stop: CancellationToken,
) -> JoinHandle<u64> {
    use pulse_prover::split::{KeyHeader, ShardProver, ShardRanges, ShardScalars};
    tokio::spawn(async move {
        let client = nats.connect(id).await.expect("connect");
        let js = jetstream::new(client);
        let registry = loop {
            match js.get_key_value(pulse_protocol::WORKER_BUCKET).await {
                Ok(kv) => break kv,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let beat = {
            let registry = registry.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    let info = pulse_protocol::WorkerInfo {
                        worker_id: id.to_owned(),
                        backend: "cpu".to_owned(),
                        device: "a worker that lies once".to_owned(),
                        memory_bytes: 0,
                        version: "0".to_owned(),
                        circuits: Vec::new(),
                        jobs_done: 0,
                        current_job: None,
                        heartbeat_at: std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .expect("clock")
                            .as_secs(),
                        base_memory_bytes: None,
                        resident: Vec::new(),
                    };
                    let _ = registry.put(id, encode(&info).into()).await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };
        let consumer: PullConsumer = loop {
            if stop.is_cancelled() {
                return 0;
            }
            match js.get_stream(pulse_protocol::SHARD_STREAM).await {
                Ok(s) => match s.get_consumer(&pulse_protocol::shard_consumer(id)).await {
                    Ok(c) => break c,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                },
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let path = keys_dir.join(artifacts::PROVING_KEY_FILE);
        let header = KeyHeader::read(&path).expect("header");
        let mut messages = consumer.messages().await.expect("messages");
        let mut answered = 0u64;
        loop {
            let msg = tokio::select! {
                () = stop.cancelled() => break,
                m = messages.next() => match m { Some(Ok(m)) => m, _ => continue },
            };
            let job: pulse_protocol::ShardJob = decode(&msg.payload).expect("a shard job");
            let ranges = ShardRanges {
                assignment: job.span.assignment[0] as usize..job.span.assignment[1] as usize,
                l: job.span.l[0] as usize..job.span.l[1] as usize,
                h: job.span.h[0] as usize..job.span.h[1] as usize,
            };
            let sums = if answered == 0 {
                // Points on the curve, well formed, and wrong.
                let g = G1Affine::generator().into_group();
                pulse_prover::MsmSums {
                    a: g,
                    b_g1: g,
                    b_g2: G2Affine::generator().into_group(),
                    l: g,
                    h: g,
                }
            } else {
                let bytes = pulse_protocol::split::fetch_scalars(&js, &job.scalars)
                    .await
                    .expect("scalars");
                let (path, header) = (path.clone(), header.clone());
                tokio::task::spawn_blocking(move || {
                    let prover = ShardProver::load(CpuBackend::new(), &path, &header, ranges)
                        .expect("shard bases");
                    prover
                        .sums(&ShardScalars::decode(&bytes).expect("scalars decode"))
                        .expect("sums")
                })
                .await
                .expect("join")
            };
            let result = JobResult {
                job_id: job.job_id,
                worker_id: id.to_owned(),
                outcome: JobOutcome::Shard {
                    sums: pulse_protocol::split::to_hex(&pulse_prover::split::encode_sums(&sums)),
                    msm_seconds: 0.0,
                    load_seconds: 0.0,
                    backend: "cpu".to_owned(),
                },
            };
            js.publish(RESULT_SUBJECT, encode(&result).into())
                .await
                .expect("publish")
                .await
                .expect("stored");
            msg.double_ack().await.expect("ack");
            answered += 1;
        }
        beat.abort();
        answered
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_worker_that_sends_wrong_sums_is_found_and_the_proof_is_still_right() {
    let mut c = Cluster::start().await;
    let (client, js) = c.js().await;
    let honest_nats = c.nats.worker("honest");
    let liar_nats = c.nats.worker("liar");
    let mut config = c.config(1);
    config.split.mode = pulse_coordinator::split::SplitMode::Always;
    config.split.max_shards = 2;
    let http = config.http_addr;
    let keys_dir = config.keys_dir.clone();
    let (cancel, task) = start_coordinator(config).await;
    let stop = CancellationToken::new();
    // The liar pulls only its own shards: the honest worker makes every witness.
    let liar = spawn_lying_shard_worker(liar_nats, "liar", keys_dir, stop.clone());
    let (honest, _cache) = spawn_real_worker(honest_nats, "honest", stop.clone());
    let mut rng = ChaCha20Rng::seed_from_u64(32);
    let n = accepted(&submit(&client, &js, &new_patient(&mut rng)).await);
    let st = wait_for_l1_batch(&c, n).await;
    assert_eq!(st.batch_number, n, "the batch commits with a right proof");
    let status = wait_recorded(http, n).await;
    // Named in the status, the metrics (and the coordinator's log) as having sent a bad
    // shard, and counted as a bogus proof is.
    assert_eq!(status["invalid_proofs"]["liar"], 1, "{status}");
    assert!(status["invalid_proofs"].get("honest").is_none(), "{status}");
    let metrics = pulse_testkit::http_request(
        http.port(),
        "GET",
        "/metrics",
        None,
        Duration::from_secs(10),
    )
    .expect("metrics")
    .text();
    for needle in [
        "pulse_coordinator_bad_shards_total{worker=\"liar\"} 1",
        "pulse_coordinator_invalid_proofs_total{worker=\"liar\"} 1",
        "pulse_coordinator_split_proofs_total 1",
    ] {
        assert!(metrics.contains(needle), "no `{needle}` in\n{metrics}");
    }
    // The honest worker's series exists (every registered worker's does), at zero.
    assert!(
        metrics.contains("pulse_coordinator_bad_shards_total{worker=\"honest\"} 0"),
        "{metrics}"
    );
    stop.cancel();
    cancel.cancel();
    let summary = task.await.expect("join");
    assert_eq!(summary.bad_shards, 1);
    assert_eq!(summary.split_proofs, 1);
    // First round (one wrong), then every shard checked on the other worker.
    assert_eq!(liar.await.expect("liar"), 2);
    let _ = honest.await;
}
