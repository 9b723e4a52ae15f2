//! Fuzz target `credentials`: see `pulse_fuzz::targets::credentials`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::credentials(data));
