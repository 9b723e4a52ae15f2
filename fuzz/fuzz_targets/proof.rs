//! Fuzz target `proof`: see `pulse_fuzz::targets::proof`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::proof(data));
