//! Structure-aware inputs: JSON values derived with `arbitrary` from the protocol's own keys
//! and words (so that decoders get past "unknown field" at once and reach their checks of
//! values), serialised, then mutated by a few byte edits (so that the text around the
//! structure is fuzzed too).

use arbitrary::Arbitrary;
use serde_json::{Map, Number, Value};

/// Every key the protocol's JSON forms use: messages, transactions, witnesses, proofs,
/// key files, envelopes and credentials.
const KEYS: &[&str] = &[
    "v", "version", "kind", "type", "job_id", "batch", "chunk", "attempt", "circuit_id",
    "slots", "depth", "pk_hash", "vk_hash", "witness", "timestamp", "deployment",
    "roots_before", "roots_after", "accounts", "records", "grants", "tx", "signer", "nonce",
    "payload", "r8", "x", "y", "s", "a_index", "a_leaf", "pk", "role", "a_path", "b_index",
    "b_path", "b_record", "owner", "uploader", "cid_digest", "metadata_hash", "b_grant",
    "patient", "grantee", "scope", "permissions", "expires_at", "active", "c_index",
    "c_grant", "c_path", "worker_id", "outcome", "proof", "witness_seconds", "prove_seconds",
    "backend", "reason", "tx_hash", "status", "new_account", "new_record", "new_grant",
    "message", "l1_tx", "device", "memory_bytes", "circuits", "jobs_done", "current_job",
    "heartbeat_at", "signature", "public_key", "cid", "grant", "record", "purpose",
    "public_inputs", "private_key", "account", "user", "nkey_seed", "nonce", "ciphertext",
    "keys", "wrapped", "ephemeral", "record_cid", "share", "read", "write",
];

/// Words the protocol's values take: kinds, roles, outcomes, statuses, backends.
const WORDS: &[&str] = &[
    "register", "add_record", "grant", "revoke", "access_log", "noop", "patient", "doctor",
    "registrar", "all", "proved", "failed", "accepted", "rejected", "committed", "cpu", "cuda",
    "opencl", "coordinator", "worker", "client", "operator", "pulse-record", "pulse-key-share",
    "0", "1", "-1", "21888242871839275222246405745257275088548364400416722680616583940890368",
    "21888242871839275222246405745257275088548364400416722680616583940890369",
    "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
    "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u", "b1-c0-g0", "0x", "",
];

/// A JSON value built from the protocol's keys and words.
#[derive(Arbitrary, Debug)]
pub enum Val {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A small number.
    Small(u8),
    /// Any unsigned number.
    Unsigned(u64),
    /// A negative number.
    Negative(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(Word),
    /// An array.
    Array(Vec<Val>),
    /// An object.
    Object(Vec<(Key, Val)>),
}

/// A key: one of the protocol's, or any string.
#[derive(Arbitrary, Debug)]
pub enum Key {
    /// One of [`KEYS`].
    Known(u8),
    /// Any string.
    Other(String),
}

/// A string value: one of the protocol's words, a decimal, hex, or any string.
#[derive(Arbitrary, Debug)]
pub enum Word {
    /// One of [`WORDS`].
    Known(u8),
    /// A decimal number as text (field elements are written so).
    Decimal(u128),
    /// Hex bytes, with `0x` or without.
    Hex(bool, Vec<u8>),
    /// Any string.
    Other(String),
}

impl Key {
    fn text(&self) -> String {
        match self {
            Self::Known(i) => KEYS[usize::from(*i) % KEYS.len()].to_owned(),
            Self::Other(s) => s.clone(),
        }
    }
}

impl Word {
    fn text(&self) -> String {
        match self {
            Self::Known(i) => WORDS[usize::from(*i) % WORDS.len()].to_owned(),
            Self::Decimal(n) => n.to_string(),
            Self::Hex(prefixed, bytes) => {
                format!("{}{}", if *prefixed { "0x" } else { "" }, hex::encode(bytes))
            }
            Self::Other(s) => s.clone(),
        }
    }
}

impl Val {
    /// The JSON value.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Small(n) => Value::from(*n),
            Self::Unsigned(n) => Value::from(*n),
            Self::Negative(n) => Value::from(*n),
            Self::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Str(w) => Value::String(w.text()),
            Self::Array(xs) => Value::Array(xs.iter().map(Val::to_json).collect()),
            Self::Object(kvs) => {
                let mut m = Map::new();
                for (k, v) in kvs {
                    m.insert(k.text(), v.to_json());
                }
                Value::Object(m)
            }
        }
    }
}

/// The structure-aware input: which decoder reads it, the value, and byte edits applied to
/// its serialised text.
#[derive(Arbitrary, Debug)]
pub struct Structured {
    /// Which decoder ([`crate::targets::structured`]).
    pub kind: u8,
    /// The value.
    pub value: Val,
    /// Byte edits: position (modulo the length) and new byte.
    pub edits: Vec<(u16, u8)>,
}

impl Structured {
    /// The bytes the decoder reads: the value's JSON text with the edits applied.
    pub fn bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(&self.value.to_json()).unwrap_or_default();
        for (at, b) in self.edits.iter().take(8) {
            if !bytes.is_empty() {
                let i = usize::from(*at) % bytes.len();
                bytes[i] = *b;
            }
        }
        bytes
    }
}
