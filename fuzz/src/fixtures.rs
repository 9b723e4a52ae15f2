//! What the targets need and build once per process: a populated rollup state, Groth16 keys
//! of a small chunk circuit with a valid proof, a record envelope and its owner's key, and
//! the coordinator's HTTP router over the state.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use pulse_circuits::artifacts::{self, CircuitParams, KeyArtifacts, ProofArtifact};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_circuits::deployment::Deployment;
use pulse_circuits::differential::opened_state;
use pulse_circuits::eddsa::PrivateKey;
use pulse_circuits::state::State;
use pulse_client::record::{RecordEnvelope, seal_record};
use pulse_coordinator::api::{ApiState, Snapshot, router};
use pulse_coordinator::metrics::Metrics;
use pulse_coordinator::store::Store;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The populated state (see [`opened_state`]), its deployment and its batch time.
pub struct StateFixture {
    /// The state, in memory.
    pub state: State,
    /// The deployment its signatures are checked for.
    pub deployment: Deployment,
    /// The batch time of the opening.
    pub timestamp: u64,
}

/// The state every transaction target applies to.
///
/// # Panics
/// When the state cannot be built (a bug in the statement, found before any input).
#[allow(clippy::expect_used)]
pub fn state() -> &'static StateFixture {
    static STATE: OnceLock<StateFixture> = OnceLock::new();
    STATE.get_or_init(|| {
        let (state, deployment, timestamp) =
            opened_state().expect("the opening state builds");
        StateFixture {
            state,
            deployment,
            timestamp,
        }
    })
}

/// Keys of the 1-slot, depth-2 chunk circuit and a valid proof of a blank chunk.
pub struct KeyFixture {
    /// The keys.
    pub keys: KeyArtifacts,
    /// A proof that verifies with them.
    pub proof: ProofArtifact,
}

/// The circuit the fixture keys are for.
pub fn key_params() -> CircuitParams {
    CircuitParams::new(1, 2)
}

/// The keys and proof the proof targets check against.
///
/// # Panics
/// When setup or proving fails (a bug found before any input).
#[allow(clippy::expect_used)]
pub fn keys() -> &'static KeyFixture {
    static KEYS: OnceLock<KeyFixture> = OnceLock::new();
    KEYS.get_or_init(|| {
        let params = key_params();
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let keys = artifacts::setup(ChunkCircuit::blank(params), params, &mut rng)
            .expect("setup of the fixture circuit");
        let proof = artifacts::prove_reference(&keys, ChunkCircuit::blank(params), &mut rng)
            .expect("a blank chunk proves");
        KeyFixture { keys, proof }
    })
}

/// A sealed record for account 4 (the opening's first patient) and that account's key.
pub struct RecordFixture {
    /// The envelope.
    pub envelope: RecordEnvelope,
    /// The owner's private key.
    pub key: PrivateKey,
    /// The owner's account.
    pub account: u64,
}

/// The record the envelope target opens fuzzed shares against.
///
/// # Panics
/// When sealing fails (a bug found before any input).
#[allow(clippy::expect_used)]
pub fn record() -> &'static RecordFixture {
    static RECORD: OnceLock<RecordFixture> = OnceLock::new();
    RECORD.get_or_init(|| {
        // The differential opening's patient 4 holds pool key 3, `[4; 32]`.
        let key = PrivateKey::from_bytes([4; 32]);
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let envelope = seal_record(b"a test record", &[(4, key.public_key())], &mut rng)
            .expect("sealing the fixture record");
        RecordFixture {
            envelope,
            key,
            account: 4,
        }
    })
}

/// A current-thread runtime and the coordinator's HTTP router over the fixture state.
pub struct ApiFixture {
    /// The runtime the requests run on.
    pub runtime: tokio::runtime::Runtime,
    /// The router, as `pulse coordinator` serves it.
    pub router: axum::Router,
    /// The store's folder, kept for the life of the process.
    pub dir: PathBuf,
}

/// The HTTP API the `http_api` target sends requests to.
///
/// # Panics
/// When the runtime, store or metrics cannot be made.
#[allow(clippy::expect_used)]
pub fn api() -> &'static ApiFixture {
    static API: OnceLock<ApiFixture> = OnceLock::new();
    API.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime");
        let dir = std::env::temp_dir().join(format!("pulse-fuzz-api-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let store = Store::open(&dir.join("store.redb")).expect("the coordinator store");
        let (state, here, _) = opened_state().expect("the opening state builds");
        let metrics = Metrics::new(Duration::from_secs(30), Duration::from_secs(60))
            .expect("the coordinator metrics");
        let router = router(ApiState {
            snapshot: Arc::new(RwLock::new(Snapshot::default())),
            store: Arc::new(store),
            state: Arc::new(state),
            committed: Arc::new(RwLock::new(None)),
            metrics: Arc::new(metrics),
            auth: Arc::new(pulse_coordinator::api::Authenticator::new(here.id)),
        });
        ApiFixture {
            runtime,
            router,
            dir,
        }
    })
}
