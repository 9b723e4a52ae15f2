//! Fuzz target `tx_json`: see `pulse_fuzz::targets::tx_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::tx_json(data));
