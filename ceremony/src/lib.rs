//! Groth16 setups that no single party controls, in the file formats snarkjs checks.
//!
//! A Groth16 key made by one party lets that party prove anything. Deployed Groth16
//! systems therefore run a two-phase ceremony (Bowe, Gabizon, Miers, "Scalable Multi-party
//! Computation for zk-SNARK Parameters in the Random Beacon Model", 2017): a universal
//! powers-of-tau (phase 1, [`ptau`]) and, per circuit, a chain of contributions to `δ`
//! (phase 2, [`phase2`]), secure if any one contributor destroyed its secret. Pulse follows
//! snarkjs's formats and transcript bit for bit, so snarkjs can check a Pulse ceremony and
//! Pulse can prove with keys from a snarkjs one.
//!
//! - [`binfile`], [`encoding`]: iden3's sectioned container and its point encodings.
//! - [`rng`]: ffjavascript's ChaCha stream, random points and `hashToG2`.
//! - [`ptau`]: `.ptau` files: read and checked (batched pairing checks), or made.
//! - [`r1cs_file`], [`wtns`]: circom's `.r1cs` and `.wtns`.
//! - [`zkey`]: snarkjs's `.zkey`, with its contribution transcript.
//! - [`phase2`]: the initial key of a circuit, contributions, beacons and the verification
//!   of a whole transcript.
//! - [`keys`]: a `.zkey` as a Pulse proving key; [`json`]: snarkjs's JSON files.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binfile;
pub mod ceremony;
pub mod encoding;
pub mod json;
pub mod keys;
pub mod phase2;
pub mod ptau;
pub mod r1cs_file;
pub mod rng;
pub mod wtns;
pub mod zkey;

/// A file that is not what it claims to be, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

impl FormatError {
    /// An error with this message.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}
