//! Pulse transactions: the five kinds a client can sign, their canonical binary encoding,
//! their JSON form (version [`TX_JSON_VERSION`]), their hash and the message that is signed.
//!
//! # The signed message
//! Every transaction is reduced to a kind, a signer, a nonce and four payload field elements
//! `p1..p4` ([`TxFields`]). The message signed with EdDSA-Poseidon, which is also the
//! transaction hash, is
//!
//! ```text
//! msg = poseidon([kind + 8·signer + 2^67·nonce, p1, p2, p3, p4, D])
//! D   = uint256(keccak256(abi.encode(uint256 chainId, address rollupContract))) mod r
//! ```
//!
//! where `poseidon` is circomlib's Poseidon over six inputs and `D` is the deployment id
//! ([`crate::deployment`]): the keccak256 of the chain id as a 32-byte big-endian word
//! followed by the rollup contract's address left-padded to 32 bytes, as a big-endian
//! integer reduced modulo the BN254 scalar field order
//! `r = 21888242871839275222246405745257275088548364400416034343698204186575808495617`.
//! The contract returns `D` from `deploymentId()`. Binding `D` into the message means a
//! transaction signed for one deployment (chain and contract) is refused by every other,
//! natively and by the chunk circuit, and that the same transaction has a different hash
//! on each deployment. A circomlibjs wallet signs it as
//!
//! ```js
//! const { ethers } = require("ethers"); // v5, a dependency of circomlibjs
//! const r = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
//! const D = BigInt(ethers.utils.keccak256(ethers.utils.defaultAbiCoder.encode(
//!   ["uint256", "address"], [chainId, rollupContract]))) % r;
//! const header = BigInt(kind) + 8n * BigInt(signer) + (1n << 67n) * BigInt(nonce);
//! const msg = poseidon([header, p1, p2, p3, p4, D]);           // circomlibjs buildPoseidon
//! const sig = eddsa.signPoseidon(privateKey, msg);             // circomlibjs buildEddsa
//! ```
//!
//! | kind            | code | p1          | p2          | p3          | p4         |
//! |-----------------|------|-------------|-------------|-------------|------------|
//! | padding no-op   | 0    | 0           | 0           | 0           | 0          |
//! | `register`      | 1    | public key x| public key y| role        | 0          |
//! | `add_record`    | 2    | patient id  | CID digest  | metadata    | grant id   |
//! | `grant`         | 3    | grantee id  | scope       | permissions | expires at |
//! | `revoke`        | 4    | grant id    | 0           | 0           | 0          |
//! | `access_log`    | 5    | record id   | grant id    | purpose     | 0          |
//!
//! A `register` with signer 0 is a patient registering itself: it is signed by the new key
//! with nonce 0, and the sequencer assigns the account id. Account, record and grant ids
//! start at 1. A scope of 0 means all of the patient's records, otherwise one record id.
//! Permissions are bits: 1 read, 2 write.
//!
//! # JSON form (version 1)
//! ```json
//! { "version": 1, "type": "grant", "signer": 4, "nonce": 2,
//!   "grantee": 7, "scope": "all", "permissions": ["read"], "expires_at": 1767225600,
//!   "signature": { "r8": ["…", "…"], "s": "…" } }
//! ```
//! Field elements and points are decimal strings; a CID is its usual string form (any CID
//! version); `scope` is `"all"` or `{ "record": ID }`. Unknown fields, and a field given
//! twice at any depth ([`crate::json`]), are refused. The form does not name the deployment:
//! the receiver checks the signature against its own.

use std::fmt;

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField, Zero};
use cid::Cid;
use serde::{Deserialize, Serialize};

use crate::babyjubjub::Point;
use crate::deployment::{Deployment, DeploymentId};
use crate::eddsa::{PrivateKey, PublicKey, Signature};
pub use crate::field::{fr_from_decimal, fr_string, fr_to_decimal};
use crate::json::check_unique_keys_str;
use crate::poseidon;

/// The version of the JSON form and of the binary encoding.
pub const TX_JSON_VERSION: u32 = 1;
/// The longest CID accepted, in bytes (five 31-byte field chunks).
pub const MAX_CID_BYTES: usize = 155;
/// The largest accepted JSON transaction, in bytes.
pub const MAX_TX_JSON_BYTES: usize = 8 * 1024;

