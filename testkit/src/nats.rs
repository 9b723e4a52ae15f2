//! A NATS server with JetStream, secured as a deployment is: TLS on the client port with a
//! private CA, and NKey users with per-role permissions (see `pulse_access`). Anonymous
//! connections are refused. One server, or a JetStream cluster of several on loopback.

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

/// The cluster's name in every node's `--cluster_name`.
const CLUSTER_NAME: &str = "pulse";

/// A `nats-server -js` on `127.0.0.1` (or a cluster of them, [`NatsOptions::nodes`]), with
/// its JetStream store in a temporary directory, TLS and per-role NKey users
/// ([`Nats::endpoint`] gives a role's connection details).
///
/// [`Nats::stop`] and [`Nats::restart`] keep the ports and the stores, so a test can take
/// the server away under a client and bring it back with its streams intact;
/// [`Nats::kill_node`] and [`Nats::restart_node`] do it to one node of a cluster. Dropping
/// the handle kills every node and removes the stores.
#[derive(Debug)]
pub struct Nats {
    // Declared before `dir` so the servers die before their stores are removed.
    nodes: Vec<Node>,
    binary: PathBuf,
    access: Deployment,
    tls: bool,
    dir: TempDir,
}

/// One nats-server of a [`Nats`].
#[derive(Debug)]
struct Node {
    process: ServerProcess,
    name: String,
    port: u16,
    store_dir: PathBuf,
    /// The route and monitoring ports, for a node of a cluster.
    cluster: Option<ClusterPorts>,
}

#[derive(Clone, Debug)]
struct ClusterPorts {
    route: u16,
    monitor: u16,
    /// Every node's route URL, separated by commas.
    routes: String,
    /// Where the node's own configuration file is written.
    config_dir: PathBuf,
}

/// How [`Nats::start_with`] secures and shapes the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatsOptions {
    /// TLS on the client port (on by default; off only to measure what TLS costs).
    pub tls: bool,
    /// Servers: 1 (the default) is a single server; 3 is a JetStream cluster on loopback
    /// (routes between the nodes on their own ports, plain TCP since they never leave the
    /// machine), so streams can keep three replicas and survive the loss of one node.
    pub nodes: usize,
}

