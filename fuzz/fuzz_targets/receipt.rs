//! Fuzz target `receipt`: see `pulse_fuzz::targets::receipt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::receipt(data));
