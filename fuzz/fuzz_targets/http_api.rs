//! Fuzz target `http_api`: see `pulse_fuzz::targets::http_api`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::http_api(data));
