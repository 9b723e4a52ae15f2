//! Record envelopes: an EMR file encrypted once under a fresh file key, with that key
//! wrapped (see [`crate::wrap`]) for each recipient, as one JSON document to add to IPFS.
//!
//! ```json
//! { "version": 1, "kind": "pulse-record", "cipher": "chacha20poly1305",
//!   "nonce": "<base64, 12 bytes>", "ciphertext": "<base64>",
//!   "keys": [ { "account": 7, "wrapped": { "ephemeral": ["…", "…"], "nonce": "…",
//!               "ciphertext": "…" } } ] }
//! ```
//!
//! The body is ChaCha20-Poly1305 (RFC 8439) under a random 32-byte file key and a random
//! nonce, with the envelope header [`RECORD_AAD`] (`pulse-record/v1/chacha20poly1305`) as
//! associated data, so a ciphertext cannot be relabelled as another version or cipher.
//! The key list is not authenticated by the body's tag, on purpose: recipients are added
//! later without re-encrypting. Each wrapped key authenticates itself, and a wrapped key
//! moved to another account's entry opens for nobody but its real recipient.
//!
//! Byte strings are standard padded base64. Parsing refuses documents over
//! [`MAX_RECORD_JSON_BYTES`], other versions, kinds and ciphers, unknown fields, duplicate
//! or zero accounts and more than [`MAX_RECIPIENTS`] keys.
//!
//! Granting access to an existing record does not change the envelope (its CID is its
//! content): the patient unwraps the file key and wraps it again for the grantee as a
//! standalone [`KeyShare`] ([`add_recipient`]), delivered through [`crate::shares`].

use std::collections::HashSet;
use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use cid::Cid;
use pulse_circuits::eddsa::{EddsaError, PrivateKey, PublicKey};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::b64;
use crate::wrap::{UnwrapError, WrapError, WrappedKey, unwrap_key, wrap_key};

/// The envelope format version.
pub const RECORD_VERSION: u64 = 1;
/// The envelope's `kind`.
pub const RECORD_KIND: &str = "pulse-record";
/// The only body cipher of version 1.
pub const RECORD_CIPHER: &str = "chacha20poly1305";
/// The associated data of the body: the envelope header (version and cipher).
pub const RECORD_AAD: &[u8] = b"pulse-record/v1/chacha20poly1305";
/// The largest envelope accepted, in bytes of JSON (as much as `pulse_ipfs` reads).
pub const MAX_RECORD_JSON_BYTES: usize = 64 << 20;
/// The largest plaintext sealed: its base64 ciphertext and the keys fit in
/// [`MAX_RECORD_JSON_BYTES`].
pub const MAX_RECORD_PLAINTEXT_BYTES: usize = 47 << 20;
/// The most keys one envelope carries (grants go through [`KeyShare`]s, not the envelope).
pub const MAX_RECIPIENTS: usize = 1024;
/// A key share's `kind`.
pub const KEY_SHARE_KIND: &str = "pulse-key-share";
/// The largest key share accepted, in bytes of JSON.
pub const MAX_KEY_SHARE_JSON_BYTES: usize = 16 * 1024;

const TAG_LEN: usize = 16;

/// One recipient's entry: its account and the file key wrapped for the account's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientKey {
    /// The recipient's account id.
    pub account: u64,
    /// The file key, wrapped for the account's public key.
    pub wrapped: WrappedKey,
}

/// An encrypted record with its recipients' wrapped keys. Build one with [`seal_record`],
/// read one with [`RecordEnvelope::from_json`]. `Debug` shows sizes and accounts only.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordEnvelope {
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
    keys: Vec<RecipientKey>,
}

impl fmt::Debug for RecordEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordEnvelope")
            .field("ciphertext_bytes", &self.ciphertext.len())
            .field("recipients", &self.recipients().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    version: u64,
    kind: &'static str,
    cipher: &'static str,
    #[serde(serialize_with = "b64::vec::serialize")]
    nonce: &'a [u8],
    #[serde(serialize_with = "b64::vec::serialize")]
    ciphertext: &'a [u8],
    keys: &'a [RecipientKey],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeIn {
    #[allow(dead_code)]
    version: u64,
    #[allow(dead_code)]
    kind: String,
    cipher: String,
    #[serde(with = "b64::array")]
    nonce: [u8; 12],
    #[serde(with = "b64::vec")]
    ciphertext: Vec<u8>,
    keys: Vec<RecipientKey>,
}

