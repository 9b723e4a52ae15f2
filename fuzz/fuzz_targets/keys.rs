//! Fuzz target `keys`: see `pulse_fuzz::targets::keys`.
#![no_main]

// The fixtures are built before the first input, outside its time limit.
libfuzzer_sys::fuzz_target!(init: { pulse_fuzz::fixtures::keys(); }, |data: &[u8]| pulse_fuzz::targets::keys(data));