impl Default for NatsOptions {
    fn default() -> Self {
        Self {
            tls: true,
            nodes: 1,
        }
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

    /// As [`Nats::start`], with or without TLS, one server or a cluster. A cluster is ready
    /// when every node reports itself healthy (`/healthz`: JetStream up, a meta leader
    /// elected, every replica current).
    ///
    /// # Panics
    /// As [`Nats::start`]; for `nodes` of 0.
    #[track_caller]
    pub fn start_with(options: NatsOptions) -> Nats {
        assert!(
            options.nodes >= 1,
            "nats-server: a cluster needs at least one node"
        );
        let binary = Tool::NatsServer.path();
        let dir = tempfile::Builder::new()
            .prefix("pulse-nats-")
            .tempdir()
            .unwrap_or_else(|e| panic!("nats-server: cannot make a temp dir: {e}"));
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
        let nodes = if options.nodes == 1 {
            let store_dir = dir.path().join("jetstream");
            let mut process = ServerProcess::new("nats-server", dir.path().join("nats-server.log"));
            let port = start_on_free_port(&mut process, "start", |process, port| {
                launch(process, &binary, port, &store_dir, &config, None)?;
                process.wait_ready(READY_TIMEOUT, || jetstream_ready(port))
            });
            vec![Node {
                process,
                name: "nats-server".to_owned(),
                port,
                store_dir,
                cluster: None,
            }]
        } else {
            start_cluster(&binary, dir.path(), &config, options.nodes)
        };
        Nats {
            nodes,
            binary,
            access,
            tls: options.tls,
            dir,
        }
    }

    /// The client URLs, `tls://127.0.0.1:PORT` (`nats://` when started without TLS), of
    /// every node, separated by commas (as `NatsEndpoint::url` takes them).
    pub fn url(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.node_url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URL of node `i` alone.
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn node_url(&self, i: usize) -> String {
        let scheme = if self.tls { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.nodes[i].port)
    }

    /// How many nodes there are.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The users, credentials files and TLS material.
    pub fn access(&self) -> &Deployment {
        &self.access
    }

    /// The CA certificate the server's certificate chains to (`None` without TLS).
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.access.ca_path().map(Path::to_owned)
    }

    /// How a user of `role` named `name` connects: the URLs, the CA and its credentials.
    /// The `coordinator`, `operator` and `client` users exist from the start; a worker
    /// named for the first time is added (and the servers reloaded), so tests can name
    /// their workers freely.
    ///
    /// # Panics
    /// If the user cannot be added or a server does not reload.
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

    /// Revokes a user and reloads the servers: its connections are closed.
    ///
    /// # Panics
    /// If the user does not exist or a server does not reload.
    pub fn revoke(&mut self, role: Role, name: &str) {
        self.access
            .revoke(role, name)
            .unwrap_or_else(|e| panic!("nats-server: revoking {role} `{name}`: {e}"));
        self.reload();
    }

    /// Asks every running server to reload its configuration (SIGHUP) and waits until each
    /// says it did. A killed node reads the configuration when it restarts.
    ///
    /// # Panics
    /// If no server runs, or one does not reload within [`READY_TIMEOUT`].
    pub fn reload(&mut self) {
        const DONE: &str = "Reloaded server configuration";
        let mut reloaded = 0;
        for node in &mut self.nodes {
            if !node.process.is_running() {
                continue;
            }
            node.config(&self.access.config_path());
            let log = node.process.log_path().to_owned();
            let before = count_in_log(&log, DONE);
            let Some(pid) = node.process.pid() else {
                continue;
            };
            let status = Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .unwrap_or_else(|e| panic!("{}: sending SIGHUP: {e}", node.name));
            assert!(status.success(), "{}: kill -HUP {pid} failed", node.name);
            let start = std::time::Instant::now();
            while count_in_log(&log, DONE) <= before {
                assert!(
                    start.elapsed() < READY_TIMEOUT,
                    "{} did not reload its configuration within {READY_TIMEOUT:?}; its log: {}",
                    node.name,
                    log.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            reloaded += 1;
        }
        assert!(reloaded > 0, "nats-server: reload asked while none runs");
    }

    /// The client port on `127.0.0.1` (of the first node).
    pub fn port(&self) -> u16 {
        self.nodes[0].port
    }

    /// The JetStream store directory (`-sd`) of the first node, kept across restarts.
    pub fn store_dir(&self) -> &Path {
        &self.nodes[0].store_dir
    }

    /// The first node's log (stdout and stderr of every run).
    pub fn log_path(&self) -> &Path {
        self.nodes[0].process.log_path()
    }

    /// Node `i`'s log.
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn node_log_path(&self, i: usize) -> &Path {
        self.nodes[i].process.log_path()
    }

    /// Whether every server process is running.
    pub fn is_running(&mut self) -> bool {
        self.nodes.iter_mut().all(|n| n.process.is_running())
    }

    /// Stops every server gracefully (SIGTERM, so JetStream flushes its store), waiting
    /// until they are gone. The ports and stores stay reserved for [`Nats::restart`].
    /// Stopping a stopped server does nothing.
    pub fn stop(&mut self) {
        for node in &mut self.nodes {
            node.process.terminate(STOP_GRACE);
        }
    }

    /// Kills every server at once (SIGKILL), as a crash would. Use [`Nats::restart`] to
    /// bring them back.
    pub fn kill(&mut self) {
        for node in &mut self.nodes {
            node.process.kill();
        }
    }

    /// Kills node `i` (SIGKILL), as a crash of that machine would, and leaves the others
    /// running.
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i].process.kill();
    }

    /// Stops every server if it runs, then starts them again on the same ports with the
    /// same JetStream stores, and waits until they accept clients.
    ///
    /// # Panics
    /// If they do not come back within [`READY_TIMEOUT`] (for instance because another
    /// process took a port meanwhile).
    pub fn restart(&mut self) {
        self.stop();
        let config = self.access.config_path();
        for node in &mut self.nodes {
            node.launch(&self.binary, &config);
        }
        for node in &mut self.nodes {
            node.wait_ready();
        }
    }

    /// Starts node `i` again (after [`Nats::kill_node`]) on its ports with its store, and
    /// waits until it reports itself healthy: for a node of a cluster that means it has
    /// caught up with the meta leader and with every replica it holds.
    ///
    /// # Panics
    /// If there is no node `i`, or it does not come back within [`READY_TIMEOUT`].
    pub fn restart_node(&mut self, i: usize) {
        let config = self.access.config_path();
        let node = &mut self.nodes[i];
        node.process.terminate(STOP_GRACE);
        node.launch(&self.binary, &config);
        node.wait_ready();
    }

    /// Node `i`'s `/healthz` answer (status and body); `None` when it does not answer or
    /// is a single server (which has no monitoring port).
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn node_health(&self, i: usize) -> Option<(u16, String)> {
        let monitor = self.nodes[i].cluster.as_ref()?.monitor;
        health(monitor).ok()
    }

    /// The temporary directory holding the stores and the logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Node {
    /// The configuration this node runs with: the deployment's, and for a node of a
    /// cluster its own file with its name and cluster settings added (a reload reads them
    /// from the file, not from the command line).
    fn config(&self, access_config: &Path) -> PathBuf {
        let Some(c) = &self.cluster else {
            return access_config.to_owned();
        };
        let text = std::fs::read_to_string(access_config)
            .unwrap_or_else(|e| panic!("{}: reading {}: {e}", self.name, access_config.display()));
        let json: String = text.lines().filter(|l| !l.starts_with('#')).collect();
        let mut config: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| {
            panic!(
                "{}: {} is not JSON: {e}",
                self.name,
                access_config.display()
            )
        });
        config["server_name"] = self.name.clone().into();
        config["cluster"] = serde_json::json!({
            "name": CLUSTER_NAME,
            "listen": format!("127.0.0.1:{}", c.route),
            "routes": c.routes.split(',').collect::<Vec<_>>(),
        });
        let path = c.config_dir.join(format!("{}.conf", self.name));
        std::fs::write(&path, config.to_string())
            .unwrap_or_else(|e| panic!("{}: writing {}: {e}", self.name, path.display()));
        path
    }