/// What an account is allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Owns records, grants and revokes access. Registers itself.
    Patient = 1,
    /// Uploads records under a write grant and logs access under a read grant.
    Doctor = 2,
    /// Registers doctors (and other registrars).
    Registrar = 3,
}

impl Role {
    /// The code stored in the account leaf.
    pub fn code(self) -> u64 {
        self as u64
    }

    /// The role for a stored code.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            1 => Some(Self::Patient),
            2 => Some(Self::Doctor),
            3 => Some(Self::Registrar),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Patient => "patient",
            Self::Doctor => "doctor",
            Self::Registrar => "registrar",
        })
    }
}

/// What a grant covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every record of the patient, present and future.
    All,
    /// One record.
    Record(u64),
}

impl Scope {
    /// The code stored in the grant leaf: 0 for all records, else the record id.
    pub fn code(self) -> u64 {
        match self {
            Self::All => 0,
            Self::Record(id) => id,
        }
    }

    /// The scope for a stored code.
    pub fn from_code(code: u64) -> Self {
        if code == 0 {
            Self::All
        } else {
            Self::Record(code)
        }
    }

    /// Whether the scope covers `record`.
    pub fn covers(self, record: u64) -> bool {
        match self {
            Self::All => true,
            Self::Record(id) => id == record,
        }
    }
}

/// One permission a grant can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read records and log access.
    Read,
    /// Add records for the patient.
    Write,
}

/// A set of permissions; stored as bits (1 read, 2 write).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Permissions {
    /// May read.
    pub read: bool,
    /// May write.
    pub write: bool,
}

impl Permissions {
    /// The stored bits.
    pub fn bits(self) -> u64 {
        u64::from(self.read) | (u64::from(self.write) << 1)
    }

    /// Permissions from stored bits; `None` for bits outside 1..=3.
    pub fn from_bits(bits: u64) -> Option<Self> {
        match bits {
            1..=3 => Some(Self {
                read: bits & 1 == 1,
                write: bits & 2 == 2,
            }),
            _ => None,
        }
    }
}

impl Serialize for Permissions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = Vec::new();
        if self.read {
            v.push(Permission::Read);
        }
        if self.write {
            v.push(Permission::Write);
        }
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<Permission>::deserialize(d)?;
        let p = Self {
            read: v.contains(&Permission::Read),
            write: v.contains(&Permission::Write),
        };
        if p.bits() == 0 {
            return Err(serde::de::Error::custom(
                "permissions must name at least one of \"read\" and \"write\"",
            ));
        }
        Ok(p)
    }
}

/// The kind of a transaction, with its code in the signed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    /// A padding slot.
    Noop = 0,
    /// Register an account.
    Register = 1,
    /// Add a record.
    AddRecord = 2,
    /// Grant access.
    Grant = 3,
    /// Revoke a grant.
    Revoke = 4,
    /// Log an access.
    AccessLog = 5,
}

impl TxKind {
    /// Every kind a client can submit (all but the padding no-op).
    pub const SIGNED: [TxKind; 5] = [
        Self::Register,
        Self::AddRecord,
        Self::Grant,
        Self::Revoke,
        Self::AccessLog,
    ];

    /// The code in the signed message.
    pub fn code(self) -> u64 {
        self as u64
    }

    /// A short stable name (used as a metrics label and in JSON).
    pub fn name(self) -> &'static str {
        match self {
            Self::Noop => "noop",
            Self::Register => "register",
            Self::AddRecord => "add_record",
            Self::Grant => "grant",
            Self::Revoke => "revoke",
            Self::AccessLog => "access_log",
        }
    }
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TxBody {
    /// Register an account with this public key and role.
    Register {
        /// The new account's key (circomlib BabyJubJub form).
        public_key: PublicKey,
        /// The new account's role.
        role: Role,
    },
    /// Add a record for `patient`: an encrypted file on IPFS.
    AddRecord {
        /// The patient who owns the record.
        patient: u64,
        /// The CID of the encrypted file.
        #[serde(with = "cid_string")]
        cid: Cid,
        /// A hash of the record's metadata (type, date), as a field element.
        #[serde(with = "fr_string")]
        metadata_hash: Fr,
        /// The write grant a doctor uploads under; absent when the patient uploads.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grant: Option<u64>,
    },
    /// Grant `grantee` access to the signer's records.
    Grant {
        /// The account receiving access.
        grantee: u64,
        /// Which records.
        scope: Scope,
        /// What it may do.
        permissions: Permissions,
        /// Unix seconds after which the grant no longer holds.
        expires_at: u64,
    },
    /// Revoke one of the signer's grants.
    Revoke {
        /// The grant id.
        grant: u64,
    },
    /// Record that the signer (a doctor) read a record under a grant.
    AccessLog {
        /// The record read.
        record: u64,
        /// The grant that allowed it.
        grant: u64,
        /// A hash of the purpose of access, as a field element.
        #[serde(with = "fr_string")]
        purpose: Fr,
    },
}

