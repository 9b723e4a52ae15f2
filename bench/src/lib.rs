//! Pulse benchmarks. Each one relates Pulse's speed to a baseline measured in the same run,
//! and reports medians; none of them is a test (tests never assert timings).
//!
//! - [`buckets`]: how evenly the GPU MSM's bucket sums spread over threads on a real chunk
//!   witness, before and after balancing.
//! - [`statement`]: native Poseidon speed and the sequencer's transactions per second at a
//!   given tree depth, next to the bound that Poseidon's own speed sets.
//! - [`l1_gas`]: gas of batch commits of K chunk proofs against one proof verified alone.
//! - [`prover`]: MSM, NTT and Groth16 proving, Pulse's prover against arkworks, and a GPU
//!   against Pulse's CPU backend.
//! - [`split`]: a proof split into shards against the unsplit proof: per-shard work,
//!   bytes moved, CPU overhead and each role's peak memory.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod buckets;
pub mod l1_gas;
pub mod prover;
pub mod split;
pub mod statement;
