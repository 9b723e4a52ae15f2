//! Fuzz target `ceremony_message`: see `pulse_fuzz::targets::ceremony_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::ceremony_message(data));
