//! Rebuilding the rollup state from L1 and IPFS alone (`pulse state rebuild`).
//!
//! L1 holds every committed batch: its event names the batch data's CID, and its calldata
//! holds each chunk's roots and public-data commitment, which the chunk proofs bound. IPFS
//! holds the data. The rebuild starts from the deployment's genesis (its registrars' keys,
//! [`Genesis`]), checks that it gives the root L1 started from, and for every batch in order
//! fetches its data, checks it against the batch's chunks on L1 (roots and the commitment
//! recomputed from the slots), replays every slot and checks the roots after each chunk.
//! Anything that does not match stops the rebuild and names the batch (and the CID).
//!
//! The result is a state directory a coordinator (or a follower) starts from: the state, and
//! a coordinator store that records the batch it was rebuilt through.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use pulse_circuits::eddsa::PublicKey;
use pulse_circuits::field::fr_to_decimal;
use pulse_circuits::state::{ReplayError, State, StateError};
use pulse_circuits::tx::TxKind;
use pulse_l1::L1Error;
use pulse_l1::history::{self, ChunkInputs};
use pulse_l1::sender::BatchEvent;
use serde::{Deserialize, Serialize};

use crate::pubdata::{self, BatchData};
use crate::store::{Store, StoreError};
use crate::{STATE_FILE, STORE_FILE};

/// A deployment's genesis state: the registrars' keys (accounts 1, 2, …) and the tree depth.
/// Public: `pulse dev up` writes it beside the cluster description; a deployment publishes
/// it with its contract address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Format version (1).
    pub version: u32,
    /// The state trees' depth.
    pub depth: usize,
    /// The genesis registrars' public keys, account 1 first.
    pub registrars: Vec<PublicKey>,
}

impl Genesis {
    /// Reads a genesis file.
    ///
    /// # Errors
    /// A message naming the file and what is wrong with it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read(path)
            .map_err(|e| format!("cannot read the genesis file {}: {e}", path.display()))?;
        if text.len() > 1 << 20 {
            return Err(format!(
                "the genesis file {} is over 1 MiB; it holds a few public keys",
                path.display()
            ));
        }
        let g: Self = serde_json::from_slice(&text).map_err(|e| {
            format!(
                "{} is not a Pulse genesis file ({{\"version\": 1, \"depth\": …, \"registrars\": [[x, y], …]}}): {e}",
                path.display()
            )
        })?;
        if g.version != 1 {
            return Err(format!(
                "{}: genesis version {} is not one this build reads (1)",
                path.display(),
                g.version
            ));
        }
        if !(2..=64).contains(&g.depth) {
            return Err(format!(
                "{}: depth {} is outside 2 to 64",
                path.display(),
                g.depth
            ));
        }
        Ok(g)
    }

    /// Writes it as JSON.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}

/// Where to rebuild from and to.
#[derive(Clone, Debug)]
pub struct RebuildConfig {
    /// Ethereum JSON-RPC URL.
    pub l1_rpc: String,
    /// The rollup contract.
    pub contract: Address,
    /// An IPFS node's RPC API that has (or can fetch) the batch data.
    pub ipfs_url: String,
    /// The deployment's genesis.
    pub genesis: Genesis,
    /// The state directory to write (must not hold a state yet).
    pub out: PathBuf,
    /// How long to wait for one batch's data.
    pub fetch_timeout: Duration,
    /// A committee member's key, for batch data sealed for the availability committee.
    pub reader: Option<CommitteeReader>,
}

/// What opens batch data sealed for the availability committee: the committee file and
/// one member's key.
#[derive(Clone)]
pub struct CommitteeReader {
    /// The committee the data was sealed for.
    pub committee: pulse_dac::Committee,
    /// A member's key.
    pub key: std::sync::Arc<pulse_dac::MemberKey>,
}

impl std::fmt::Debug for CommitteeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitteeReader")
            .field("committee", &hex::encode(self.committee.id()))
            .field("member", &self.key.name())
            .finish()
    }
}

impl CommitteeReader {
    /// Loads the committee file and a member's key file.
    ///
    /// # Errors
    /// Either file unreadable or malformed.
    pub fn load(committee: &Path, key: &Path) -> Result<Self, pulse_dac::DacError> {
        Ok(Self {
            committee: pulse_dac::Committee::load(committee)?,
            key: std::sync::Arc::new(pulse_dac::MemberKey::load(key)?),
        })
    }
}