impl TxBody {
    /// The kind of this body.
    pub fn kind(&self) -> TxKind {
        match self {
            Self::Register { .. } => TxKind::Register,
            Self::AddRecord { .. } => TxKind::AddRecord,
            Self::Grant { .. } => TxKind::Grant,
            Self::Revoke { .. } => TxKind::Revoke,
            Self::AccessLog { .. } => TxKind::AccessLog,
        }
    }
}

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// The signing account; 0 for a patient registering itself.
    pub signer: u64,
    /// The signer's nonce: the number of its transactions already applied.
    pub nonce: u64,
    /// What it does.
    pub body: TxBody,
}

/// The field-element view of a transaction: what the circuit sees and what is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxFields {
    /// The kind.
    pub kind: TxKind,
    /// The signer.
    pub signer: u64,
    /// The nonce.
    pub nonce: u64,
    /// The payload `p1..p4` (see the module table).
    #[serde(with = "crate::field::fr_string_array")]
    pub payload: [Fr; 4],
}

impl TxFields {
    /// The padding no-op.
    pub fn noop() -> Self {
        Self {
            kind: TxKind::Noop,
            signer: 0,
            nonce: 0,
            payload: [Fr::zero(); 4],
        }
    }

    /// `kind + 8·signer + 2^67·nonce`, the first input of the message hash.
    pub fn header(&self) -> Fr {
        let two67 = Fr::from(1u128 << 67);
        Fr::from(self.kind.code())
            + Fr::from(8u64) * Fr::from(self.signer)
            + two67 * Fr::from(self.nonce)
    }

    /// The message signed for `deployment`, which is also the transaction hash there.
    pub fn message(&self, deployment: DeploymentId) -> Fr {
        let [p1, p2, p3, p4] = self.payload;
        poseidon::hash_n([self.header(), p1, p2, p3, p4, deployment.0])
    }
}

/// The CID digest that stands for a CID in the state and the circuit:
/// `poseidon([len, c0, c1, c2, c3, c4])` over the CID's bytes cut into 31-byte
/// little-endian chunks (zero when absent).
///
/// # Errors
/// [`TxError::MalformedCid`] when the CID is longer than [`MAX_CID_BYTES`].
pub fn cid_digest(cid: &Cid) -> Result<Fr, TxError> {
    let bytes = cid.to_bytes();
    if bytes.len() > MAX_CID_BYTES {
        return Err(TxError::MalformedCid(format!(
            "the CID is {} bytes long; Pulse accepts at most {MAX_CID_BYTES}",
            bytes.len()
        )));
    }
    let mut inputs = [Fr::zero(); 6];
    inputs[0] = Fr::from(bytes.len() as u64);
    for (i, chunk) in bytes.chunks(31).enumerate() {
        inputs[i + 1] = Fr::from_le_bytes_mod_order(chunk);
    }
    Ok(poseidon::hash_n(inputs))
}

impl Transaction {
    /// The field-element view.
    ///
    /// # Errors
    /// [`TxError::MalformedCid`] for a CID that is too long.
    pub fn fields(&self) -> Result<TxFields, TxError> {
        let z = Fr::zero();
        let payload = match &self.body {
            TxBody::Register { public_key, role } => {
                [public_key.0.x, public_key.0.y, Fr::from(role.code()), z]
            }
            TxBody::AddRecord {
                patient,
                cid,
                metadata_hash,
                grant,
            } => [
                Fr::from(*patient),
                cid_digest(cid)?,
                *metadata_hash,
                Fr::from(grant.unwrap_or(0)),
            ],
            TxBody::Grant {
                grantee,
                scope,
                permissions,
                expires_at,
            } => [
                Fr::from(*grantee),
                Fr::from(scope.code()),
                Fr::from(permissions.bits()),
                Fr::from(*expires_at),
            ],
            TxBody::Revoke { grant } => [Fr::from(*grant), z, z, z],
            TxBody::AccessLog {
                record,
                grant,
                purpose,
            } => [Fr::from(*record), Fr::from(*grant), *purpose, z],
        };
        Ok(TxFields {
            kind: self.body.kind(),
            signer: self.signer,
            nonce: self.nonce,
            payload,
        })
    }