/// The fields read before the rest, so that another version or kind gets its own message.
#[derive(Deserialize)]
struct Header {
    version: Option<serde_json::Value>,
    kind: Option<serde_json::Value>,
}

impl RecordEnvelope {
    /// The JSON form (see the module documentation).
    pub fn to_json(&self) -> Vec<u8> {
        let out = EnvelopeOut {
            version: RECORD_VERSION,
            kind: RECORD_KIND,
            cipher: RECORD_CIPHER,
            nonce: &self.nonce,
            ciphertext: &self.ciphertext,
            keys: &self.keys,
        };
        // Serializing strings, integers and points into memory cannot fail.
        #[allow(clippy::expect_used)]
        serde_json::to_vec(&out).expect("an envelope always serializes")
    }

    /// Reads the JSON form.
    ///
    /// # Errors
    /// [`EnvelopeError`] saying what is wrong: too large, not JSON, another version, kind
    /// or cipher, an unknown or missing field, a bad key list.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        const WHAT: &str = "record envelope";
        check_header(bytes, WHAT, RECORD_KIND, MAX_RECORD_JSON_BYTES)?;
        let parsed: EnvelopeIn = serde_json::from_slice(bytes).map_err(|e| malformed(WHAT, e))?;
        if parsed.cipher != RECORD_CIPHER {
            return Err(EnvelopeError::UnsupportedCipher {
                found: clip(&parsed.cipher),
            });
        }
        if parsed.ciphertext.len() < TAG_LEN {
            return Err(EnvelopeError::Malformed {
                what: WHAT,
                reason: format!("the ciphertext is shorter than the {TAG_LEN}-byte tag"),
            });
        }
        check_accounts(parsed.keys.iter().map(|k| k.account))
            .map_err(|reason| EnvelopeError::Malformed { what: WHAT, reason })?;
        Ok(Self {
            nonce: parsed.nonce,
            ciphertext: parsed.ciphertext,
            keys: parsed.keys,
        })
    }

    /// The accounts the file key is wrapped for, in envelope order.
    pub fn recipients(&self) -> impl Iterator<Item = u64> + '_ {
        self.keys.iter().map(|k| k.account)
    }

    /// The entries of the key list.
    pub fn keys(&self) -> &[RecipientKey] {
        &self.keys
    }

    /// The key wrapped for `account`, if the envelope has one.
    pub fn wrapped_for(&self, account: u64) -> Option<&WrappedKey> {
        self.keys
            .iter()
            .find(|k| k.account == account)
            .map(|k| &k.wrapped)
    }

    /// The size of the encrypted body (plaintext plus the 16-byte tag).
    pub fn ciphertext_len(&self) -> usize {
        self.ciphertext.len()
    }

    /// Decrypts the body with an unwrapped file key.
    fn decrypt(&self, file_key: &[u8; 32]) -> Result<Vec<u8>, OpenError> {
        ChaCha20Poly1305::new(Key::from_slice(file_key))
            .decrypt(
                Nonce::from_slice(&self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: RECORD_AAD,
                },
            )
            .map_err(|_| OpenError::Corrupt {
                reason: "the file key does not decrypt the body",
            })
    }
}

