//! A NATS server with JetStream.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{ServerProcess, StartFailure, start_on_free_port};
use crate::{READY_TIMEOUT, Tool};

/// How long a graceful stop may take before the server is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A `nats-server -js` on `127.0.0.1`, with its JetStream store in a temporary directory.
///
/// [`Nats::stop`] and [`Nats::restart`] keep the port and the store, so a test can take
/// the server away under a client and bring it back with its streams intact. Dropping the
/// handle kills the server and removes the store.
#[derive(Debug)]
pub struct Nats {
    // Declared before `dir` so the server dies before its store is removed.
    process: ServerProcess,
    binary: PathBuf,
    port: u16,
    store_dir: PathBuf,
    dir: TempDir,
}

impl Nats {
    /// Starts nats-server with JetStream on a free loopback port and waits until it
    /// accepts clients with JetStream enabled.
    ///
    /// # Panics
    /// If nats-server is not installed (run `scripts/deps`), or does not come up within
    /// [`READY_TIMEOUT`]; the message carries the end of its log.
    #[track_caller]
    pub fn start() -> Nats {
        let binary = Tool::NatsServer.path();
        let dir = tempfile::Builder::new()
            .prefix("pulse-nats-")
            .tempdir()
            .unwrap_or_else(|e| panic!("nats-server: cannot make a temp dir: {e}"));
        let store_dir = dir.path().join("jetstream");
        let mut process = ServerProcess::new("nats-server", dir.path().join("nats-server.log"));
        let port = start_on_free_port(&mut process, "start", |process, port| {
            launch(process, &binary, port, &store_dir)
        });
        Nats {
            process,
            binary,
            port,
            store_dir,
            dir,
        }
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory (`-sd`), kept across restarts.
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// The server's log (stdout and stderr of every run).
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Stops the server gracefully (SIGTERM, so JetStream flushes its store), waiting until
    /// it is gone. The port and store stay reserved for [`Nats::restart`]. Stopping a
    /// stopped server does nothing.
    pub fn stop(&mut self) {
        self.process.terminate(STOP_GRACE);
    }

    /// Kills the server at once (SIGKILL), as a crash would. Use [`Nats::restart`] to bring
    /// it back.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Stops the server if it runs, then starts it again on the same port with the same
    /// JetStream store, and waits until it accepts clients.
    ///
    /// # Panics
    /// If it does not come back within [`READY_TIMEOUT`] (for instance because another
    /// process took the port meanwhile).
    pub fn restart(&mut self) {
        self.stop();
        if let Err(failure) = launch(&mut self.process, &self.binary, self.port, &self.store_dir) {
            self.process
                .fail(&format!("restart on 127.0.0.1:{}", self.port), failure);
        }
    }

    /// The temporary directory holding the store and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn launch(
    process: &mut ServerProcess,
    binary: &Path,
    port: u16,
    store_dir: &Path,
) -> Result<(), StartFailure> {
    let mut command = Command::new(binary);
    command
        .arg("-js")
        .args(["-a", "127.0.0.1"])
        .args(["-p", &port.to_string()])
        .arg("-sd")
        .arg(store_dir);
    process.spawn(command);
    process.wait_ready(READY_TIMEOUT, || jetstream_ready(port))
}

/// Whether a client connecting to the port gets an `INFO` that announces JetStream.
fn jetstream_ready(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    if BufReader::new(stream).read_line(&mut line).is_err() {
        return false;
    }
    line.starts_with("INFO ") && line.contains("\"jetstream\":true")
}
