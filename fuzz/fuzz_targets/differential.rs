//! Fuzz target `differential`: transaction sequences drawn from the input, applied by the
//! native rules and checked against the chunk circuit (`pulse_circuits::differential`).
//! Any disagreement panics with the finding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::differential(data));