/// Encrypts `plaintext` under a fresh file key and wraps that key for each recipient
/// `(account, public key)`; typically the patient and the uploading doctor.
///
/// # Errors
/// [`SealError`]: no recipients, too many, a duplicate or zero account, an invalid public
/// key, or a plaintext over [`MAX_RECORD_PLAINTEXT_BYTES`].
pub fn seal_record<R: RngCore + CryptoRng>(
    plaintext: &[u8],
    recipients: &[(u64, PublicKey)],
    rng: &mut R,
) -> Result<RecordEnvelope, SealError> {
    if plaintext.len() > MAX_RECORD_PLAINTEXT_BYTES {
        return Err(SealError::TooLarge {
            size: plaintext.len(),
            limit: MAX_RECORD_PLAINTEXT_BYTES,
        });
    }
    check_accounts(recipients.iter().map(|(a, _)| *a)).map_err(SealError::Recipients)?;
    let mut file_key = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(file_key.as_mut_slice());
    let keys = recipients
        .iter()
        .map(|(account, pk)| {
            let wrapped = wrap_key(&file_key, pk, rng).map_err(|e| match e {
                WrapError::InvalidRecipientKey(source) => SealError::InvalidRecipientKey {
                    account: *account,
                    source,
                },
            })?;
            Ok(RecipientKey {
                account: *account,
                wrapped,
            })
        })
        .collect::<Result<Vec<_>, SealError>>()?;
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    // Fails only past 256 GiB; the plaintext was bounded above.
    #[allow(clippy::expect_used)]
    let ciphertext = ChaCha20Poly1305::new(Key::from_slice(file_key.as_slice()))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: RECORD_AAD,
            },
        )
        .expect("a bounded plaintext always encrypts");
    Ok(RecordEnvelope {
        nonce,
        ciphertext,
        keys,
    })
}

/// Decrypts a record as `account`, with that account's private key.
///
/// # Errors
/// [`OpenError::NotARecipient`] when the envelope has no key for `account` (a grantee reads
/// with [`open_with_share`] instead); [`OpenError::KeyMismatch`] when the key for `account`
/// does not unwrap with `key`; [`OpenError::Corrupt`] when the envelope is damaged.
pub fn open_record(
    envelope: &RecordEnvelope,
    account: u64,
    key: &PrivateKey,
) -> Result<Vec<u8>, OpenError> {
    let wrapped = envelope
        .wrapped_for(account)
        .ok_or(OpenError::NotARecipient { account })?;
    let file_key = unwrap_for(wrapped, account, key)?;
    envelope.decrypt(&file_key)
}

/// Decrypts a record with a key share delivered by a grant. The caller fetched the envelope
/// at `share.record_cid` (and checked that CID against the record leaf on chain).
///
/// # Errors
/// As [`open_record`], with [`OpenError::KeyMismatch`] for a share that does not unwrap
/// with `key` and [`OpenError::Corrupt`] for one that is not this record's key.
pub fn open_with_share(
    envelope: &RecordEnvelope,
    share: &KeyShare,
    key: &PrivateKey,
) -> Result<Vec<u8>, OpenError> {
    let file_key = unwrap_for(&share.wrapped, share.account, key)?;
    envelope.decrypt(&file_key)
}

fn unwrap_for(
    wrapped: &WrappedKey,
    account: u64,
    key: &PrivateKey,
) -> Result<Zeroizing<[u8; 32]>, OpenError> {
    unwrap_key(wrapped, key).map_err(|e| match e {
        UnwrapError::Decrypt => OpenError::KeyMismatch { account },
        UnwrapError::InvalidEphemeral => OpenError::Corrupt {
            reason: "a wrapped key's ephemeral point is not a valid subgroup point",
        },
    })
}

/// Re-wraps a record's file key for a grantee: the record's owner (or any recipient) opens
/// its own entry with `my_key` and wraps the key for `new_pk`. The envelope is unchanged;
/// the result is delivered on its own ([`crate::shares::put_share`]).
///
/// The body is decrypted once to check that the key really opens it, so a share never
/// carries a key that does not work.
///
/// # Errors
/// [`AddRecipientError::Open`] when `my_key` cannot open the record as `my_account`;
/// [`AddRecipientError::InvalidRecipientKey`] for an unusable grantee key or account 0.
#[allow(clippy::too_many_arguments)]
pub fn add_recipient<R: RngCore + CryptoRng>(
    envelope: &RecordEnvelope,
    record_cid: &Cid,
    my_account: u64,
    my_key: &PrivateKey,
    new_account: u64,
    new_pk: &PublicKey,
    rng: &mut R,
) -> Result<KeyShare, AddRecipientError> {
    if new_account == 0 {
        return Err(AddRecipientError::ZeroAccount);
    }
    let wrapped = envelope
        .wrapped_for(my_account)
        .ok_or(OpenError::NotARecipient {
            account: my_account,
        })?;
    let file_key = unwrap_for(wrapped, my_account, my_key)?;
    drop(Zeroizing::new(envelope.decrypt(&file_key)?));
    let wrapped = wrap_key(&file_key, new_pk, rng).map_err(|e| match e {
        WrapError::InvalidRecipientKey(source) => AddRecipientError::InvalidRecipientKey {
            account: new_account,
            source,
        },
    })?;
    Ok(KeyShare {
        record_cid: *record_cid,
        account: new_account,
        wrapped,
    })
}

