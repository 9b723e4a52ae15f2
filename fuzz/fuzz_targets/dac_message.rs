//! Fuzz target `dac_message`: see `pulse_fuzz::targets::dac_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::dac_message(data));
