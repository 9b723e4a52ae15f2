//! Groth16 proving for BN254 with the heavy kernels behind backend traits.
//!
//! - [`backend`]: the [`MsmBackend`] and [`NttBackend`] traits (fixed-base MSM over a
//!   prepared proving key, with sharding by base range; NTT, inverse and coset NTT) that a
//!   CPU or GPU implements.
//! - [`cpu`]: the CPU backend, [`CpuBackend`].
//! - [`groth16`]: the prover ([`Prover`]), producing standard `ark_groth16::Proof<Bn254>`
//!   that `ark_groth16::Groth16::verify` accepts, either in one call or assembled from
//!   sharded MSMs ([`Prover::prove_from_shards`]).
//! - [`split`]: a proof's MSMs sharded by base range across machines: key headers, shard
//!   plans, a shard's bases read alone, its scalars and sums in byte form.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
pub mod cpu;
pub mod groth16;
pub mod split;

pub use backend::{AssignmentSums, Backend, BackendError, MsmBackend, NttBackend};
pub use cpu::CpuBackend;
pub use groth16::{MsmSums, ProveError, Prover, QapWitness, Query, QuotientForm, StageTimings};
