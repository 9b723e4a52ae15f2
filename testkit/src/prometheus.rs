//! Prometheus, for tests of Pulse's metrics and dashboards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{ServerProcess, start_on_free_port};
use crate::{READY_TIMEOUT, Tool, http_request};

/// A Prometheus server on `127.0.0.1` with its TSDB in a temporary directory; killed and
/// its data removed on drop.
#[derive(Debug)]
pub struct Prometheus {
    process: ServerProcess,
    port: u16,
    config: PathBuf,
    dir: TempDir,
}

impl Prometheus {
    /// Writes `config_yaml` (a complete `prometheus.yml`: `global`, `scrape_configs`, …)
    /// and starts Prometheus with it, waiting until `/-/ready` answers 200.
    ///
    /// Relative paths in the configuration (rule files) are relative to the temporary
    /// directory the configuration is written to; give absolute ones.
    ///
    /// # Panics
    /// If Prometheus is not installed (run `scripts/deps`), rejects the configuration, or
    /// is not ready within [`READY_TIMEOUT`]; the message carries the end of its log.
    #[track_caller]
    pub fn start(config_yaml: &str) -> Prometheus {
        let binary = Tool::Prometheus.path();
        let dir = tempfile::Builder::new()
            .prefix("pulse-prometheus-")
            .tempdir()
            .unwrap_or_else(|e| panic!("prometheus: cannot make a temp dir: {e}"));
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml)
            .unwrap_or_else(|e| panic!("prometheus: cannot write {}: {e}", config.display()));
        let data = dir.path().join("data");

        let mut process = ServerProcess::new("prometheus", dir.path().join("prometheus.log"));
        let port = start_on_free_port(&mut process, "start", |process, port| {
            let mut command = Command::new(&binary);
            command
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .current_dir(dir.path());
            process.spawn(command);
            process.wait_ready(READY_TIMEOUT, || {
                http_request(port, "GET", "/-/ready", None, Duration::from_secs(2))
                    .is_ok_and(|answer| answer.status == 200)
            })
        });
        Prometheus {
            process,
            port,
            config,
            dir,
        }
    }

    /// The base URL, `http://127.0.0.1:PORT` (queries go to `/api/v1/query`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The configuration file it runs with.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Prometheus's log.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The temporary directory holding the configuration, the TSDB and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills Prometheus, keeping the handle. Dropping the handle does the same.
    pub fn stop(&mut self) {
        self.process.kill();
    }
}

/// The `promtool` binary (for `promtool check config` / `check rules` in tests).
///
/// # Panics
/// If it is not installed: run `scripts/deps`.
#[track_caller]
pub fn promtool_path() -> PathBuf {
    Tool::Promtool.path()
}