/// A record's file key wrapped for one grantee, delivered apart from the record.
///
/// JSON: `{ "version": 1, "kind": "pulse-key-share", "record_cid": "bafk…", "account": N,
/// "wrapped": { … } }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyShare {
    /// The CID of the record envelope on IPFS.
    #[serde(with = "cid_string")]
    pub record_cid: Cid,
    /// The grantee's account id.
    pub account: u64,
    /// The file key, wrapped for the grantee's public key.
    pub wrapped: WrappedKey,
}

#[derive(Serialize)]
struct ShareOut<'a> {
    version: u64,
    kind: &'static str,
    #[serde(flatten)]
    share: &'a KeyShare,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareIn {
    #[allow(dead_code)]
    version: u64,
    #[allow(dead_code)]
    kind: String,
    #[serde(with = "cid_string")]
    record_cid: Cid,
    account: u64,
    wrapped: WrappedKey,
}

impl KeyShare {
    /// The JSON form.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, integers and points always serialize.
        #[allow(clippy::expect_used)]
        serde_json::to_vec(&ShareOut {
            version: RECORD_VERSION,
            kind: KEY_SHARE_KIND,
            share: self,
        })
        .expect("a key share always serializes")
    }

    /// Reads the JSON form.
    ///
    /// # Errors
    /// [`EnvelopeError`] saying what is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        const WHAT: &str = "key share";
        check_header(bytes, WHAT, KEY_SHARE_KIND, MAX_KEY_SHARE_JSON_BYTES)?;
        let s: ShareIn = serde_json::from_slice(bytes).map_err(|e| malformed(WHAT, e))?;
        if s.account == 0 {
            return Err(EnvelopeError::Malformed {
                what: WHAT,
                reason: "account 0 does not exist (account ids start at 1)".to_owned(),
            });
        }
        Ok(Self {
            record_cid: s.record_cid,
            account: s.account,
            wrapped: s.wrapped,
        })
    }
}

/// Checks the size, that no object names a key twice, then `version` and `kind`, before the
/// full parse.
fn check_header(
    bytes: &[u8],
    what: &'static str,
    kind: &'static str,
    limit: usize,
) -> Result<(), EnvelopeError> {
    if bytes.len() > limit {
        return Err(EnvelopeError::TooLarge {
            what,
            size: bytes.len(),
            limit,
        });
    }
    // A repeated `wrapped` or `account` would be read differently by other parsers.
    pulse_circuits::json::check_unique_keys(bytes).map_err(|e| EnvelopeError::Malformed {
        what,
        reason: e.to_string(),
    })?;
    let header: Header = serde_json::from_slice(bytes).map_err(|e| malformed(what, e))?;
    match header.version.as_ref().and_then(serde_json::Value::as_u64) {
        Some(RECORD_VERSION) => {}
        Some(found) => return Err(EnvelopeError::UnsupportedVersion { what, found }),
        None => {
            return Err(EnvelopeError::Malformed {
                what,
                reason: "missing or non-numeric field `version`".to_owned(),
            });
        }
    }
    match header.kind.as_ref().and_then(serde_json::Value::as_str) {
        Some(k) if k == kind => Ok(()),
        Some(found) => Err(EnvelopeError::WrongKind {
            what,
            expected: kind,
            found: clip(found),
        }),
        None => Err(EnvelopeError::Malformed {
            what,
            reason: "missing or non-string field `kind`".to_owned(),
        }),
    }
}

/// Recipients are non-empty, at most [`MAX_RECIPIENTS`], distinct and non-zero.
fn check_accounts(accounts: impl ExactSizeIterator<Item = u64>) -> Result<(), String> {
    let n = accounts.len();
    if n == 0 {
        return Err("no recipients: nobody could open the record".to_owned());
    }
    if n > MAX_RECIPIENTS {
        return Err(format!(
            "{n} recipients; at most {MAX_RECIPIENTS} (grant further readers key shares)"
        ));
    }
    let mut seen = HashSet::with_capacity(n);
    for account in accounts {
        if account == 0 {
            return Err("account 0 does not exist (account ids start at 1)".to_owned());
        }
        if !seen.insert(account) {
            return Err(format!("account {account} is listed twice"));
        }
    }
    Ok(())
}

