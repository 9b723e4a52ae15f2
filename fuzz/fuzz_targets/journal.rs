//! Fuzz target `journal`: see `pulse_fuzz::targets::journal`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::journal(data));
