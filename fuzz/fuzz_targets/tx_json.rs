//! Fuzz target `tx_json`: see `pulse_fuzz::targets::tx_json`.
#![no_main]

// The fixtures are built before the first input, outside its time limit.
libfuzzer_sys::fuzz_target!(init: { pulse_fuzz::fixtures::state(); }, |data: &[u8]| pulse_fuzz::targets::tx_json(data));
