//! Fuzz target `sealed_batch`: see `pulse_fuzz::targets::sealed_batch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::sealed_batch(data));
