//! Fuzz target `batch_data`: see `pulse_fuzz::targets::batch_data`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::batch_data(data));
