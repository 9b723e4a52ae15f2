//! A batch's public data, as published to IPFS: what anyone needs to rebuild the state and
//! check it against the chunk commitments on L1 (each chunk's commitment is the Poseidon
//! chain over the timestamp and these per-slot entries, see `pulse_circuits::circuit`).
//!
//! Version 2 adds each added record's full CID (the commitment binds its digest), so that a
//! rebuilt state answers record lookups as the coordinator's own does. Version 1 data still
//! reads; records rebuilt from it have no CID.

use pulse_circuits::Fr;
use pulse_circuits::circuit::{pubdata_start, pubdata_step};
use pulse_circuits::field::{fr_string, fr_string_array};
use pulse_circuits::state::PublicSlot;
use pulse_circuits::tx::{TxFields, TxKind};
use serde::{Deserialize, Serialize};

use crate::store::BatchRecord;

/// The format version written.
pub const VERSION: u32 = 2;

/// The largest batch data read (a batch of 100,000 transactions is about 40 MB).
pub const MAX_BYTES: usize = 64 << 20;

/// The batch's public data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BatchData {
    /// Format version.
    pub version: u32,
    /// The batch number.
    pub batch: u64,
    /// The batch time (unix seconds).
    pub timestamp: u64,
    /// The chunks.
    pub chunks: Vec<ChunkData>,
}

/// One chunk's public data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChunkData {
    /// State root before.
    #[serde(with = "fr_string")]
    pub root_before: Fr,
    /// State root after.
    #[serde(with = "fr_string")]
    pub root_after: Fr,
    /// The commitment (the chunk proof's third public input).
    #[serde(with = "fr_string")]
    pub commitment: Fr,
    /// Per slot: kind, actor, object, payload.
    pub slots: Vec<SlotData>,
}

/// One slot's public data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SlotData {
    /// The transaction kind.
    pub kind: TxKind,
    /// The acting account.
    pub actor: u64,
    /// The object written (account, record or grant id).
    pub object: u64,
    /// The payload.
    #[serde(with = "fr_string_array")]
    pub payload: [Fr; 4],
    /// An added record's CID (version 2 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
}

impl SlotData {
    /// The slot as the state replays it.
    pub fn to_public(&self) -> PublicSlot {
        PublicSlot {
            kind: self.kind,
            actor: self.actor,
            object: self.object,
            payload: self.payload,
            cid: self.cid.clone(),
        }
    }
}

impl ChunkData {
    /// The commitment the chunk's slots make with the batch time, as the chunk circuit
    /// computes it.
    pub fn computed_commitment(&self, timestamp: u64) -> Fr {
        self.slots.iter().fold(pubdata_start(timestamp), |c, s| {
            let fields = TxFields {
                kind: s.kind,
                signer: 0,
                nonce: 0,
                payload: s.payload,
            };
            pubdata_step(c, &fields, s.actor, s.object)
        })
    }
}

impl BatchData {
    /// Reads batch data (JSON) as published.
    ///
    /// # Errors
    /// A message naming what is wrong: too large, not JSON of this form, or a version this
    /// build does not read.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_BYTES {
            return Err(format!(
                "{} bytes, more than the {MAX_BYTES} batch data may have",
                bytes.len()
            ));
        }
        let d: Self =
            serde_json::from_slice(bytes).map_err(|e| format!("not Pulse batch data: {e}"))?;
        if !(1..=VERSION).contains(&d.version) {
            return Err(format!(
                "version {} is not one this build reads (1 to {VERSION}); upgrade pulse",
                d.version
            ));
        }
        Ok(d)
    }
}

/// The public data of a sealed batch; `cid_of` gives an added record's CID by record id.
pub fn of(b: &BatchRecord, cid_of: impl Fn(u64) -> Option<String>) -> BatchData {
    BatchData {
        version: VERSION,
        batch: b.number,
        timestamp: b.timestamp,
        chunks: b
            .chunks
            .iter()
            .map(|w| {
                let [root_before, root_after, commitment] = match w.public_inputs()[..] {
                    [a, b, c, _deployment] => [a, b, c],
                    _ => [pubdata_start(w.timestamp); 3],
                };
                ChunkData {
                    root_before,
                    root_after,
                    commitment,
                    slots: w
                        .slots
                        .iter()
                        .map(|s| SlotData {
                            kind: s.tx.kind,
                            actor: s.a_index,
                            object: s.b_index,
                            payload: s.tx.payload,
                            cid: (s.tx.kind == TxKind::AddRecord)
                                .then(|| cid_of(s.b_index))
                                .flatten(),
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}
