//! Pulse's fuzz targets, as functions of the bytes each way in receives from outside.
//!
//! Every target calls the entry point exactly as the service does on those bytes; an `Err`
//! is the expected answer to garbage, while a panic, an abort, an arithmetic overflow (the
//! targets build with debug assertions), a run over its time limit or over 2 GB is a finding.
//! Where a decoder accepts its input, the target also checks that what it read survives its
//! own encoding (a reader and a writer that disagree are a bug too).
//!
//! The binaries in `fuzz_targets/` are one line each; `scripts/fuzz` runs them.
#![forbid(unsafe_code)]

pub mod fixtures;
pub mod json;
pub mod targets;
