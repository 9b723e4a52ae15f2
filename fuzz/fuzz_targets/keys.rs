//! Fuzz target `keys`: see `pulse_fuzz::targets::keys`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::keys(data));
