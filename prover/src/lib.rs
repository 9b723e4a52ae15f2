//! Groth16 proving for BN254 with the heavy kernels behind backend traits (being written).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