/// What a rebuild did.
#[derive(Clone, Debug, Serialize)]
pub struct RebuildReport {
    /// Batches replayed.
    pub batches: u64,
    /// Transactions replayed (padding slots not counted).
    pub transactions: u64,
    /// The rebuilt state's root (decimal).
    pub root: String,
    /// The contract's root (decimal).
    pub l1_root: String,
    /// Whether they are equal.
    pub matches: bool,
    /// The state directory written.
    pub out: PathBuf,
    /// Seconds taken.
    pub seconds: f64,
    /// Bytes of batch data read.
    pub data_bytes: u64,
}

/// Why a rebuild stopped.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The output directory already holds a state.
    #[error(
        "{0} already holds a rollup state or coordinator records; give --out an empty or new directory (a rebuild never overwrites a state)"
    )]
    OutputExists(PathBuf),
    /// The genesis does not give the root L1 started from.
    #[error("{0}")]
    Genesis(String),
    /// L1 could not be read.
    #[error("reading L1: {0}")]
    L1(#[from] L1Error),
    /// A batch's data is missing or wrong.
    #[error("batch {batch}: its data {cid} {reason}")]
    Data {
        /// The batch number.
        batch: u64,
        /// Its data CID (as L1 names it).
        cid: String,
        /// What is wrong.
        reason: String,
    },
    /// The state store failed.
    #[error("writing the rebuilt state: {0}")]
    State(#[from] StateError),
    /// The coordinator store failed.
    #[error("writing the rebuilt state: {0}")]
    Store(#[from] StoreError),
    /// The IPFS URL is not usable.
    #[error("the IPFS API: {0}")]
    Ipfs(String),
}

fn data_error(batch: u64, cid: &str, reason: impl Into<String>) -> RebuildError {
    RebuildError::Data {
        batch,
        cid: cid.to_owned(),
        reason: reason.into(),
    }
}

/// Checks `data` against the chunks L1 holds for batch `n`: the batch number, the chunk
/// count, and per chunk the roots and the commitment, recomputed from the slots.
///
/// # Errors
/// A message naming the first thing that does not match.
pub fn check_data(n: u64, data: &BatchData, l1: &[ChunkInputs]) -> Result<(), String> {
    if data.batch != n {
        return Err(format!("is the data of batch {}", data.batch));
    }
    if data.chunks.len() != l1.len() {
        return Err(format!(
            "has {} chunk(s) where L1 committed {}",
            data.chunks.len(),
            l1.len()
        ));
    }
    for (i, (c, l)) in data.chunks.iter().zip(l1).enumerate() {
        if c.root_before != l.root_before || c.root_after != l.root_after {
            return Err(format!("chunk {i}: its roots are not the ones L1 verified"));
        }
        if c.commitment != l.commitment {
            return Err(format!(
                "chunk {i}: its commitment is not the one L1 verified"
            ));
        }
        if c.slots.is_empty() {
            return Err(format!("chunk {i} has no slots"));
        }
        if c.computed_commitment(data.timestamp) != l.commitment {
            return Err(format!(
                "chunk {i}: its slots do not make the commitment L1 verified (the data was altered, or is not this batch's)"
            ));
        }
    }
    Ok(())
}

/// Where committed batches come from: L1 for their events and chunks, an IPFS node for
/// their data.
pub struct Source {
    l1_rpc: String,
    contract: Address,
    ipfs: pulse_ipfs::IpfsClient,
    fetch_timeout: Duration,
    deployment: pulse_circuits::deployment::Deployment,
    reader: Option<CommitteeReader>,
}

/// What applying one batch did.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchReplayed {
    /// Transactions replayed (padding not counted).
    pub transactions: u64,
    /// Bytes of batch data read.
    pub data_bytes: u64,
}

impl Source {
    /// Connects to L1 (reading the contract's deployment) and makes the IPFS client.
    ///
    /// # Errors
    /// [`RebuildError::L1`], [`RebuildError::Ipfs`].
    pub async fn connect(
        l1_rpc: &str,
        contract: Address,
        ipfs_url: &str,
        fetch_timeout: Duration,
        reader: Option<CommitteeReader>,
    ) -> Result<Self, RebuildError> {
        let ipfs = pulse_ipfs::IpfsClient::new(ipfs_url)
            .map_err(|e| RebuildError::Ipfs(e.to_string()))?
            .with_max_cat_bytes(pubdata::MAX_BYTES);
        let deployment = pulse_l1::read_deployment(l1_rpc, contract).await?;
        Ok(Self {
            l1_rpc: l1_rpc.to_owned(),
            contract,
            ipfs,
            fetch_timeout,
            deployment,
            reader,
        })
    }

    /// The deployment (read from the contract).
    pub fn deployment(&self) -> &pulse_circuits::deployment::Deployment {
        &self.deployment
    }

    /// The rollup's history on L1 now.
    ///
    /// # Errors
    /// [`RebuildError::L1`].
    pub async fn history(&self) -> Result<history::History, RebuildError> {
        Ok(history::history(&self.l1_rpc, self.contract).await?)
    }

    /// Fetches batch `event`'s data, checks it against the batch's chunks on L1, replays it
    /// onto `state` (which must hold the state before the batch) and commits it. With
    /// `keep`, the data is also added (pinned) to that IPFS node under the same CID, so that
    /// it stays available there.
    ///
    /// # Errors
    /// [`RebuildError::Data`] naming the batch and its CID when the data cannot be had, does
    /// not match L1, or does not replay to L1's roots (nothing is written);
    /// [`RebuildError::Genesis`] when batch 1 does not start from `state`'s root;
    /// [`RebuildError::L1`], [`RebuildError::State`].
    pub async fn apply(
        &self,
        state: &State,
        event: &BatchEvent,
        keep: Option<&pulse_ipfs::IpfsClient>,
    ) -> Result<BatchReplayed, RebuildError> {
        let n = event.number;
        let cid_text = event.data_cid.as_str();
        let chunks = history::batch_chunks(&self.l1_rpc, self.contract, event).await?;
        let root = state.roots()?.state_root();
        if chunks.first().map(|c| c.root_before) != Some(root) {
            return Err(if n == 1 {
                RebuildError::Genesis(format!(
                    "the genesis file gives the root {} but L1's first batch starts from another: it is not this deployment's genesis",
                    fr_to_decimal(&root)
                ))
            } else {
                RebuildError::Genesis(format!(
                    "batch {n} does not start from this state's root: the state is not at batch {}",
                    n - 1
                ))
            });
        }
        let cid: cid::Cid = cid_text
            .parse()
            .map_err(|e| data_error(n, cid_text, format!("is not a CID: {e}")))?;
        let bytes = self.ipfs.cat(&cid, self.fetch_timeout).await.map_err(|e| {
            data_error(
                n,
                cid_text,
                format!(
                    "cannot be had from the IPFS node: {e}; the data must be pinned on a node you can reach (the operator's, or an availability committee member's)"
                ),
            )
        })?;
        let plain = if bytes.starts_with(pulse_dac::seal::MAGIC) {
            let Some(r) = &self.reader else {
                return Err(data_error(
                    n,
                    cid_text,
                    "is encrypted for the deployment's availability committee: give a member's key \
                     and the committee file (--committee-key FILE --committee FILE), or ask a \
                     member for a state"
                        .to_owned(),
                ));
            };
            std::borrow::Cow::Owned(
                pulse_dac::open(&bytes, n, &r.committee, &r.key)
                    .map_err(|e| data_error(n, cid_text, e.to_string()))?,
            )
        } else {
            std::borrow::Cow::Borrowed(bytes.as_slice())
        };
        let data = BatchData::from_json(&plain).map_err(|e| data_error(n, cid_text, e))?;
        check_data(n, &data, &chunks).map_err(|e| data_error(n, cid_text, e))?;
        let mut done = BatchReplayed {
            transactions: 0,
            data_bytes: bytes.len() as u64,
        };
        let mut batch = state.begin(data.timestamp, &self.deployment)?;
        for (i, (c, l)) in data.chunks.iter().zip(&chunks).enumerate() {
            for (j, s) in c.slots.iter().enumerate() {
                match batch.replay(&s.to_public()) {
                    Ok(_) => {}
                    Err(ReplayError::Storage(e)) => return Err(e.into()),
                    Err(ReplayError::Inconsistent(why)) => {
                        return Err(data_error(
                            n,
                            cid_text,
                            format!("chunk {i} slot {j} does not replay: {why}"),
                        ));
                    }
                }
                if s.kind != TxKind::Noop {
                    done.transactions += 1;
                }
            }
            if batch.roots().state_root() != l.root_after {
                return Err(data_error(
                    n,
                    cid_text,
                    format!("chunk {i} replays to a root other than the one L1 verified"),
                ));
            }
        }
        if let Some(node) = keep {
            let kept = node.add(bytes).await.map_err(|e| {
                data_error(
                    n,
                    cid_text,
                    format!("could not be pinned on the follower's IPFS node: {e}"),
                )
            })?;
            if kept != cid {
                return Err(data_error(
                    n,
                    cid_text,
                    format!(
                        "was added to the follower's IPFS node as {kept}, another CID (other add settings?)"
                    ),
                ));
            }
        }
        batch.commit()?;
        Ok(done)
    }
}

/// Rebuilds the state into `config.out`; `progress(done, total)` is called after each batch.
///
/// # Errors
/// [`RebuildError`]: the first batch that could not be fetched, checked or replayed, by
/// number and CID, or L1, IPFS or the disk failing.
pub async fn rebuild(
    config: &RebuildConfig,
    mut progress: impl FnMut(u64, u64),
) -> Result<RebuildReport, RebuildError> {
    let started = Instant::now();
    let state_path = config.out.join(STATE_FILE);
    if state_path.exists() || config.out.join(STORE_FILE).exists() {
        return Err(RebuildError::OutputExists(config.out.clone()));
    }
    let source = Source::connect(
        &config.l1_rpc,
        config.contract,
        &config.ipfs_url,
        config.fetch_timeout,
        config.reader.clone(),
    )
    .await?;
    let history = source.history().await?;
    let total = history.batch_number;

    // Built under a temporary name: a rebuild that stops leaves no state a coordinator
    // could mistake for a whole one.
    std::fs::create_dir_all(&config.out)
        .map_err(|e| StateError::Storage(format!("cannot create {}: {e}", config.out.display())))?;
    let partial = config.out.join(format!("{STATE_FILE}.partial"));
    let _ = std::fs::remove_file(&partial);
    let state = State::open(&partial, config.genesis.depth)?;
    state.init_genesis(&config.genesis.registrars)?;

    let mut transactions = 0u64;
    let mut data_bytes = 0u64;
    for event in &history.events {
        let done = source.apply(&state, event, None).await?;
        transactions += done.transactions;
        data_bytes += done.data_bytes;
        progress(event.number, total);
    }
    let root = state.roots()?.state_root();
    let l1_root = pulse_l1::contract::fr_from_word(history.state_root)
        .ok_or_else(|| L1Error::BadAnswer("the contract's root is not a field element".into()))?;
    if history.events.is_empty() && root != l1_root {
        return Err(RebuildError::Genesis(format!(
            "the genesis file gives the root {} but the contract holds {}: it is not this deployment's genesis",
            fr_to_decimal(&root),
            fr_to_decimal(&l1_root)
        )));
    }
    drop(state);
    let store = Store::open(&config.out.join(STORE_FILE))?;
    store.set_rebuilt_through(total)?;
    drop(store);
    std::fs::rename(&partial, &state_path).map_err(|e| {
        StateError::Storage(format!("cannot move the rebuilt state into place: {e}"))
    })?;
    Ok(RebuildReport {
        batches: total,
        transactions,
        root: fr_to_decimal(&root),
        l1_root: fr_to_decimal(&l1_root),
        matches: root == l1_root,
        out: config.out.clone(),
        seconds: started.elapsed().as_secs_f64(),
        data_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubdata::{ChunkData, SlotData};
    use pulse_circuits::Fr;

    const T: u64 = 1_800_000_000;

    /// A batch of two chunks whose commitments are right, and L1's view of it.
    fn batch() -> (BatchData, Vec<ChunkInputs>) {
        let slot = |kind, actor, object, p: u64| SlotData {
            kind,
            actor,
            object,
            payload: [Fr::from(p), Fr::from(p + 1), Fr::from(1u64), Fr::from(0u64)],
            cid: None,
        };
        let mut chunks = vec![
            ChunkData {
                root_before: Fr::from(10u64),
                root_after: Fr::from(11u64),
                commitment: Fr::from(0u64),
                slots: vec![
                    slot(TxKind::Register, 2, 0, 5),
                    slot(TxKind::Grant, 2, 1, 3),
                ],
            },
            ChunkData {
                root_before: Fr::from(11u64),
                root_after: Fr::from(12u64),
                commitment: Fr::from(0u64),
                slots: vec![
                    slot(TxKind::Revoke, 2, 1, 1),
                    SlotData {
                        kind: TxKind::Noop,
                        actor: 0,
                        object: 0,
                        payload: [Fr::from(0u64); 4],
                        cid: None,
                    },
                ],
            },
        ];
        for c in &mut chunks {
            c.commitment = c.computed_commitment(T);
        }
        let l1 = chunks
            .iter()
            .map(|c| ChunkInputs {
                root_before: c.root_before,
                root_after: c.root_after,
                commitment: c.commitment,
            })
            .collect();
        (
            BatchData {
                version: pubdata::VERSION,
                batch: 4,
                timestamp: T,
                chunks,
            },
            l1,
        )
    }

    #[test]
    fn the_published_data_of_a_batch_checks_against_l1() {
        let (data, l1) = batch();
        check_data(4, &data, &l1).expect("matches");
        // It survives its JSON form.
        let again = BatchData::from_json(&serde_json::to_vec(&data).expect("json")).expect("reads");
        assert_eq!(again, data);
        check_data(4, &again, &l1).expect("matches");
    }

    #[test]
    fn altered_data_is_refused_naming_what_differs() {
        let (data, l1) = batch();
        let refused = |d: &BatchData, n: u64, needle: &str| {
            let e = check_data(n, d, &l1).expect_err("refused");
            assert!(e.contains(needle), "`{e}` lacks `{needle}`");
        };
        refused(&data, 5, "is the data of batch 4");
        let mut d = data.clone();
        d.chunks[1].slots[0].payload[0] = Fr::from(2u64);
        refused(&d, 4, "chunk 1: its slots do not make the commitment");
        let mut d = data.clone();
        d.chunks[0].slots[1].object = 2;
        refused(&d, 4, "chunk 0: its slots do not make the commitment");
        let mut d = data.clone();
        d.timestamp += 1;
        refused(&d, 4, "chunk 0: its slots do not make the commitment");
        let mut d = data.clone();
        d.chunks[0].root_after = Fr::from(99u64);
        refused(&d, 4, "chunk 0: its roots");
        let mut d = data.clone();
        d.chunks.pop();
        refused(&d, 4, "has 1 chunk(s) where L1 committed 2");
        let mut d = data.clone();
        d.chunks[1].commitment = Fr::from(1u64);
        refused(&d, 4, "chunk 1: its commitment");
    }

    #[test]
    fn batch_data_that_is_not_pulse_data_gets_a_clear_error() {
        for (bytes, needle) in [
            (b"{}".to_vec(), "not Pulse batch data"),
            (
                br#"{"version":9,"batch":1,"timestamp":1,"chunks":[]}"#.to_vec(),
                "version 9 is not one this build reads",
            ),
            (
                br#"{"version":1,"batch":1,"timestamp":1,"chunks":[],"extra":1}"#.to_vec(),
                "unknown field",
            ),
            (vec![b' '; pubdata::MAX_BYTES + 1], "more than the"),
        ] {
            let e = BatchData::from_json(&bytes).expect_err("refused");
            assert!(e.contains(needle), "`{e}` lacks `{needle}`");
        }
    }

    #[test]
    fn a_genesis_file_reads_back_and_a_wrong_one_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("genesis.json");
        let key = pulse_circuits::eddsa::PrivateKey::random(&mut rand::rngs::OsRng);
        let g = Genesis {
            version: 1,
            depth: 8,
            registrars: vec![key.public_key()],
        };
        g.save(&path).expect("save");
        assert_eq!(Genesis::load(&path).expect("load"), g);
        std::fs::write(&path, r#"{"version":1,"depth":99,"registrars":[]}"#).expect("write");
        let e = Genesis::load(&path).expect_err("refused");
        assert!(e.contains("depth 99") && e.contains("genesis.json"), "{e}");
        std::fs::write(&path, "not json").expect("write");
        let e = Genesis::load(&path).expect_err("refused");
        assert!(e.contains("not a Pulse genesis file"), "{e}");
    }
}
