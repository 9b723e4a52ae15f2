//! Fuzz target `envelope`: see `pulse_fuzz::targets::envelope`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::envelope(data));
