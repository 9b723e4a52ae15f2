//! The Pulse statement: everything that defines what a valid Pulse batch is, natively and as
//! an R1CS circuit over BN254.
//!
//! - [`poseidon`]: circomlib-compatible Poseidon, native and as a gadget.
//! - [`babyjubjub`], [`eddsa`]: circomlib's BabyJubJub curve and EdDSA-Poseidon signatures.
//! - [`merkle`]: fixed-depth Poseidon Merkle trees with a persistent node store.
//! - [`field`]: field elements as canonical decimal text.
//! - [`tx`]: transactions, their encodings, hash and signed message.
//! - [`deployment`]: the deployment id that binds signatures and proofs to one rollup
//!   contract on one chain.
//! - [`json`]: strict reading of outside JSON (no key twice in an object).
//! - [`leaf`], [`state`]: the state trees' leaves, the persistent state and the native
//!   state transition.
//! - [`circuit`]: the chunk circuit.
//! - [`differential`]: the native rules and the circuit checked against each other on
//!   drawn transaction sequences.
//! - [`sample`]: sample chunk chains of real transactions for tests and benchmarks.
//! - [`artifacts`], [`solidity`]: Groth16 keys and proofs with their identity, and the
//!   Solidity verifier generated from a verifying key.
//! - [`r1cs`]: a circuit's constraint matrices in a compact form and their file format
//!   (`constraints.r1cs` in a key directory), for provers that do not synthesize them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod artifacts;
pub mod babyjubjub;
pub mod circuit;
pub mod deployment;
pub mod differential;
pub mod eddsa;
pub mod field;
pub mod json;
pub mod leaf;
pub mod merkle;
pub mod poseidon;
pub mod r1cs;
pub mod sample;
pub mod solidity;
pub mod state;
pub mod tx;
pub mod vectors;

pub use ark_bn254::Fr;
