//! The Pulse coordinator: pulls signed transactions from NATS JetStream, validates and
//! sequences them into the persistent rollup state, answers each with a receipt, seals
//! batches by size or deadline, publishes one proving job per chunk, checks every proof a
//! worker returns, publishes the batch's public data to IPFS and commits the batch to L1
//! through the [`pulse_l1`] sender. Source messages are acknowledged only once their batch
//! is final on L1.
//!
//! Everything that changes coordinator state happens in one task ([`Coordinator::run`]'s
//! loop); the rollup state itself is owned by the [`sequencer`] thread; proofs are checked
//! on the blocking pool; L1 commits run in the sender pipeline, in batch order. A chunk no
//! worker can hold (or any chunk, as configured) is proved split across workers
//! ([`split`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
mod core;
pub mod dac;
pub mod follower;
pub mod journal;
pub mod lease;
pub mod metrics;
pub mod pubdata;
pub mod rebuild;
pub mod sequencer;
pub mod split;
mod status_page;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;

pub use crate::core::{Coordinator, Summary};

/// Everything the coordinator needs to run.
#[derive(Clone)]
pub struct CoordinatorConfig {
    /// The NATS server, its CA and the coordinator's credentials.
    pub nats: pulse_access::NatsEndpoint,
    /// Directory of the rollup state and the coordinator's records.
    pub state_dir: PathBuf,
    /// The key directory written by `pulse setup`.
    pub keys_dir: PathBuf,
    /// The IPFS node's RPC API (Kubo or js-ipfs).
    pub ipfs_url: String,
    /// Ethereum JSON-RPC URL.
    pub l1_rpc: String,
    /// The rollup contract.
    pub l1_contract: Address,
    /// The operator key that commits batches.
    pub l1_operator: PrivateKeySigner,
    /// L1 confirmations before a batch is final.
    pub l1_confirmations: u64,
    /// Seal a batch at this many transactions.
    pub batch_max_txs: usize,
    /// Seal a batch this long after its first transaction.
    pub batch_deadline: Duration,
    /// A job's lease (redelivery after this long without a heartbeat).
    pub job_lease: Duration,
    /// Jobs still unanswered after this long are published again.
    pub job_timeout: Duration,
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// The deployment's genesis: with it, a state directory without a state is rebuilt from
    /// L1 and IPFS at start ([`rebuild`]).
    pub genesis: Option<rebuild::Genesis>,
    /// This coordinator's name in the lease ([`lease`]): one of several coordinators
    /// against the same NATS is active, the others stand by. A coordinator restarted under
    /// the same name takes its lease back at once.
    pub name: String,
    /// How long the lease outlives its last renewal: a standby takes over this long after
    /// the active coordinator stops renewing.
    pub lease_ttl: Duration,
    /// Copies JetStream keeps of every stream and bucket the coordinator creates (the
    /// protocol's, the journal, the lease): 3 on a three-node NATS cluster, so that losing
    /// one node loses nothing; 1 on a single server.
    pub nats_replicas: usize,
    /// When and how chunks are proved split across workers ([`split`]).
    pub split: split::SplitConfig,
    /// The data-availability committee ([`dac`]): with one, batch data goes to IPFS sealed
    /// for its members and each batch waits for its threshold of attestations before it
    /// is committed. Must be the committee the contract holds.
    pub committee: Option<pulse_dac::Committee>,
    /// A key the committee file lists (the operator's reader key): with it, a lost state
    /// is rebuilt from the sealed batch data at start.
    pub committee_key: Option<std::sync::Arc<pulse_dac::MemberKey>>,
}

/// A random 64-bit id (std's hasher keys are random per process and per call), to name
/// one run's or one writer's messages apart from any other's.
pub(crate) fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// The lease's default time to live.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

impl std::fmt::Debug for CoordinatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorConfig")
            .field("nats_url", &self.nats.url)
            .field("state_dir", &self.state_dir)
            .field("keys_dir", &self.keys_dir)
            .field("ipfs_url", &self.ipfs_url)
            .field("l1_rpc", &self.l1_rpc)
            .field("l1_contract", &self.l1_contract)
            .field("l1_operator", &self.l1_operator.address())
            .field("batch_max_txs", &self.batch_max_txs)
            .field("batch_deadline", &self.batch_deadline)
            .field("http_addr", &self.http_addr)
            .field("name", &self.name)
            .field("lease_ttl", &self.lease_ttl)
            .field("nats_replicas", &self.nats_replicas)
            .field("split", &self.split)
            .field(
                "committee",
                &self.committee.as_ref().map(|c| hex::encode(c.id())),
            )
            .finish_non_exhaustive()
    }
}

/// The rollup state file inside the state directory.
pub const STATE_FILE: &str = "state.redb";
/// The coordinator's records inside the state directory.
pub const STORE_FILE: &str = "coordinator.redb";
