//! Pulse benchmarks. Each one relates Pulse's speed to a baseline measured in the same run,
//! and reports medians; none of them is a test (tests never assert timings).
//!
//! - [`statement`]: native Poseidon speed and the sequencer's transactions per second at a
//!   given tree depth, next to the bound that Poseidon's own speed sets.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod statement;
