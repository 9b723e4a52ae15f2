//! A server child process: its log file, start-up wait, and teardown.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often a start-up wait polls the server.
const POLL: Duration = Duration::from_millis(20);
/// How many times a server is started on a fresh port after losing a port race.
const PORT_ATTEMPTS: usize = 5;
/// How much of the log a panic message shows.
const LOG_TAIL_BYTES: u64 = 4096;

/// A running (or stopped) server process whose stdout and stderr go to a log file.
///
/// Dropping it kills the process and reaps it.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    name: &'static str,
    child: Option<Child>,
    log_path: PathBuf,
}

/// Why a server did not come up.
#[derive(Debug)]
pub(crate) enum StartFailure {
    /// The process ended before it answered.
    Exited(ExitStatus),
    /// It did not answer in time.
    TimedOut(Duration),
}

impl ServerProcess {
    /// A handle with no process yet; [`ServerProcess::spawn`] starts one.
    pub(crate) fn new(name: &'static str, log_path: PathBuf) -> Self {
        Self {
            name,
            child: None,
            log_path,
        }
    }

    /// Starts `command` with its output appended to the log file, replacing (and killing)
    /// any process this handle still had.
    ///
    /// # Panics
    /// If the log cannot be opened or the program cannot be started.
    pub(crate) fn spawn(&mut self, mut command: Command) {
        self.kill();
        let log = open_log(&self.log_path);
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("{}: cannot share the log file: {e}", self.name));
        command.stdin(Stdio::null()).stdout(log).stderr(log_err);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "{}: cannot start {:?}: {e}; run scripts/deps",
                self.name,
                command.get_program()
            )
        });
        self.child = Some(child);
    }

    /// The running process's id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (a finished one is reaped).
    pub(crate) fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Polls `ready` until it says yes, the process exits, or `timeout` passes.
    pub(crate) fn wait_ready(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), StartFailure> {
        let start = Instant::now();
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(status) = self.exit_status() {
                return Err(StartFailure::Exited(status));
            }
            if start.elapsed() > timeout {
                return Err(StartFailure::TimedOut(timeout));
            }
            thread::sleep(POLL);
        }
    }

    /// Sends SIGTERM and waits up to `grace` for the process to end, then kills it.
    ///
    /// `std` can only send SIGKILL, so SIGTERM goes through the `kill` program; if that is
    /// missing the process is killed outright.
    pub(crate) fn terminate(&mut self, grace: Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let sent = Command::new("kill")
                .args(["-s", "TERM", &child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if sent {
                let start = Instant::now();
                while start.elapsed() < grace {
                    if !matches!(child.try_wait(), Ok(None)) {
                        break;
                    }
                    thread::sleep(POLL);
                }
            }
        }
        self.kill();
    }

    /// Kills the process (SIGKILL) and reaps it; nothing happens if there is none.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Killing an already finished process fails harmlessly; `wait` reaps either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The end of the log, for panic messages.
    pub(crate) fn log_tail(&self) -> String {
        log_tail(&self.log_path)
    }

    /// Whether the log says a port was taken, the only failure worth retrying.
    pub(crate) fn log_says_port_in_use(&self) -> bool {
        let tail = self.log_tail().to_ascii_lowercase();
        tail.contains("address already in use") || tail.contains("eaddrinuse")
    }

    /// Panics with the failure and the end of the log.
    pub(crate) fn fail(&mut self, what: &str, failure: StartFailure) -> ! {
        self.kill();
        let why = match failure {
            StartFailure::Exited(status) => format!("it exited ({status}) before answering"),
            StartFailure::TimedOut(after) => format!("it did not answer within {after:?}"),
        };
        panic!(
            "{}: {what} failed: {why}\n--- end of {} ---\n{}",
            self.name,
            self.log_path.display(),
            self.log_tail()
        );
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn open_log(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open log file {}: {e}", path.display()))
}

fn log_tail(path: &Path) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::from("(no log)");
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
    let mut tail = Vec::new();
    let _ = file.read_to_end(&mut tail);
    String::from_utf8_lossy(&tail).into_owned()
}

/// Starts a server on a free port, trying again on a fresh port when the port was taken
/// between [`crate::free_port`] and the server's bind.
///
/// `attempt` spawns the server on the port it is given and waits for it.
pub(crate) fn start_on_free_port(
    process: &mut ServerProcess,
    what: &str,
    mut attempt: impl FnMut(&mut ServerProcess, u16) -> Result<(), StartFailure>,
) -> u16 {
    let mut tries = 0;
    loop {
        tries += 1;
        let port = crate::free_port();
        match attempt(process, port) {
            Ok(()) => return port,
            Err(StartFailure::Exited(_))
                if tries < PORT_ATTEMPTS && process.log_says_port_in_use() =>
            {
                process.kill();
            }
            Err(failure) => process.fail(&format!("{what} on 127.0.0.1:{port}"), failure),
        }
    }
}
