//! Fuzz target `ipfs_answer`: see `pulse_fuzz::targets::ipfs_answer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::ipfs_answer(data));
