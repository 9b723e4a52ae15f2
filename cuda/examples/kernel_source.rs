//! Prints the assembled kernel program, for reading it or feeding it to another compiler:
//! `cargo run -p pulse-gpu --example kernel_source > pulse.cl`.
#![allow(clippy::print_stdout)]

fn main() {
    print!("{}", pulse_gpu::source::program());
}
