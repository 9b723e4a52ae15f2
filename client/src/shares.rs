//! The key-share mailbox: grants deliver wrapped file keys ([`KeyShare`]) through the
//! JetStream key-value bucket [`SHARE_BUCKET`], one entry per (record, grantee) under the
//! key `r<record id>.a<account>` ([`share_key`]).
//!
//! A wrapped key opens only with its grantee's private key, so the bucket needs no secrecy.
//! It is not authenticated either: whoever may write to it could replace a share. A
//! replaced share for the real record does not open it (the body is authenticated), so the
//! reader gets [`crate::OpenError::KeyMismatch`] or `Corrupt`, never wrong data; a share
//! pointing at another envelope is caught by the check every reader makes anyway, that
//! `pulse_circuits::tx::cid_digest(&share.record_cid)` is the CID digest in the record's
//! leaf on chain.
//!
//! # Revocation is not cryptographic
//! Revoking a grant does not take a key back. A grantee who fetched its share (or the
//! plaintext) before the revocation keeps what it fetched; deleting the share
//! ([`delete_share`]) only stops later fetches. Revocation is enforced where Pulse can
//! enforce it: the rollup refuses `AccessLog` transactions under a revoked or expired grant
//! (so every later read that is logged must be authorised), and honest readers check the
//! grant on chain before they open a record. Cutting a former grantee off from future
//! versions of a record takes a new record under a new file key.

use async_nats::jetstream::{self, kv};
use pulse_protocol::nats::LayoutError;

use crate::record::{EnvelopeError, KeyShare, MAX_KEY_SHARE_JSON_BYTES};

/// The bucket of key shares (the coordinator creates it with its layout).
pub use pulse_protocol::SHARE_BUCKET;

/// The mailbox key of a share: `r<record id>.a<account>`.
pub fn share_key(record_id: u64, account: u64) -> String {
    format!("r{record_id}.a{account}")
}

/// Creates the share bucket, or updates it to these settings; running it again changes
/// nothing.
///
/// # Errors
/// [`MailboxError::Layout`] when the server refuses (JetStream disabled, no permission).
pub async fn ensure_share_bucket(js: &jetstream::Context) -> Result<kv::Store, MailboxError> {
    js.create_or_update_key_value(kv::Config {
        bucket: SHARE_BUCKET.to_owned(),
        description: "record file keys wrapped for grantees (safe to store: only the \
                      grantee's key unwraps them)"
            .to_owned(),
        history: 1,
        max_value_size: i32::try_from(
            MAX_KEY_SHARE_JSON_BYTES.min(pulse_protocol::MAX_SHARE_BYTES),
        )
        .unwrap_or(i32::MAX),
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| {
        MailboxError::Layout(LayoutError {
            what: format!("key-value bucket {SHARE_BUCKET}"),
            reason: e.to_string(),
        })
    })
}

async fn bucket(js: &jetstream::Context) -> Result<kv::Store, MailboxError> {
    js.get_key_value(SHARE_BUCKET)
        .await
        .map_err(|e| MailboxError::NoBucket {
            reason: e.to_string(),
        })
}

/// Stores a share for `record_id` (the rollup record id) under its grantee's account,
/// replacing an earlier share for the same pair.
///
/// # Errors
/// [`MailboxError::NoBucket`] when the bucket does not exist; [`MailboxError::Nats`].
pub async fn put_share(
    js: &jetstream::Context,
    record_id: u64,
    share: &KeyShare,
) -> Result<(), MailboxError> {
    let key = share_key(record_id, share.account);
    bucket(js)
        .await?
        .put(&key, share.to_json().into())
        .await
        .map_err(|e| MailboxError::Nats {
            action: "store",
            key,
            reason: e.to_string(),
        })?;
    Ok(())
}

/// The share for `account` on `record_id`, if one was delivered.
///
/// # Errors
/// [`MailboxError::NoBucket`]; [`MailboxError::Nats`]; [`MailboxError::Malformed`] for an
/// entry that is not a key share, or is one for another account.
pub async fn get_share(
    js: &jetstream::Context,
    record_id: u64,
    account: u64,
) -> Result<Option<KeyShare>, MailboxError> {
    let key = share_key(record_id, account);
    let Some(bytes) = bucket(js)
        .await?
        .get(&key)
        .await
        .map_err(|e| MailboxError::Nats {
            action: "fetch",
            key: key.clone(),
            reason: e.to_string(),
        })?
    else {
        return Ok(None);
    };
    let share = KeyShare::from_json(&bytes).map_err(|source| MailboxError::Malformed {
        key: key.clone(),
        source,
    })?;
    if share.account != account {
        return Err(MailboxError::WrongAccount {
            key,
            found: share.account,
        });
    }
    Ok(Some(share))
}

/// Deletes the share for `account` on `record_id` (after a revocation). See the module
/// documentation: this stops later fetches, it does not take back a key already fetched.
///
/// # Errors
/// [`MailboxError::NoBucket`]; [`MailboxError::Nats`].
pub async fn delete_share(
    js: &jetstream::Context,
    record_id: u64,
    account: u64,
) -> Result<(), MailboxError> {
    let key = share_key(record_id, account);
    bucket(js)
        .await?
        .purge(&key)
        .await
        .map_err(|e| MailboxError::Nats {
            action: "delete",
            key,
            reason: e.to_string(),
        })
}

/// Why the mailbox could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// The bucket could not be created.
    #[error(transparent)]
    Layout(LayoutError),
    /// The bucket does not exist (or cannot be read).
    #[error(
        "the key-share bucket {SHARE_BUCKET} is not available ({reason}); create it with \
         ensure_share_bucket (the coordinator's setup does)"
    )]
    NoBucket {
        /// The server's answer.
        reason: String,
    },
    /// A request failed.
    #[error("cannot {action} key share {key}: {reason}; check the NATS connection")]
    Nats {
        /// What was being done.
        action: &'static str,
        /// The mailbox key.
        key: String,
        /// The server's or client's answer.
        reason: String,
    },
    /// The entry is not a key share.
    #[error("the entry {key} in {SHARE_BUCKET} is not a usable key share: {source}")]
    Malformed {
        /// The mailbox key.
        key: String,
        /// What is wrong.
        #[source]
        source: EnvelopeError,
    },
    /// The entry is a share for another account.
    #[error(
        "the entry {key} in {SHARE_BUCKET} holds a share for account {found}: ask the \
         patient to grant again"
    )]
    WrongAccount {
        /// The mailbox key.
        key: String,
        /// The account the share names.
        found: u64,
    },
}
