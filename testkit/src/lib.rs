//! Real servers on loopback for Pulse's tests.
//!
//! Pulse's integration tests run against the real components, never mocks: a NATS server
//! with JetStream ([`Nats`]), an anvil Ethereum dev node ([`Anvil`]), a js-ipfs node speaking
//! the Kubo RPC API ([`Ipfs`]) and Prometheus ([`Prometheus`]). Each handle starts its server
//! on a free `127.0.0.1` port with a temporary directory of its own, waits until the server
//! answers, and on drop kills it, reaps it and removes the directory.
//!
//! The binaries are installed by `scripts/deps`, which writes their paths to
//! `$PULSE_CACHE_DIR/tools.env` (see [`Tool`] for how a binary is found). A missing binary
//! is a test failure with a message that says to run `scripts/deps`, never a silent skip.
//!
//! Starting and stopping block the calling thread (seconds at most; js-ipfs takes about
//! four), which is fine at the top of a `#[tokio::test]`.
//!
//! ```no_run
//! let nats = pulse_testkit::Nats::start();
//! println!("connect to {}", nats.url());
//! // nats-server is killed and its store removed when `nats` goes out of scope.
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod anvil;
mod chromium;
mod http;
mod ipfs;
mod nats;
mod process;
mod prometheus;
mod tools;

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

pub use anvil::{ANVIL_CHAIN_ID, Anvil, DEV_ACCOUNTS, DevAccount};
pub use chromium::{
    CHROMIUM_HEADLESS_ARGS, chromium_path, playwright_command, playwright_core_dir,
};
pub use http::{HttpAnswer, http_request};
pub use ipfs::Ipfs;
pub use nats::{Nats, NatsOptions};
pub use prometheus::{Prometheus, promtool_path};
pub use pulse_access::{NatsEndpoint, Role};
pub use tools::{Tool, ToolNotFound, cache_dir, js_dir};

/// How long a server may take to answer after it was started before the start panics.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A TCP port on `127.0.0.1` that was free a moment ago.
///
/// The port is found by binding port 0 and releasing it, so another process can take it
/// before the caller binds it; the servers here retry on a fresh port when that happens.
///
/// # Panics
/// If no loopback port can be bound at all.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("cannot bind a free port on 127.0.0.1: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("cannot read the address of a bound port: {e}"))
        .port()
}
