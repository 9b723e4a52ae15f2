//! A NATS server with JetStream, secured as a deployment is: TLS on the client port with a
//! private CA, and NKey users with per-role permissions (see `pulse_access`). Anonymous
//! connections are refused.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pulse_access::{Deployment, DeploymentOptions, NatsEndpoint, Role, ServerTls};
use tempfile::TempDir;

use crate::process::{ServerProcess, StartFailure, start_on_free_port};
use crate::{READY_TIMEOUT, Tool};

/// How long a graceful stop may take before the server is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A `nats-server -js` on `127.0.0.1`, with its JetStream store in a temporary directory,
/// TLS and per-role NKey users ([`Nats::endpoint`] gives a role's connection details).
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
    access: Deployment,
    tls: bool,
    dir: TempDir,
}

/// How [`Nats::start_with`] secures the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatsOptions {
    /// TLS on the client port (on by default; off only to measure what TLS costs).
    pub tls: bool,
}

impl Default for NatsOptions {
    fn default() -> Self {
        Self { tls: true }
    }
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
        Self::start_with(NatsOptions::default())
    }

    /// As [`Nats::start`], with or without TLS.
    ///
    /// # Panics
    /// As [`Nats::start`].
    #[track_caller]
    pub fn start_with(options: NatsOptions) -> Nats {
        let binary = Tool::NatsServer.path();
        let dir = tempfile::Builder::new()
            .prefix("pulse-nats-")
            .tempdir()
            .unwrap_or_else(|e| panic!("nats-server: cannot make a temp dir: {e}"));
        let store_dir = dir.path().join("jetstream");
        let access_options = DeploymentOptions {
            tls: if options.tls {
                DeploymentOptions::default().tls
            } else {
                ServerTls::Off
            },
            ..DeploymentOptions::default()
        };
        let access = Deployment::init(&dir.path().join("access"), &access_options)
            .unwrap_or_else(|e| panic!("nats-server: setting up its users and TLS: {e}"));
        let config = access.config_path();
        let tls = options.tls;
        let mut process = ServerProcess::new("nats-server", dir.path().join("nats-server.log"));
        let port = start_on_free_port(&mut process, "start", |process, port| {
            launch(process, &binary, port, &store_dir, &config)
        });
        Nats {
            process,
            binary,
            port,
            store_dir,
            access,
            tls,
            dir,
        }
    }

    /// The client URL, `tls://127.0.0.1:PORT` (`nats://` when started without TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The users, credentials files and TLS material.
    pub fn access(&self) -> &Deployment {
        &self.access
    }

    /// The CA certificate the server's certificate chains to (`None` without TLS).
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.access.ca_path().map(Path::to_owned)
    }

    /// How a user of `role` named `name` connects: the URL, the CA and its credentials.
    /// The `coordinator`, `operator` and `client` users exist from the start; a worker
    /// named for the first time is added (and the server reloaded), so tests can name
    /// their workers freely.
    ///
    /// # Panics
    /// If the user cannot be added or the server does not reload.
    pub fn endpoint(&mut self, role: Role, name: &str) -> NatsEndpoint {
        let exists = self
            .access
            .users()
            .iter()
            .any(|u| u.role == role && u.name == name);
        if !exists {
            self.access
                .add_user(role, name)
                .unwrap_or_else(|e| panic!("nats-server: adding {role} `{name}`: {e}"));
            self.reload();
        }
        self.existing(role, name)
    }

    fn existing(&self, role: Role, name: &str) -> NatsEndpoint {
        NatsEndpoint {
            url: self.url(),
            ca: self.ca_path(),
            credentials: Some(self.access.credentials_path(role, name)),
        }
    }

    /// The coordinator's endpoint.
    pub fn coordinator(&self) -> NatsEndpoint {
        self.existing(Role::Coordinator, "coordinator")
    }

    /// The `client` user's endpoint.
    pub fn client(&self) -> NatsEndpoint {
        self.existing(Role::Client, "client")
    }

    /// The `operator` user's endpoint (monitoring, in the system account).
    pub fn operator(&self) -> NatsEndpoint {
        self.existing(Role::Operator, "operator")
    }

    /// A worker's endpoint (the worker user is added on first use).
    pub fn worker(&mut self, id: &str) -> NatsEndpoint {
        self.endpoint(Role::Worker, id)
    }

    /// Revokes a user and reloads the server: its connections are closed.
    ///
    /// # Panics
    /// If the user does not exist or the server does not reload.
    pub fn revoke(&mut self, role: Role, name: &str) {
        self.access
            .revoke(role, name)
            .unwrap_or_else(|e| panic!("nats-server: revoking {role} `{name}`: {e}"));
        self.reload();
    }

    /// Asks the server to reload its configuration (SIGHUP) and waits until it says it did.
    ///
    /// # Panics
    /// If the server is not running or does not reload within [`READY_TIMEOUT`].
    pub fn reload(&mut self) {
        const DONE: &str = "Reloaded server configuration";
        let before = count_in_log(self.log_path(), DONE);
        let pid = self
            .process
            .pid()
            .unwrap_or_else(|| panic!("nats-server: reload asked while it is not running"));
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("nats-server: sending SIGHUP: {e}"));
        assert!(status.success(), "nats-server: kill -HUP {pid} failed");
        let start = std::time::Instant::now();
        while count_in_log(self.log_path(), DONE) <= before {
            assert!(
                start.elapsed() < READY_TIMEOUT,
                "nats-server did not reload its configuration within {READY_TIMEOUT:?}; its log: {}",
                self.log_path().display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
        let config = self.access.config_path();
        if let Err(failure) = launch(
            &mut self.process,
            &self.binary,
            self.port,
            &self.store_dir,
            &config,
        ) {
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
    config: &Path,
) -> Result<(), StartFailure> {
    let mut command = Command::new(binary);
    command.arg("-c").arg(config);
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

fn count_in_log(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.matches(needle).count())
        .unwrap_or(0)
}
