//! Fuzz target `envelope`: see `pulse_fuzz::targets::envelope`.
#![no_main]

// The fixtures are built before the first input, outside its time limit.
libfuzzer_sys::fuzz_target!(init: { pulse_fuzz::fixtures::record(); }, |data: &[u8]| pulse_fuzz::targets::envelope(data));
