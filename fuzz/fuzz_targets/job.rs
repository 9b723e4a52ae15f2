//! Fuzz target `job`: see `pulse_fuzz::targets::job`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::job(data));