    /// The message signed for `deployment` (also the transaction hash there).
    ///
    /// # Errors
    /// As [`Transaction::fields`].
    pub fn message(&self, deployment: DeploymentId) -> Result<Fr, TxError> {
        Ok(self.fields()?.message(deployment))
    }

    /// Sign with `key` for `deployment`: only that deployment accepts the signature.
    ///
    /// # Errors
    /// As [`Transaction::fields`].
    pub fn sign(
        self,
        key: &PrivateKey,
        deployment: DeploymentId,
    ) -> Result<SignedTransaction, TxError> {
        let signature = key.sign(self.message(deployment)?);
        Ok(SignedTransaction {
            tx: self,
            signature,
        })
    }
}

/// A transaction with its EdDSA-Poseidon signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// The signature over [`Transaction::message`] for the deployment it was signed for
    /// (which the JSON form does not carry: the receiver verifies against its own).
    pub signature: Signature,
}

/// A transaction hash: the signed message as 32 big-endian bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxHash(pub [u8; 32]);

impl TxHash {
    /// The hash of a message.
    pub fn of(message: Fr) -> Self {
        let mut b = [0u8; 32];
        b.copy_from_slice(&message.into_bigint().to_bytes_be());
        Self(b)
    }
}

impl fmt::Display for TxHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for TxHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Serialize)]
struct SignedTxJson {
    version: u32,
    signer: u64,
    nonce: u64,
    #[serde(flatten)]
    body: serde_json::Value,
    signature: Signature,
}

impl SignedTransaction {
    /// The transaction hash on `deployment`.
    ///
    /// # Errors
    /// As [`Transaction::fields`].
    pub fn hash(&self, deployment: DeploymentId) -> Result<TxHash, TxError> {
        Ok(TxHash::of(self.tx.message(deployment)?))
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        let body = serde_json::to_value(&self.tx.body).unwrap_or(serde_json::Value::Null);
        let j = SignedTxJson {
            version: TX_JSON_VERSION,
            signer: self.tx.signer,
            nonce: self.tx.nonce,
            body,
            signature: self.signature.clone(),
        };
        serde_json::to_string(&j).unwrap_or_default()
    }

    /// Parse the JSON form, refusing unknown versions, unknown or repeated fields and
    /// oversized input.
    ///
    /// # Errors
    /// [`TxError::Json`] naming what is wrong.
    pub fn from_json(text: &str) -> Result<Self, TxError> {
        if text.len() > MAX_TX_JSON_BYTES {
            return Err(TxError::Json(format!(
                "the transaction is {} bytes; the limit is {MAX_TX_JSON_BYTES}",
                text.len()
            )));
        }
        // Before the parse into a `Value`, which would keep the last of two `"role"`s.
        check_unique_keys_str(text).map_err(|e| TxError::Json(e.to_string()))?;
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| TxError::Json(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| TxError::Json("expected a JSON object".into()))?;
        match obj.get("version").and_then(|x| x.as_u64()) {
            Some(x) if x == u64::from(TX_JSON_VERSION) => {}
            Some(x) => {
                return Err(TxError::Json(format!(
                    "transaction version {x} is not supported; this node speaks version \
                     {TX_JSON_VERSION}"
                )));
            }
            None => {
                return Err(TxError::Json(
                    "missing field `version` (a number, 1)".into(),
                ));
            }
        }
        let mut body = obj.clone();
        let mut take = |k: &str| {
            body.remove(k)
                .ok_or_else(|| TxError::Json(format!("missing field `{k}`")))
        };
        take("version")?;
        let signer: u64 = serde_json::from_value(take("signer")?)
            .map_err(|e| TxError::Json(format!("field `signer`: {e}")))?;
        let nonce: u64 = serde_json::from_value(take("nonce")?)
            .map_err(|e| TxError::Json(format!("field `nonce`: {e}")))?;
        let signature: Signature = serde_json::from_value(take("signature")?)
            .map_err(|e| TxError::Json(format!("field `signature`: {e}")))?;
        let body: TxBody = serde_json::from_value(serde_json::Value::Object(body))
            .map_err(|e| TxError::Json(e.to_string()))?;
        Ok(Self {
            tx: Transaction {
                signer,
                nonce,
                body,
            },
            signature,
        })
    }

