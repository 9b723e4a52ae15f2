//! Fuzz target `shard`: see `pulse_fuzz::targets::shard`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pulse_fuzz::targets::shard(data));
