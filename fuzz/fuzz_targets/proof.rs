//! Fuzz target `proof`: see `pulse_fuzz::targets::proof`.
#![no_main]

// The fixtures are built before the first input, outside its time limit.
libfuzzer_sys::fuzz_target!(init: { pulse_fuzz::fixtures::keys(); }, |data: &[u8]| pulse_fuzz::targets::proof(data));