/// serde's message, cut short: an `invalid type` message quotes the offending value, which
/// may be megabytes of base64.
fn malformed(what: &'static str, e: serde_json::Error) -> EnvelopeError {
    EnvelopeError::Malformed {
        what,
        reason: clip_to(&e.to_string(), 300),
    }
}

fn clip(s: &str) -> String {
    clip_to(s, 40)
}

fn clip_to(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

mod cid_string {
    use cid::Cid;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(c: &Cid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&c.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cid, D::Error> {
        let s = String::deserialize(d)?;
        Cid::try_from(s.as_str())
            .map_err(|e| serde::de::Error::custom(format!("`record_cid` is not a CID: {e}")))
    }
}

/// Why an envelope or key share could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Over the size limit.
    #[error("the {what} is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// `"record envelope"` or `"key share"`.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Another format version.
    #[error(
        "{what} version {found} is not supported; this client reads version \
         {RECORD_VERSION}: upgrade the client"
    )]
    UnsupportedVersion {
        /// What was read.
        what: &'static str,
        /// The version found.
        found: u64,
    },
    /// Another kind of Pulse document (a key file, a key share …).
    #[error("expected a {what} (kind \"{expected}\"), found kind \"{found}\"")]
    WrongKind {
        /// What was read.
        what: &'static str,
        /// The kind expected.
        expected: &'static str,
        /// The kind found (cut to 40 characters).
        found: String,
    },
    /// A body cipher this version does not know.
    #[error(
        "record cipher \"{found}\" is not supported; version {RECORD_VERSION} uses \
         \"{RECORD_CIPHER}\""
    )]
    UnsupportedCipher {
        /// The cipher named (cut to 40 characters).
        found: String,
    },
    /// Not JSON, or not the documented shape.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was read.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Why a record could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The plaintext is over [`MAX_RECORD_PLAINTEXT_BYTES`].
    #[error(
        "the record is {size} bytes; at most {limit} fit in one envelope: split it into \
         several records"
    )]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The recipient list is empty, too long, or names an account twice or account 0.
    #[error("bad recipient list: {0}")]
    Recipients(String),
    /// A recipient's public key is not usable.
    #[error(
        "the public key given for account {account} is not usable for encryption: {source}; \
         take it from the account's leaf"
    )]
    InvalidRecipientKey {
        /// The account.
        account: u64,
        /// Why.
        #[source]
        source: EddsaError,
    },
}

/// Why a record could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The envelope has no key for this account.
    #[error("no key for account {account} in this record: ask the patient for a grant")]
    NotARecipient {
        /// The account that asked.
        account: u64,
    },
    /// The key for this account does not unwrap with the private key given.
    #[error(
        "the key for account {account} does not open with this private key: load account \
         {account}'s key file (if it is the right one, the wrapped key was altered)"
    )]
    KeyMismatch {
        /// The account.
        account: u64,
    },
    /// The envelope (or share) is damaged or was not made by a Pulse client.
    #[error(
        "the record is corrupt: {reason}; it was altered or not produced by a Pulse client, \
         tell whoever uploaded it"
    )]
    Corrupt {
        /// What failed.
        reason: &'static str,
    },
}