    /// The canonical binary encoding:
    /// `version u8 | kind u8 | signer u64 | nonce u64 | payload | r8.x | r8.y | s`, integers
    /// little-endian, field elements as 32 canonical little-endian bytes; payloads:
    /// register `x | y | role u8`, add_record `patient u64 | cid_len u16 | cid | metadata | grant u64 (0: none)`,
    /// grant `grantee u64 | scope u64 | permissions u8 | expires_at u64`, revoke `grant u64`,
    /// access_log `record u64 | grant u64 | purpose`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.push(TX_JSON_VERSION as u8);
        out.push(self.tx.body.kind().code() as u8);
        out.extend_from_slice(&self.tx.signer.to_le_bytes());
        out.extend_from_slice(&self.tx.nonce.to_le_bytes());
        match &self.tx.body {
            TxBody::Register { public_key, role } => {
                put_fr(&mut out, public_key.0.x);
                put_fr(&mut out, public_key.0.y);
                out.push(role.code() as u8);
            }
            TxBody::AddRecord {
                patient,
                cid,
                metadata_hash,
                grant,
            } => {
                out.extend_from_slice(&patient.to_le_bytes());
                let b = cid.to_bytes();
                out.extend_from_slice(&(b.len() as u16).to_le_bytes());
                out.extend_from_slice(&b);
                put_fr(&mut out, *metadata_hash);
                out.extend_from_slice(&grant.unwrap_or(0).to_le_bytes());
            }
            TxBody::Grant {
                grantee,
                scope,
                permissions,
                expires_at,
            } => {
                out.extend_from_slice(&grantee.to_le_bytes());
                out.extend_from_slice(&scope.code().to_le_bytes());
                out.push(permissions.bits() as u8);
                out.extend_from_slice(&expires_at.to_le_bytes());
            }
            TxBody::Revoke { grant } => out.extend_from_slice(&grant.to_le_bytes()),
            TxBody::AccessLog {
                record,
                grant,
                purpose,
            } => {
                out.extend_from_slice(&record.to_le_bytes());
                out.extend_from_slice(&grant.to_le_bytes());
                put_fr(&mut out, *purpose);
            }
        }
        put_fr(&mut out, self.signature.r8.x);
        put_fr(&mut out, self.signature.r8.y);
        let mut s = self.signature.s.to_bytes_le();
        s.resize(32, 0);
        out.extend_from_slice(&s[..32]);
        out
    }

    /// Decode the canonical binary encoding.
    ///
    /// # Errors
    /// [`TxError::Encoding`] naming the field that is truncated or out of range.
    pub fn decode(bytes: &[u8]) -> Result<Self, TxError> {
        let mut r = Reader { b: bytes, at: 0 };
        let version = r.u8("version")?;
        if u32::from(version) != TX_JSON_VERSION {
            return Err(TxError::Encoding(format!(
                "unsupported encoding version {version}"
            )));
        }
        let kind = r.u8("kind")?;
        let signer = r.u64("signer")?;
        let nonce = r.u64("nonce")?;
        let body = match kind {
            1 => {
                let x = r.fr("public key x")?;
                let y = r.fr("public key y")?;
                let code = r.u8("role")?;
                let role = Role::from_code(u64::from(code))
                    .ok_or_else(|| TxError::Encoding(format!("role code {code} is unknown")))?;
                TxBody::Register {
                    public_key: PublicKey(Point { x, y }),
                    role,
                }
            }
            2 => {
                let patient = r.u64("patient")?;
                let len = r.u16("cid length")? as usize;
                let cid_bytes = r.take(len, "cid")?;
                let cid =
                    Cid::try_from(cid_bytes).map_err(|e| TxError::MalformedCid(e.to_string()))?;
                let metadata_hash = r.fr("metadata hash")?;
                let grant = Some(r.u64("grant")?).filter(|g| *g != 0);
                TxBody::AddRecord {
                    patient,
                    cid,
                    metadata_hash,
                    grant,
                }
            }
            3 => {
                let grantee = r.u64("grantee")?;
                let scope = Scope::from_code(r.u64("scope")?);
                let bits = r.u8("permissions")?;
                let permissions = Permissions::from_bits(u64::from(bits)).ok_or_else(|| {
                    TxError::Encoding(format!("permission bits {bits} are not 1, 2 or 3"))
                })?;
                let expires_at = r.u64("expires_at")?;
                TxBody::Grant {
                    grantee,
                    scope,
                    permissions,
                    expires_at,
                }
            }
            4 => TxBody::Revoke {
                grant: r.u64("grant")?,
            },
            5 => {
                let record = r.u64("record")?;
                let grant = r.u64("grant")?;
                let purpose = r.fr("purpose")?;
                TxBody::AccessLog {
                    record,
                    grant,
                    purpose,
                }
            }
            k => {
                return Err(TxError::Encoding(format!(
                    "transaction kind {k} is unknown"
                )));
            }
        };
        let r8 = Point {
            x: r.fr("signature r8.x")?,
            y: r.fr("signature r8.y")?,
        };
        let s = num_bigint::BigUint::from_bytes_le(r.take(32, "signature s")?);
        if r.at != bytes.len() {
            return Err(TxError::Encoding(format!(
                "{} trailing bytes after the signature",
                bytes.len() - r.at
            )));
        }
        Ok(Self {
            tx: Transaction {
                signer,
                nonce,
                body,
            },
            signature: Signature { r8, s },
        })
    }
}

