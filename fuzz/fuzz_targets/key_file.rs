//! Fuzz target `key_file`: see `pulse_fuzz::targets::key_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::key_file(data));
