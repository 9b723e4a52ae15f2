//! Fuzz target `ceremony_file`: see `pulse_fuzz::targets::ceremony_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::ceremony_file(data));