fn put_fr(out: &mut Vec<u8>, x: Fr) {
    out.extend_from_slice(&x.into_bigint().to_bytes_le());
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], TxError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| TxError::Encoding(format!("truncated: {what} needs {n} more bytes")))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, TxError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, TxError> {
        let s = self.take(2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, TxError> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    fn fr(&mut self, what: &str) -> Result<Fr, TxError> {
        let s = self.take(32, what)?;
        fr_from_le_canonical(s)
            .ok_or_else(|| TxError::Encoding(format!("{what} is not a canonical field element")))
    }
}

/// A field element from 32 little-endian bytes, refusing values not below the modulus.
pub fn fr_from_le_canonical(bytes: &[u8]) -> Option<Fr> {
    if bytes.len() != 32 {
        return None;
    }
    let x = Fr::from_le_bytes_mod_order(bytes);
    (x.into_bigint().to_bytes_le() == bytes).then_some(x)
}

mod cid_string {
    use super::*;

    pub fn serialize<S: serde::Serializer>(c: &Cid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&c.to_string())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Cid, D::Error> {
        let s = String::deserialize(d)?;
        let cid = Cid::try_from(s.as_str()).map_err(|e| {
            serde::de::Error::custom(format!(
                "`cid` is not a valid CID ({e}); pass the CID that \
                 IPFS returned when the encrypted file was added"
            ))
        })?;
        if cid.to_bytes().len() > MAX_CID_BYTES {
            return Err(serde::de::Error::custom(format!(
                "`cid` is longer than {MAX_CID_BYTES} bytes"
            )));
        }
        Ok(cid)
    }
}

/// Why a transaction is refused. Each variant names the problem and what to do; none of them
/// carries health data or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The JSON form could not be read.
    #[error("malformed transaction JSON: {0}; see the JSON form in the `pulse-circuits` tx docs")]
    Json(String),
    /// The binary form could not be read.
    #[error("malformed transaction encoding: {0}")]
    Encoding(String),
    /// The CID is not a valid CID or is too long.
    #[error("malformed CID: {0}")]
    MalformedCid(String),
    /// The signature does not verify for the signer's key on this deployment. A signature
    /// made for another deployment (chain or contract) ends here too: it is a signature over
    /// another message.
    #[error(
        "bad signature: {reason}. The signature is not valid for this deployment ({deployment}): \
         signatures are bound to one chain and rollup contract, so sign the transaction's \
         message for chain {chain}, contract {contract} with the signer's key",
        chain = deployment.chain_id,
        contract = deployment.contract_hex()
    )]
    BadSignature {
        /// Why verification failed.
        reason: String,
        /// The deployment the signature was checked against.
        deployment: Deployment,
    },
    /// The nonce was already used.
    #[error(
        "stale nonce {got}: account {account} is at nonce {expected}; re-sign with nonce {expected}"
    )]
    StaleNonce {
        /// The signer.
        account: u64,
        /// The nonce the account expects.
        expected: u64,
        /// The nonce in the transaction.
        got: u64,
    },
    /// The nonce is ahead of the account.
    #[error(
        "future nonce {got}: account {account} is at nonce {expected}; send the missing transactions first or re-sign with nonce {expected}"
    )]
    FutureNonce {
        /// The signer.
        account: u64,
        /// The nonce the account expects.
        expected: u64,
        /// The nonce in the transaction.
        got: u64,
    },
    /// An account named by the transaction does not exist.
    #[error("unknown account {0}: register it first")]
    UnknownAccount(u64),
    /// The public key is already registered.
    #[error("this public key is already registered as account {0}")]
    AccountExists(u64),
    /// A public key that is not a valid BabyJubJub point of the prime-order subgroup.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(String),
    /// The signer has the wrong role for this transaction.
    #[error("wrong role: {action} needs a {needed} account, account {account} is a {found}")]
    WrongRole {
        /// What was attempted.
        action: &'static str,
        /// The signer.
        account: u64,
        /// The role needed.
        needed: String,
        /// The signer's role.
        found: Role,
    },
    /// A patient self-registration that is not well formed.
    #[error("bad registration: {0}")]
    BadRegistration(String),
    /// The signer does not own the record or grant.
    #[error("not the owner: account {account} does not own {what}")]
    NotOwner {
        /// The signer.
        account: u64,
        /// What it tried to use.
        what: String,
    },
    /// A record named by the transaction does not exist.
    #[error("unknown record {0}")]
    UnknownRecord(u64),
    /// A grant named by the transaction does not exist.
    #[error("unknown grant {0}")]
    UnknownGrant(u64),
    /// The grant does not give the signer this access.
    #[error("no active grant: {0}; ask the patient for a grant")]
    NoActiveGrant(String),
    /// The grant has expired.
    #[error(
        "grant {grant} expired at {expired_at} (batch time {now}); ask the patient for a new grant"
    )]
    GrantExpired {
        /// The grant.
        grant: u64,
        /// Its expiry.
        expired_at: u64,
        /// The batch time.
        now: u64,
    },
    /// A grant that is already revoked.
    #[error("grant {0} is already revoked")]
    AlreadyRevoked(u64),
    /// A grant with an expiry in the past or no permissions.
    #[error("bad grant: {0}")]
    BadGrant(String),
    /// A tree is full.
    #[error("the {0} tree is full; the deployment needs a larger tree depth")]
    TreeFull(&'static str),
    /// The signer's nonce is the largest there is: it cannot sign again.
    #[error("account {0} has used every nonce and cannot sign again; use a new account")]
    NoncesExhausted(u64),
}

impl TxError {
    /// A short stable reason code, for receipts and metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Json(_) => "malformed_json",
            Self::Encoding(_) => "malformed_encoding",
            Self::MalformedCid(_) => "malformed_cid",
            Self::BadSignature { .. } => "bad_signature",
            Self::StaleNonce { .. } => "stale_nonce",
            Self::FutureNonce { .. } => "future_nonce",
            Self::UnknownAccount(_) => "unknown_account",
            Self::AccountExists(_) => "account_exists",
            Self::InvalidPublicKey(_) => "invalid_public_key",
            Self::WrongRole { .. } => "wrong_role",
            Self::BadRegistration(_) => "bad_registration",
            Self::NotOwner { .. } => "not_owner",
            Self::UnknownRecord(_) => "unknown_record",
            Self::UnknownGrant(_) => "unknown_grant",
            Self::NoActiveGrant(_) => "no_active_grant",
            Self::GrantExpired { .. } => "grant_expired",
            Self::AlreadyRevoked(_) => "already_revoked",
            Self::BadGrant(_) => "bad_grant",
            Self::TreeFull(_) => "tree_full",
            Self::NoncesExhausted(_) => "nonces_exhausted",
        }
    }
}