    fn launch(&mut self, binary: &Path, access_config: &Path) {
        let config = self.config(access_config);
        if let Err(failure) = launch(
            &mut self.process,
            binary,
            self.port,
            &self.store_dir,
            &config,
            self.cluster.as_ref(),
        ) {
            self.process
                .fail(&format!("start on 127.0.0.1:{}", self.port), failure);
        }
    }

    /// Waits for JetStream in the `INFO` (a single server) or a healthy `/healthz` (a
    /// cluster node).
    fn wait_ready(&mut self) {
        let port = self.port;
        let monitor = self.cluster.as_ref().map(|c| c.monitor);
        let ready = self.process.wait_ready(READY_TIMEOUT, || match monitor {
            Some(m) => health(m).is_ok_and(|(status, _)| status == 200),
            None => jetstream_ready(port),
        });
        if let Err(failure) = ready {
            self.process
                .fail(&format!("start on 127.0.0.1:{}", self.port), failure);
        }
    }
}

/// Starts `count` nodes routed to each other, then waits until every one is healthy (one
/// node alone never is: JetStream needs a quorum to elect its meta leader).
///
/// The ports are taken free a moment before, so another process can take one first: a
/// node that exits saying so makes the whole cluster start again on fresh ports (up to
/// [`CLUSTER_ATTEMPTS`] times). While waiting, every node is watched, not only the one
/// waited on: a node that died leaves the others without their quorum, and the failure
/// names it with its log.
fn start_cluster(binary: &Path, dir: &Path, config: &Path, count: usize) -> Vec<Node> {
    for attempt in 1..=CLUSTER_ATTEMPTS {
        let mut nodes = cluster_nodes(dir, count);
        let mut failed = None;
        for (i, node) in nodes.iter_mut().enumerate() {
            let config = node.config(config);
            let cluster = node.cluster.as_ref();
            if let Err(f) = launch(
                &mut node.process,
                binary,
                node.port,
                &node.store_dir,
                &config,
                cluster,
            ) {
                failed = Some((i, f));
                break;
            }
        }
        let failed = match failed {
            Some(f) => f,
            None => match wait_cluster(&mut nodes) {
                Ok(()) => return nodes,
                Err(f) => f,
            },
        };
        let (i, failure) = failed;
        let port_lost = nodes[i].process.log_says_port_in_use();
        if !port_lost || attempt == CLUSTER_ATTEMPTS {
            let states: Vec<String> = nodes
                .iter_mut()
                .map(|n| {
                    let state = if n.process.is_running() {
                        "running"
                    } else {
                        "stopped"
                    };
                    format!("{} {state}", n.name)
                })
                .collect();
            for (j, n) in nodes.iter_mut().enumerate() {
                if j != i {
                    n.process.kill();
                }
            }
            let port = nodes[i].port;
            nodes[i].process.fail(
                &format!(
                    "start on 127.0.0.1:{port} as one of a {count}-node cluster ({})",
                    states.join(", ")
                ),
                failure,
            );
        }
        for node in &mut nodes {
            node.process.kill();
            let _ = std::fs::remove_dir_all(&node.store_dir);
        }
        eprintln!(
            "nats-server: {} lost a port to another process; starting the cluster again on fresh ports",
            nodes[i].name
        );
    }
    unreachable!("the last attempt returns or fails")
}

