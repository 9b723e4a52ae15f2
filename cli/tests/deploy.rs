//! The systemd units in `deploy/`: each passes `systemd-analyze verify` with the real
//! binary in place, keeps its exposure low (`systemd-analyze security`), is hardened in the
//! ways the design asks (no new privileges, a read-only system, a state directory), and
//! starts `pulse` with flags it has.

use std::path::{Path, PathBuf};
use std::process::Command;

const INSTALLED: &str = "/usr/local/bin/pulse";

fn units() -> Vec<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy"));
    let mut units: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("deploy/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    units.sort();
    units
}

/// The unit with the freshly built binary where the installed one would be.
fn localised(unit: &Path, dir: &Path) -> (PathBuf, String) {
    let text = std::fs::read_to_string(unit).expect("unit");
    let text = text.replace(INSTALLED, env!("CARGO_BIN_EXE_pulse"));
    let path = dir.join(unit.file_name().expect("name"));
    std::fs::write(&path, &text).expect("write unit");
    (path, text)
}

#[test]
fn the_systemd_units_verify_and_are_hardened() {
    let units = units();
    let names: Vec<String> = units
        .iter()
        .map(|u| {
            u.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "pulse-coordinator.service",
            "pulse-follower.service",
            "pulse-worker.service"
        ]
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    for unit in &units {
        let (path, text) = localised(unit, tmp.path());
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let o = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze (scripts/deps installs it)");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{name}: {err}");
        // verify exits 0 on settings it ignores: any word about the unit is a fault.
        assert!(
            !err.contains(&name),
            "{name} has settings systemd does not take: {err}"
        );
        for needed in [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "StateDirectory=pulse/",
            "ProtectHome=yes",
            "CapabilityBoundingSet=\n",
            "Restart=always",
            "User=pulse",
        ] {
            assert!(text.contains(needed), "{name} lacks {needed:?}");
        }
        let o = Command::new("systemd-analyze")
            .args(["security", "--offline=yes"])
            .arg(&path)
            .output()
            .expect("systemd-analyze security");
        let out = String::from_utf8_lossy(&o.stdout);
        let exposure: f64 = out
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|rest| rest.split(':').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no exposure level in {out}"));
        assert!(exposure <= 2.5, "{name}: exposure {exposure}:\n{out}");

        // The command line it runs is one `pulse` takes: with --help appended, clap
        // checks every flag before printing the help.
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap_or_else(|| panic!("{name}: no ExecStart"));
        let args: Vec<String> = exec
            .split_whitespace()
            .skip(1)
            .map(|a| {
                a.replace("${STATE_DIRECTORY}", "/tmp/state")
                    .replace("${CREDENTIALS_DIRECTORY}", "/tmp/credentials")
            })
            .chain(["--help".to_owned()])
            .collect();
        let o = Command::new(env!("CARGO_BIN_EXE_pulse"))
            .args(&args)
            .output()
            .expect("pulse");
        assert!(
            o.status.success(),
            "{name}: `pulse {}` is refused: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn each_unit_has_an_example_of_its_settings_without_secrets() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy"));
    for unit in units() {
        let text = std::fs::read_to_string(&unit).expect("unit");
        let env = text
            .lines()
            .find_map(|l| l.strip_prefix("EnvironmentFile=/etc/pulse/"))
            .unwrap_or_else(|| panic!("{}: no EnvironmentFile", unit.display()));
        let example = dir.join(format!("{env}.example"));
        let ex = std::fs::read_to_string(&example)
            .unwrap_or_else(|e| panic!("{}: {e}", example.display()));
        for line in ex.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let (k, _) = line.split_once('=').unwrap_or_else(|| panic!("{line}"));
            assert!(k.starts_with("PULSE_"), "{}: {line}", example.display());
            assert!(
                !k.contains("KEY=") && !k.ends_with("PRIVATE_KEY") && !k.contains("SEED"),
                "{}: a secret belongs in a credential file, not {k}",
                example.display()
            );
        }
    }
}