/// Why a key share could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddRecipientError {
    /// The granting account cannot open the record itself.
    #[error("cannot re-wrap the record's key: {0}")]
    Open(#[from] OpenError),
    /// Account 0 does not exist.
    #[error("account 0 does not exist (account ids start at 1): check the grantee's account")]
    ZeroAccount,
    /// The grantee's public key is not usable.
    #[error(
        "the public key given for account {account} is not usable for encryption: {source}; \
         take it from the grantee's account leaf"
    )]
    InvalidRecipientKey {
        /// The grantee.
        account: u64,
        /// Why.
        #[source]
        source: EddsaError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(0x2EC0)
    }

    struct Party {
        account: u64,
        key: PrivateKey,
    }

    fn parties(rng: &mut ChaCha20Rng, n: u64) -> Vec<Party> {
        (1..=n)
            .map(|account| Party {
                account,
                key: PrivateKey::random(rng),
            })
            .collect()
    }

    fn recipients(ps: &[Party]) -> Vec<(u64, PublicKey)> {
        ps.iter().map(|p| (p.account, p.key.public_key())).collect()
    }

    fn cid() -> Cid {
        pulse_ipfs::raw_cid_of(b"an envelope")
    }

    #[test]
    fn seal_open_and_json_round_trip() {
        let mut rng = rng();
        let ps = parties(&mut rng, 3);
        let text = b"diagnosis: fine".to_vec();
        let env = seal_record(&text, &recipients(&ps[..2]), &mut rng).unwrap();
        assert_eq!(env.ciphertext_len(), text.len() + TAG_LEN);
        assert_eq!(env.recipients().collect::<Vec<_>>(), vec![1, 2]);

        let json = env.to_json();
        let s = std::str::from_utf8(&json).unwrap();
        assert!(
            s.starts_with(
                r#"{"version":1,"kind":"pulse-record","cipher":"chacha20poly1305","nonce":""#
            ),
            "{s}"
        );
        assert!(!s.contains("diagnosis"));
        let back = RecordEnvelope::from_json(&json).unwrap();
        assert_eq!(back, env);
        for p in &ps[..2] {
            assert_eq!(open_record(&back, p.account, &p.key).unwrap(), text);
        }
        let err = open_record(&back, 3, &ps[2].key).unwrap_err();
        assert_eq!(err, OpenError::NotARecipient { account: 3 });
        assert_eq!(
            err.to_string(),
            "no key for account 3 in this record: ask the patient for a grant"
        );
        // Account 1's entry with account 2's key.
        assert_eq!(
            open_record(&back, 1, &ps[1].key).unwrap_err(),
            OpenError::KeyMismatch { account: 1 }
        );
        // An empty record works too.
        let empty = seal_record(b"", &recipients(&ps[..1]), &mut rng).unwrap();
        assert!(open_record(&empty, 1, &ps[0].key).unwrap().is_empty());
        assert!(!format!("{env:?}").contains(&crate::b64::encode(&env.ciphertext)));
    }

    #[test]
    fn tampering_is_corruption() {
        let mut rng = rng();
        let ps = parties(&mut rng, 2);
        let env = seal_record(b"hello", &recipients(&ps), &mut rng).unwrap();
        let corrupt = |e: &RecordEnvelope| open_record(e, 1, &ps[0].key).unwrap_err();

        for i in [0, env.ciphertext.len() - 1] {
            let mut bad = env.clone();
            bad.ciphertext[i] ^= 0x80;
            assert!(matches!(corrupt(&bad), OpenError::Corrupt { .. }));
        }
        let mut bad = env.clone();
        bad.nonce[3] ^= 1;
        assert!(matches!(corrupt(&bad), OpenError::Corrupt { .. }));
        let mut bad = env.clone();
        bad.ciphertext.truncate(5);
        assert!(matches!(corrupt(&bad), OpenError::Corrupt { .. }));
        // Swapping the two entries' accounts: each now opens for nobody.
        let mut bad = env.clone();
        bad.keys[0].account = 2;
        bad.keys[1].account = 1;
        assert_eq!(corrupt(&bad), OpenError::KeyMismatch { account: 1 });
        // Another record's key, correctly wrapped: the body does not open.
        let other = seal_record(b"other", &recipients(&ps), &mut rng).unwrap();
        let mut bad = env.clone();
        bad.keys[0] = other.keys[0].clone();
        assert!(matches!(corrupt(&bad), OpenError::Corrupt { .. }));
        // An ephemeral point with a small-order component.
        let mut bad = env.clone();
        let order2 = pulse_circuits::babyjubjub::Point::new(
            ark_bn254::Fr::from(0u8),
            -ark_bn254::Fr::from(1u8),
        );
        bad.keys[0].wrapped.ephemeral = bad.keys[0].wrapped.ephemeral.add(&order2);
        assert!(matches!(corrupt(&bad), OpenError::Corrupt { .. }));
    }

    #[test]
    fn bad_recipient_lists_are_refused() {
        let mut rng = rng();
        let ps = parties(&mut rng, 2);
        let pk = ps[0].key.public_key();
        assert!(matches!(
            seal_record(b"x", &[], &mut rng),
            Err(SealError::Recipients(_))
        ));
        assert!(matches!(
            seal_record(b"x", &[(1, pk), (1, pk)], &mut rng),
            Err(SealError::Recipients(_))
        ));
        assert!(matches!(
            seal_record(b"x", &[(0, pk)], &mut rng),
            Err(SealError::Recipients(_))
        ));
        let bad = PublicKey(pulse_circuits::babyjubjub::Point::identity());
        assert!(matches!(
            seal_record(b"x", &[(1, pk), (2, bad)], &mut rng),
            Err(SealError::InvalidRecipientKey { account: 2, .. })
        ));
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        let mut rng = rng();
        let ps = parties(&mut rng, 2);
        let env = seal_record(b"hello", &recipients(&ps), &mut rng).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&env.to_json()).unwrap();
        let parse = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = value.clone();
            f(&mut v);
            RecordEnvelope::from_json(&serde_json::to_vec(&v).unwrap())
        };

        assert!(parse(&|_| {}).is_ok());
        assert_eq!(
            parse(&|v| v["version"] = 2.into()).unwrap_err(),
            EnvelopeError::UnsupportedVersion {
                what: "record envelope",
                found: 2
            }
        );
        let err = parse(&|v| v["kind"] = "pulse-key".into()).unwrap_err();
        assert!(matches!(err, EnvelopeError::WrongKind { .. }), "{err}");
        let err = parse(&|v| v["cipher"] = "aes-256-gcm".into()).unwrap_err();
        assert!(
            matches!(err, EnvelopeError::UnsupportedCipher { .. }),
            "{err}"
        );
        let err = parse(&|v| v["extra"] = true.into()).unwrap_err();
        assert!(err.to_string().contains("unknown field `extra`"), "{err}");
        let err = parse(&|v| v["keys"][0]["wrapped"]["x"] = 1.into()).unwrap_err();
        assert!(err.to_string().contains("unknown field `x`"), "{err}");
        let err = parse(&|v| {
            v.as_object_mut().unwrap().remove("nonce");
        })
        .unwrap_err();
        assert!(err.to_string().contains("missing field `nonce`"), "{err}");
        let err = parse(&|v| v["keys"][1]["account"] = 1.into()).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
        let err = parse(&|v| v["keys"] = serde_json::json!([])).unwrap_err();
        assert!(err.to_string().contains("no recipients"), "{err}");
        let err = parse(&|v| v["ciphertext"] = "%%%".into()).unwrap_err();
        assert!(err.to_string().contains("base64"), "{err}");
        let err = parse(&|v| v["ciphertext"] = crate::b64::encode(&[0; 15]).into()).unwrap_err();
        assert!(err.to_string().contains("shorter than"), "{err}");
        // A huge string in the wrong place is not echoed back in full.
        let err = parse(&|v| v["keys"] = "A".repeat(100_000).into()).unwrap_err();
        assert!(err.to_string().len() < 1000, "{}", err.to_string().len());
        // A field twice, at the top or inside a wrapped key, is refused.
        let text = String::from_utf8(env.to_json()).unwrap();
        let twice = text.replacen("\"cipher\":", "\"cipher\":\"x\",\"cipher\":", 1);
        let err = RecordEnvelope::from_json(twice.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            EnvelopeError::Malformed {
                what: "record envelope",
                reason: "the JSON object at $ has the key \"cipher\" twice; send each field once"
                    .to_owned()
            }
        );
        let nested = text.replacen("\"account\":", "\"account\":9,\"account\":", 1);
        let err = RecordEnvelope::from_json(nested.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .contains("$.keys[0] has the key \"account\" twice"),
            "{err}"
        );

        assert!(matches!(
            RecordEnvelope::from_json(b"not json"),
            Err(EnvelopeError::Malformed { .. })
        ));
        assert!(matches!(
            RecordEnvelope::from_json(b"[1, 2]"),
            Err(EnvelopeError::Malformed { .. })
        ));
        let big = vec![b' '; MAX_RECORD_JSON_BYTES + 1];
        assert!(matches!(
            RecordEnvelope::from_json(&big),
            Err(EnvelopeError::TooLarge { .. })
        ));
        assert!(matches!(
            seal_record(
                &vec![0; MAX_RECORD_PLAINTEXT_BYTES + 1],
                &recipients(&ps),
                &mut rng
            ),
            Err(SealError::TooLarge { .. })
        ));
    }

    #[test]
    fn the_largest_record_fits_the_json_limit() {
        let mut rng = rng();
        let ps = parties(&mut rng, 2);
        let env = seal_record(
            &vec![0xA5; MAX_RECORD_PLAINTEXT_BYTES],
            &recipients(&ps),
            &mut rng,
        )
        .unwrap();
        let json = env.to_json();
        assert!(json.len() <= MAX_RECORD_JSON_BYTES);
        // Room for the most recipients, each entry under 400 bytes.
        let entry = serde_json::to_vec(&env.keys[0]).unwrap().len();
        assert!(entry < 400, "{entry}");
        assert!(json.len() + MAX_RECIPIENTS * (entry + 1) <= MAX_RECORD_JSON_BYTES);
        let back = RecordEnvelope::from_json(&json).unwrap();
        assert_eq!(
            open_record(&back, 2, &ps[1].key).unwrap().len(),
            MAX_RECORD_PLAINTEXT_BYTES
        );
    }

    #[test]
    fn a_grantee_reads_through_a_key_share() {
        let mut rng = rng();
        let ps = parties(&mut rng, 4);
        let (patient, doctor, grantee, stranger) = (&ps[0], &ps[1], &ps[2], &ps[3]);
        let env = seal_record(b"x-ray", &recipients(&ps[..2]), &mut rng).unwrap();
        let share = add_recipient(
            &env,
            &cid(),
            patient.account,
            &patient.key,
            grantee.account,
            &grantee.key.public_key(),
            &mut rng,
        )
        .unwrap();
        assert_eq!(share.account, 3);
        assert_eq!(share.record_cid, cid());
        assert_eq!(
            open_record(&env, 3, &grantee.key).unwrap_err(),
            OpenError::NotARecipient { account: 3 }
        );
        assert_eq!(
            open_with_share(&env, &share, &grantee.key).unwrap(),
            b"x-ray"
        );
        assert_eq!(
            open_with_share(&env, &share, &stranger.key).unwrap_err(),
            OpenError::KeyMismatch { account: 3 }
        );

        let json = share.to_json();
        let s = std::str::from_utf8(&json).unwrap();
        assert!(
            s.starts_with(r#"{"version":1,"kind":"pulse-key-share","record_cid":"bafk"#),
            "{s}"
        );
        assert_eq!(KeyShare::from_json(&json).unwrap(), share);
        let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        v["account"] = 0.into();
        assert!(KeyShare::from_json(&serde_json::to_vec(&v).unwrap()).is_err());
        v["account"] = 3.into();
        v["record_cid"] = "not a cid".into();
        let err = KeyShare::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.to_string().contains("not a CID"), "{err}");
        assert!(matches!(
            KeyShare::from_json(&env.to_json()),
            Err(EnvelopeError::WrongKind { .. })
        ));
        assert!(matches!(
            KeyShare::from_json(&vec![b' '; MAX_KEY_SHARE_JSON_BYTES + 1]),
            Err(EnvelopeError::TooLarge { .. })
        ));

        // Only a recipient can grant, and only to a usable key.
        assert_eq!(
            add_recipient(
                &env,
                &cid(),
                stranger.account,
                &stranger.key,
                grantee.account,
                &grantee.key.public_key(),
                &mut rng
            )
            .unwrap_err(),
            AddRecipientError::Open(OpenError::NotARecipient { account: 4 })
        );
        assert_eq!(
            add_recipient(
                &env,
                &cid(),
                doctor.account,
                &patient.key,
                grantee.account,
                &grantee.key.public_key(),
                &mut rng
            )
            .unwrap_err(),
            AddRecipientError::Open(OpenError::KeyMismatch { account: 2 })
        );
        assert!(matches!(
            add_recipient(
                &env,
                &cid(),
                patient.account,
                &patient.key,
                grantee.account,
                &PublicKey(pulse_circuits::babyjubjub::Point::identity()),
                &mut rng
            ),
            Err(AddRecipientError::InvalidRecipientKey { account: 3, .. })
        ));
    }
}