/// Tries at starting a cluster whose ports another process took first.
const CLUSTER_ATTEMPTS: usize = 3;

/// The nodes of a cluster on fresh ports, not yet started.
fn cluster_nodes(dir: &Path, count: usize) -> Vec<Node> {
    let route_ports: Vec<u16> = (0..count).map(|_| crate::free_port()).collect();
    let routes = route_ports
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    route_ports
        .iter()
        .enumerate()
        .map(|(i, &route)| {
            let name = format!("nats-{}", i + 1);
            Node {
                process: ServerProcess::new("nats-server", dir.join(format!("{name}.log"))),
                port: crate::free_port(),
                store_dir: dir.join(format!("jetstream-{}", i + 1)),
                cluster: Some(ClusterPorts {
                    route,
                    monitor: crate::free_port(),
                    routes: routes.clone(),
                    config_dir: dir.to_owned(),
                }),
                name,
            }
        })
        .collect()
}

/// How long a cluster's nodes get, together, to be healthy: twice a single server's
/// [`READY_TIMEOUT`], for the meta leader's election on a loaded machine.
const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(2 * READY_TIMEOUT.as_secs());

/// Waits until every node's `/healthz` answers 200, all within [`CLUSTER_READY_TIMEOUT`];
/// the first node that exits, or one still unhealthy at the end, is the failure.
fn wait_cluster(nodes: &mut [Node]) -> Result<(), (usize, StartFailure)> {
    let start = std::time::Instant::now();
    let mut healthy = vec![false; nodes.len()];
    loop {
        for (i, node) in nodes.iter_mut().enumerate() {
            if healthy[i] {
                continue;
            }
            let monitor = node.cluster.as_ref().map(|c| c.monitor);
            let ready = || monitor.is_some_and(|m| health(m).is_ok_and(|(s, _)| s == 200));
            match node.process.wait_ready(Duration::ZERO, ready) {
                Ok(()) => healthy[i] = true,
                Err(StartFailure::Exited(status)) => {
                    return Err((i, StartFailure::Exited(status)));
                }
                Err(StartFailure::TimedOut(_)) => {}
            }
        }
        if healthy.iter().all(|&h| h) {
            return Ok(());
        }
        if start.elapsed() > CLUSTER_READY_TIMEOUT {
            let i = healthy.iter().position(|&h| !h).unwrap_or(0);
            return Err((i, StartFailure::TimedOut(CLUSTER_READY_TIMEOUT)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Spawns nats-server. A node of a cluster also gets a monitoring port on loopback (its
/// name and routes are in its configuration file). Returns once it is spawned
/// (callers wait for readiness as fits them), or with the exit status when it ended at
/// once.
fn launch(
    process: &mut ServerProcess,
    binary: &Path,
    port: u16,
    store_dir: &Path,
    config: &Path,
    cluster: Option<&ClusterPorts>,
) -> Result<(), StartFailure> {
    let mut command = Command::new(binary);
    command.arg("-c").arg(config);
    command
        .arg("-js")
        .args(["-a", "127.0.0.1"])
        .args(["-p", &port.to_string()])
        .arg("-sd")
        .arg(store_dir);
    if let Some(c) = cluster {
        command.args(["-m", &c.monitor.to_string()]);
    }
    process.spawn(command);
    match process.wait_ready(Duration::ZERO, || false) {
        Err(StartFailure::Exited(status)) => Err(StartFailure::Exited(status)),
        _ => Ok(()),
    }
}

/// `GET /healthz` on a node's monitoring port.
fn health(monitor: u16) -> std::io::Result<(u16, String)> {
    let answer = crate::http_request(monitor, "GET", "/healthz", None, Duration::from_secs(2))?;
    Ok((answer.status, answer.text()))
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
