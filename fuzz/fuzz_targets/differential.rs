//! Fuzz target `differential`: transaction sequences drawn from the input, applied by the
//! native rules and checked against the chunk circuit (`pulse_circuits::differential`).
//! Any disagreement panics with the finding.
#![no_main]

// Warm up (keys and tables) before the first input, outside its time limit.
libfuzzer_sys::fuzz_target!(
    init: {
        let _ = pulse_circuits::differential::run(&[]);
    },
    |data: &[u8]| pulse_fuzz::targets::differential(data)
);
