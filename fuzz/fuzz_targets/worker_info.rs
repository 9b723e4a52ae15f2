//! Fuzz target `worker_info`: see `pulse_fuzz::targets::worker_info`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::worker_info(data));
