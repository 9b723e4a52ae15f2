//! The Pulse client library: what patient and doctor software needs besides the CLI.
//!
//! - [`keyfile`]: a user's BabyJubJub EdDSA key on disk ([`KeyFile`]), private to its owner.
//! - [`wrap`]: ECIES over BabyJubJub: a 32-byte file key wrapped for an account's public key
//!   ([`wrap_key`], [`unwrap_key`]). The account's signing key is its encryption key, so a
//!   reader can check a recipient key against the account leaf on L1 and needs no separate
//!   key directory.
//! - [`record`]: the encrypted record as stored on IPFS ([`RecordEnvelope`]): one
//!   ChaCha20-Poly1305 ciphertext and the file key wrapped for each recipient; a patient
//!   re-wraps the key for a grantee as a standalone [`KeyShare`].
//! - [`shares`]: the key-share mailbox, a JetStream key-value bucket through which grants
//!   deliver [`KeyShare`]s.
//! - [`lookup`]: leaves with Merkle proofs from the coordinator's API, checked against the
//!   state root the L1 contract holds, and the read rule ([`check_read_access`]).
//! - [`mod@submit`]: publishing signed transactions to the coordinator and waiting for their
//!   receipts.
//!
//! Nothing here logs or puts into an error message key material, plaintext or patient
//! data. Account numbers (pseudonymous rollup indices) do appear in errors meant for the
//! key's owner.
//!
//! A doctor adds a record for a patient (sketch):
//!
//! ```no_run
//! # async fn demo(js: async_nats::jetstream::Context, ipfs: pulse_ipfs::IpfsClient,
//! #   doctor: pulse_client::KeyFile, patient_pk: pulse_circuits::eddsa::PublicKey,
//! #   deployment: pulse_circuits::deployment::DeploymentId)
//! #   -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! let mut rng = rand::rngs::OsRng;
//! let me = doctor.account().ok_or("register first")?;
//! let envelope = pulse_client::seal_record(
//!     b"...the EMR file...",
//!     &[(7, patient_pk), (me, doctor.public_key())],
//!     &mut rng,
//! )?;
//! let cid = ipfs.add(envelope.to_json()).await?;
//! # let tx: pulse_circuits::tx::SignedTransaction = unimplemented!();
//! // Build an `AddRecord` naming `cid`, sign it for the cluster's deployment
//! // (`pulse_l1::read_deployment`), then:
//! let receipt = pulse_client::submit(&js, &tx, deployment, Duration::from_secs(30)).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod b64;
pub mod keyfile;
pub mod lookup;
pub mod record;
pub mod shares;
pub mod submit;
pub mod wrap;

pub use keyfile::{KeyFile, KeyFileError, Overwrite};
pub use lookup::{
    AccessError, CoordinatorApi, LookupError, Verified, VerifiedRecord, check_read_access,
};
pub use record::{
    AddRecipientError, EnvelopeError, KeyShare, OpenError, RecordEnvelope, SealError,
    add_recipient, open_record, open_with_share, seal_record,
};
pub use shares::{
    MailboxError, SHARE_BUCKET, delete_share, ensure_share_bucket, get_share, put_share, share_key,
};
pub use submit::{SubmitError, submit, submit_raw, wait_committed, wait_receipt};
pub use wrap::{UnwrapError, WrapError, WrappedKey, unwrap_key, wrap_key};
