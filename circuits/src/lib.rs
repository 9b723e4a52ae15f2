//! The Pulse statement: everything that defines what a valid Pulse batch is, natively and as
//! an R1CS circuit over BN254.
//!
//! - [`poseidon`]: circomlib-compatible Poseidon, native and as a gadget.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod poseidon;

pub use ark_bn254::Fr;
