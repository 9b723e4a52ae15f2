//! The hospitals' data-availability committee (as StarkEx's DAC and Arbitrum AnyTrust run
//! one): a batch's public data is published on IPFS only as ciphertext, sealed under a fresh
//! key wrapped for every member, so that the committee (and nobody else) can read it,
//! check it against the chunk commitments, keep it available and rebuild the state.
//!
//! - [`committee`]: the member set and threshold (`committee.json`), checked on load.
//! - [`key`]: a member's X25519 key file (mode 0600, never printed).
//! - [`seal`]: the sealed batch format: [`seal::seal`] for the coordinator,
//!   [`seal::open`] for a member.
//!
//! Cryptography from well-kept crates: X25519 (`x25519-dalek`), HKDF-SHA-256 (`hkdf`),
//! ChaCha20-Poly1305 (`chacha20poly1305`). See `docs/privacy.md` for who learns what.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod committee;
pub mod key;
pub mod seal;

pub use committee::{Committee, Member};
pub use key::MemberKey;
pub use seal::{Sealed, open, seal};

/// What went wrong, said so that the reader knows what to do. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum DacError {
    /// The committee file is not a valid committee.
    #[error("committee {source_name}: {reason}")]
    Committee {
        /// Where it came from.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// A member key file is unreadable or malformed.
    #[error("committee key {path}: {reason}")]
    Key {
        /// Its path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Sealed batch data that is malformed.
    #[error("sealed batch data is malformed: {0}")]
    Malformed(String),
    /// Sealed data that this key cannot or must not open.
    #[error("{0}")]
    Refused(String),
}
