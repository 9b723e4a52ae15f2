//! Fuzz target `job_result`: see `pulse_fuzz::targets::job_result`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::job_result(data));
