//! A batch's public data, as published to IPFS: what anyone needs to rebuild the state and
//! check it against the chunk commitments on L1 (each chunk's commitment is the Poseidon
//! chain over the timestamp and these per-slot entries, see `pulse_circuits::circuit`).

use pulse_circuits::Fr;
use pulse_circuits::circuit::pubdata_start;
use pulse_circuits::field::{fr_string, fr_string_array};
use pulse_circuits::tx::TxKind;
use serde::{Deserialize, Serialize};

use crate::store::BatchRecord;

/// The batch's public data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
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
}

/// The public data of a sealed batch.
pub fn of(b: &BatchRecord) -> BatchData {
    BatchData {
        version: 1,
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
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}
