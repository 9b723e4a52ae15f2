//! js-ipfs, a node that speaks the Kubo RPC API.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::process::ServerProcess;
use crate::{Tool, http_request};

/// js-ipfs loads some 900 npm modules before it listens (about 4 s on an idle machine);
/// several nodes starting at once on two cores need more than the usual bound.
const IPFS_READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The configuration a new repository starts from, merged over js-ipfs's defaults.
///
/// Only the RPC API listens, on a port the kernel picks: no swarm (the node is offline
/// anyway), no gateway, no gRPC-over-websocket endpoint, no bootstrap peers, no delegate
/// routers, no mDNS, no NAT port mapping. js-ipfs writes the API's real address to
/// `$IPFS_PATH/api`, which is where the port is read from, so there is no port race.
const INIT_CONFIG: &str = r#"{
  "Addresses": {
    "Swarm": [],
    "Announce": [],
    "NoAnnounce": [],
    "API": "/ip4/127.0.0.1/tcp/0",
    "Gateway": [],
    "RPC": "",
    "Delegates": []
  },
  "Bootstrap": [],
  "Discovery": { "MDNS": { "Enabled": false }, "webRTCStar": { "Enabled": false } },
  "Swarm": { "DisableNatPortMap": true }
}
"#;

/// An offline js-ipfs daemon with its own repository, serving the Kubo RPC API on
/// `127.0.0.1`; killed and its repository removed on drop.
///
/// The repository is created by the daemon itself (`jsipfs daemon --init-config`), which
/// saves the two node start-ups that `jsipfs init` and `jsipfs config` would cost.
#[derive(Debug)]
pub struct Ipfs {
    process: ServerProcess,
    port: u16,
    repo: PathBuf,
    dir: TempDir,
}

impl Ipfs {
    /// Starts the daemon and waits until `POST /api/v0/version` answers.
    ///
    /// # Panics
    /// If js-ipfs is not installed (run `scripts/deps`), exits, or does not answer within
    /// 90 s; the message carries the end of its log.
    #[track_caller]
    pub fn start() -> Ipfs {
        let binary = Tool::Jsipfs.path();
        let dir = tempfile::Builder::new()
            .prefix("pulse-ipfs-")
            .tempdir()
            .unwrap_or_else(|e| panic!("js-ipfs: cannot make a temp dir: {e}"));
        let repo = dir.path().join("repo");
        let config = dir.path().join("init-config.json");
        std::fs::write(&config, INIT_CONFIG)
            .unwrap_or_else(|e| panic!("js-ipfs: cannot write {}: {e}", config.display()));

        let mut process = ServerProcess::new("js-ipfs", dir.path().join("ipfs.log"));
        let mut command = Command::new(&binary);
        command
            .arg("daemon")
            .arg("--offline")
            .arg("--init-config")
            .arg(&config)
            .args(["--init-profile", "test", "--enable-preload=false"])
            .env("IPFS_PATH", &repo)
            // js-ipfs's debug logging is switched on by DEBUG; keep the log readable.
            .env_remove("DEBUG")
            .current_dir(dir.path());
        process.spawn(command);

        let api_file = repo.join("api");
        let mut port = 0;
        let waited = process.wait_ready(IPFS_READY_TIMEOUT, || {
            if port == 0 {
                match std::fs::read_to_string(&api_file)
                    .ok()
                    .as_deref()
                    .and_then(api_port)
                {
                    Some(p) => port = p,
                    None => return false,
                }
            }
            version_answers(port)
        });
        if let Err(failure) = waited {
            process.fail("start", failure);
        }
        Ipfs {
            process,
            port,
            repo,
            dir,
        }
    }

    /// The RPC API's base URL, `http://127.0.0.1:PORT` (endpoints are under `/api/v0/`).
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The RPC API's port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The repository (`IPFS_PATH`).
    pub fn repo_path(&self) -> &Path {
        &self.repo
    }

    /// The daemon's log.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The temporary directory holding the repository and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the daemon, keeping the handle, so a test can see what a client does when its
    /// node is gone. Dropping the handle does the same.
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// Kills the daemon if it runs and starts it again on the same port with the same
    /// repository (what was added is still there), as a node restarted after a crash is.
    ///
    /// # Panics
    /// If the repository's configuration cannot be rewritten, or the daemon does not answer
    /// within its start-up time (another process may have taken the port meanwhile).
    pub fn restart(&mut self) {
        self.process.kill();
        // The first start chose a free port; pin it, so clients find the node again.
        let config_path = self.repo.join("config");
        let mut config: serde_json::Value = std::fs::read(&config_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| panic!("js-ipfs: cannot read {}", config_path.display()));
        config["Addresses"]["API"] = format!("/ip4/127.0.0.1/tcp/{}", self.port).into();
        std::fs::write(&config_path, config.to_string())
            .unwrap_or_else(|e| panic!("js-ipfs: cannot write {}: {e}", config_path.display()));
        // A killed daemon leaves its lock and API file behind.
        let _ = std::fs::remove_dir_all(self.repo.join("repo.lock"));
        let _ = std::fs::remove_file(self.repo.join("api"));
        let mut command = Command::new(Tool::Jsipfs.path());
        command
            .arg("daemon")
            .arg("--offline")
            .arg("--enable-preload=false")
            .env("IPFS_PATH", &self.repo)
            .env_remove("DEBUG")
            .current_dir(self.dir.path());
        self.process.spawn(command);
        let port = self.port;
        if let Err(failure) = self
            .process
            .wait_ready(IPFS_READY_TIMEOUT, || version_answers(port))
        {
            self.process
                .fail(&format!("restart on 127.0.0.1:{port}"), failure);
        }
    }
}

/// The TCP port in an API multiaddr such as `/ip4/127.0.0.1/tcp/41234/http`.
fn api_port(multiaddr: &str) -> Option<u16> {
    let mut parts = multiaddr.trim().split('/');
    parts.find(|p| *p == "tcp")?;
    parts.next()?.parse().ok().filter(|p| *p != 0)
}

fn version_answers(port: u16) -> bool {
    http_request(
        port,
        "POST",
        "/api/v0/version",
        None,
        Duration::from_secs(2),
    )
    .is_ok_and(|answer| answer.status == 200 && answer.text().contains("\"Version\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_port_reads_the_multiaddr() {
        assert_eq!(api_port("/ip4/127.0.0.1/tcp/41234/http"), Some(41234));
        assert_eq!(api_port("/ip4/127.0.0.1/tcp/5002\n"), Some(5002));
        assert_eq!(api_port("/ip4/127.0.0.1/tcp/0"), None);
        assert_eq!(api_port(""), None);
    }
}
