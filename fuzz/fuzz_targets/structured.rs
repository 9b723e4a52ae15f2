//! Fuzz target `structured`: JSON built from the protocol's own keys and words
//! (`arbitrary`-derived), serialised, mutated byte by byte, and read by the decoder of the
//! kind it is sent as. See `pulse_fuzz::json`.
#![no_main]

// The fixtures are built before the first input, outside its time limit.
libfuzzer_sys::fuzz_target!(
    init: {
        pulse_fuzz::fixtures::state();
        pulse_fuzz::fixtures::keys();
        pulse_fuzz::fixtures::record();
    },
    |input: pulse_fuzz::json::Structured| pulse_fuzz::targets::structured(&input)
);
