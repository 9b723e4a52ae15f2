//! Headless Chromium driven by playwright-core, for tests of web pages Pulse serves (the
//! coordinator's status page).
//!
//! `scripts/deps` installs Debian's Chromium and the npm package `playwright-core` (which
//! downloads no browser of its own) and writes `PULSE_CHROMIUM` to `tools.env`. A test
//! writes its browser steps as a Node script and runs it with [`playwright_command`]; the
//! script finds playwright-core in `$PLAYWRIGHT_CORE`, the browser in `$PULSE_CHROMIUM` and
//! the flags in `$PULSE_CHROMIUM_ARGS`.

use std::path::PathBuf;
use std::process::Command;

use crate::tools::{cache_dir, js_dir};

/// The flags a headless Chromium needs in a container: no sandbox (root, no user
/// namespaces), no GPU, and nothing that reaches the network by itself.
pub const CHROMIUM_HEADLESS_ARGS: [&str; 6] = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Where `scripts/deps` puts Debian's Chromium binary.
const DEFAULT_CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// The value of `export NAME=VALUE` in a `tools.env`, unquoted as bash's `printf %q` quotes.
fn from_tools_env(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let value = line
            .strip_prefix("export ")
            .unwrap_or(line)
            .strip_prefix(name)?
            .strip_prefix('=')?;
        let mut out = String::new();
        let mut chars = value.trim_matches('\'').chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                c => out.push(c),
            }
        }
        Some(out)
    })
}

/// The Chromium binary: `$PULSE_CHROMIUM`, else `PULSE_CHROMIUM` in `tools.env`, else
/// Debian's install path.
///
/// # Panics
/// If none of them exists, with a message that says to run `scripts/deps`: a browser test
/// fails rather than skips.
#[track_caller]
pub fn chromium_path() -> PathBuf {
    let mut looked_at = Vec::new();
    if let Some(value) = std::env::var_os("PULSE_CHROMIUM").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        assert!(
            path.is_file(),
            "chromium not found: PULSE_CHROMIUM={} does not exist; run scripts/deps",
            path.display()
        );
        return path;
    }
    looked_at.push("PULSE_CHROMIUM is not set".to_owned());
    let tools_env = cache_dir().join("tools.env");
    match std::fs::read_to_string(&tools_env)
        .ok()
        .and_then(|text| from_tools_env(&text, "PULSE_CHROMIUM"))
    {
        Some(value) if PathBuf::from(&value).is_file() => return PathBuf::from(value),
        Some(value) => looked_at.push(format!(
            "{} names {value}, which does not exist",
            tools_env.display()
        )),
        None => looked_at.push(format!("{} has no PULSE_CHROMIUM", tools_env.display())),
    }
    let default = PathBuf::from(DEFAULT_CHROMIUM);
    if default.is_file() {
        return default;
    }
    looked_at.push(format!("{DEFAULT_CHROMIUM} does not exist"));
    panic!(
        "chromium not found: run scripts/deps (or set PULSE_CHROMIUM); looked at: {}",
        looked_at.join("; ")
    );
}

/// The folder of the npm package `playwright-core` that `scripts/deps` installs.
///
/// # Panics
/// If it is not there (run `scripts/deps`).
#[track_caller]
pub fn playwright_core_dir() -> PathBuf {
    let dir = js_dir().join("node_modules/playwright-core");
    assert!(
        dir.join("package.json").is_file(),
        "playwright-core not found in {}: run scripts/deps",
        dir.display()
    );
    dir
}

/// `node SCRIPT` with `PLAYWRIGHT_CORE`, `PULSE_CHROMIUM` and `PULSE_CHROMIUM_ARGS` (the
/// flags of [`CHROMIUM_HEADLESS_ARGS`], space-separated) in its environment. The caller
/// adds arguments, pipes and runs it.
///
/// # Panics
/// If Chromium or playwright-core is missing (run `scripts/deps`).
#[track_caller]
pub fn playwright_command(script: &std::path::Path) -> Command {
    let mut command = Command::new("node");
    command
        .arg(script)
        .env("PLAYWRIGHT_CORE", playwright_core_dir())
        .env("PULSE_CHROMIUM", chromium_path())
        .env("PULSE_CHROMIUM_ARGS", CHROMIUM_HEADLESS_ARGS.join(" "));
    command
}

#[cfg(test)]
mod tests {
    use super::from_tools_env;

    #[test]
    fn tools_env_values_are_unquoted() {
        let text = "# x\nexport PULSE_CHROMIUM=/usr/lib/chromium\\ x/chromium\n";
        assert_eq!(
            from_tools_env(text, "PULSE_CHROMIUM").as_deref(),
            Some("/usr/lib/chromium x/chromium")
        );
        assert_eq!(from_tools_env(text, "PULSE_CHROMIUMX"), None);
    }
}
