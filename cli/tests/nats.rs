//! `pulse nats …` as an operator runs it: a deployment's users, credentials files (mode
//! 0600, never printed), the server configuration nats-server accepts, adding and revoking
//! workers, and clear errors.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn pulse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(args)
        .output()
        .expect("run pulse")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn seed(path: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON");
    v["nkey_seed"].as_str().expect("seed").to_owned()
}

#[test]
fn init_add_revoke_and_a_configuration_nats_server_accepts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("access");
    let d = dir.to_str().expect("utf-8");
    let listen = format!("127.0.0.1:{}", pulse_testkit::free_port());
    let store = tmp.path().join("js");
    let o = pulse(&[
        "nats",
        "init",
        "--out",
        d,
        "--workers",
        "hospital-a,hospital-b",
        "--listen",
        &listen,
        "--store-dir",
        store.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let creds = dir.join("credentials");
    let files = [
        "coordinator-coordinator.json",
        "operator-operator.json",
        "client-client.json",
        "worker-hospital-a.json",
        "worker-hospital-b.json",
    ];
    for f in files {
        let path = creds.join(f);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
        assert!(!text(&o).contains(&seed(&path)), "a seed was printed");
    }
    let key_mode = std::fs::metadata(dir.join("tls/server-key.pem"))
        .expect("server key")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600);
    let access = std::fs::read_to_string(dir.join("access.json")).expect("access.json");
    let config_text = std::fs::read_to_string(dir.join("nats-server.conf")).expect("config");
    for f in files {
        let s = seed(&creds.join(f));
        assert!(
            !access.contains(&s) && !config_text.contains(&s),
            "a seed outside its file"
        );
    }

    // nats-server accepts the configuration (`-t`: test it and exit).
    let config = dir.join("nats-server.conf");
    let check = Command::new(pulse_testkit::Tool::NatsServer.path())
        .arg("-t")
        .arg("-c")
        .arg(&config)
        .output()
        .expect("nats-server -t");
    assert!(check.status.success(), "{}", text(&check));

    // Add a worker; a second add of the same name is refused; revoke one.
    let o = pulse(&["nats", "worker", "add", "hospital-c", "--dir", d]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(creds.join("worker-hospital-c.json").exists());
    let o = pulse(&["nats", "worker", "add", "hospital-c", "--dir", d]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("already has a worker user `hospital-c`"),
        "{}",
        text(&o)
    );
    let revoked_key = {
        let v: serde_json::Value = serde_json::from_str(&access).expect("access JSON");
        v["users"]
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["name"] == "hospital-a")
            .and_then(|u| u["public_key"].as_str())
            .expect("hospital-a's key")
            .to_owned()
    };
    let before = std::fs::read_to_string(&config).expect("config");
    assert!(before.contains(&revoked_key));
    let o = pulse(&["nats", "worker", "revoke", "hospital-a", "--dir", d]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("reload"), "{}", text(&o));
    let after = std::fs::read_to_string(&config).expect("config");
    assert!(
        !after.contains(&revoked_key),
        "the revoked key is still allowed"
    );
    assert!(!creds.join("worker-hospital-a.json").exists());
    let o = pulse(&["nats", "worker", "revoke", "hospital-a", "--dir", d]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("hospital-b"),
        "names the workers it has: {}",
        text(&o)
    );

    // Names become subject tokens: refused with what to use instead.
    let o = pulse(&["nats", "worker", "add", "a.b", "--dir", d]);
    assert!(!o.status.success());
    assert!(text(&o).contains("letters, digits"), "{}", text(&o));
    // A second init over the same directory is refused.
    let o = pulse(&["nats", "init", "--out", d]);
    assert!(!o.status.success());
    assert!(text(&o).contains("already set up"), "{}", text(&o));

    // The permissions listing.
    let o = pulse(&["nats", "users", "--dir", d]);
    assert!(o.status.success(), "{}", text(&o));
    let listing = text(&o);
    assert!(
        listing.contains("$KV.pulse-workers.hospital-b"),
        "{listing}"
    );
    assert!(!listing.contains("hospital-a"), "{listing}");
}

#[test]
fn a_worker_refuses_credentials_that_are_not_its_own() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("access");
    let d = dir.to_str().expect("utf-8");
    let o = pulse(&["nats", "init", "--out", d, "--workers", "hospital-a"]);
    assert!(o.status.success(), "{}", text(&o));
    let creds = dir.join("credentials/worker-hospital-a.json");
    let client = dir.join("credentials/client-client.json");
    let o = pulse(&[
        "worker",
        "check",
        "--nats-credentials",
        creds.to_str().expect("utf-8"),
        "--id",
        "hospital-b",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--id hospital-a"), "{}", text(&o));
    let o = pulse(&[
        "worker",
        "check",
        "--nats-credentials",
        client.to_str().expect("utf-8"),
        "--id",
        "client",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("not a worker"), "{}", text(&o));
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = pulse(&[
        "worker",
        "check",
        "--nats-credentials",
        creds.to_str().expect("utf-8"),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("chmod 600"), "{}", text(&o));
    assert!(!text(&o).contains(&seed(&creds)), "a seed was printed");
}
