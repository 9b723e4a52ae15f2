//! Fuzz target `http_api`: see `pulse_fuzz::targets::http_api`.
#![no_main]

// The fixtures are built before the first input, outside its time limit.
libfuzzer_sys::fuzz_target!(init: { pulse_fuzz::fixtures::api(); }, |data: &[u8]| pulse_fuzz::targets::http_api(data));
