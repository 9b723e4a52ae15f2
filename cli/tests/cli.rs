//! The `pulse` binary, run as a user would.

use std::path::PathBuf;
use std::process::{Command, Output};

fn pulse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(args)
        .output()
        .expect("run pulse")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn vectors_dir() -> PathBuf {
    let dir = std::env::var("PULSE_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors"))
        });
    assert!(
        dir.is_dir(),
        "the circomlibjs vectors are expected at {}",
        dir.display()
    );
    dir
}

#[test]
fn check_vectors_passes_every_shared_vector_file() {
    let mut files: Vec<_> = std::fs::read_dir(vectors_dir())
        .expect("list vectors")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "expected the Poseidon and EdDSA files");
    for f in files {
        let o = pulse(&["crypto", "check-vectors", f.to_str().expect("utf-8 path")]);
        let out = stdout(&o);
        assert!(o.status.success(), "{}: {out}{}", f.display(), stderr(&o));
        let last = out.lines().last().unwrap_or_default();
        let (passed, failed) = last
            .split_once(" passed, ")
            .and_then(|(p, rest)| Some((p.parse::<usize>().ok()?, rest.strip_suffix(" failed")?)))
            .unwrap_or_else(|| panic!("last line `{last}`"));
        assert!(passed > 0, "{last}");
        assert_eq!(failed, "0", "{out}");
    }
}

#[test]
fn check_vectors_reports_tampered_vectors_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(vectors_dir().join("poseidon.json")).expect("read");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let n = v["vectors"].as_array().map(Vec::len).unwrap_or(0);
    v["vectors"][1]["hash"] = "12345".into();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, v.to_string()).expect("write");
    let o = pulse(&["crypto", "check-vectors", bad.to_str().expect("path")]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("vector 1"), "{out}");
    assert!(
        out.ends_with(&format!("{} passed, 1 failed\n", n - 1)),
        "{out}"
    );

    let eddsa = std::fs::read_to_string(vectors_dir().join("eddsa_poseidon.json")).expect("read");
    let mut e: serde_json::Value = serde_json::from_str(&eddsa).expect("json");
    // Flip a valid vector's message: Pulse must now reject the signature, and a vector that
    // claims it valid fails.
    let idx = e["vectors"]
        .as_array()
        .expect("list")
        .iter()
        .position(|x| x["valid"] == true)
        .expect("valid one");
    e["vectors"][idx]["message"] = "1".into();
    let bad = dir.path().join("bad_eddsa.json");
    std::fs::write(&bad, e.to_string()).expect("write");
    let o = pulse(&["crypto", "check-vectors", bad.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("rejected"), "{}", stdout(&o));

    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"hello\": 1}").expect("write");
    let o = pulse(&["crypto", "check-vectors", junk.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("no `vectors` list"), "{}", stdout(&o));

    let o = pulse(&["crypto", "check-vectors", "/nonexistent/vectors.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("reading vector file /nonexistent/vectors.json"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn circuit_info_reports_constraints() {
    let o = pulse(&["circuit", "info", "--slots", "2", "--depth", "8", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let total = v["constraints_total"].as_u64().expect("total");
    let per_slot = v["constraints_per_slot"].as_u64().expect("per slot");
    assert!(per_slot > 5_000 && total > 2 * per_slot, "{v}");
    let parts: u64 = v["breakdown"]
        .as_object()
        .expect("breakdown")
        .values()
        .map(|x| x.as_u64().unwrap_or(0))
        .sum();
    assert_eq!(parts, per_slot);
    for k in ["register", "add_record", "grant", "revoke", "access_log"] {
        assert!(v["per_kind"][k].as_u64().expect("kind") <= per_slot, "{k}");
    }
    let table = pulse(&["circuit", "info", "--slots", "1", "--depth", "8"]);
    assert!(stdout(&table).contains("constraints per slot"));
}

#[test]
fn bad_flags_are_refused_clearly() {
    let o = pulse(&["circuit", "info", "--slots", "0", "--depth", "8"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--slots"), "{}", stderr(&o));
    let o = pulse(&["circuit", "info", "--slots", "1", "--depth", "100"]);
    assert!(stderr(&o).contains("--depth"), "{}", stderr(&o));
}

#[test]
fn setup_writes_keys_and_a_verifier_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("keys");
    let args = [
        "setup",
        "--slots",
        "1",
        "--depth",
        "3",
        "--out",
        out.to_str().expect("path"),
        "--insecure-seed",
        "1",
    ];
    let o = pulse(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "proving.key",
        "verifying.key",
        "constraints.r1cs",
        "manifest.json",
        "PulseChunkVerifier.sol",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let sol = std::fs::read_to_string(out.join("PulseChunkVerifier.sol")).expect("sol");
    assert!(sol.contains("contract PulseChunkVerifier"));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).expect("read"))
            .expect("json");
    assert!(stdout(&o).contains(manifest["vk_hash"].as_str().expect("vk hash")));
    let again = pulse(&args);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already holds keys"),
        "{}",
        stderr(&again)
    );
}

fn pulse_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pulse"));
    c.args(args)
        .env_remove("PULSE_L1_PRIVATE_KEY")
        .env_remove("PULSE_L1_RPC");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run pulse")
}

#[test]
fn l1_deploy_and_status_against_a_real_anvil() {
    let anvil = pulse_testkit::Anvil::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let o = pulse(&[
        "setup",
        "--slots",
        "1",
        "--depth",
        "3",
        "--out",
        keys.to_str().expect("path"),
        "--insecure-seed",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let url = anvil.url();
    let key = pulse_testkit::DEV_ACCOUNTS[0].private_key;
    let deploy = [
        "l1",
        "deploy",
        "--rpc-url",
        &url,
        "--keys",
        keys.to_str().expect("path"),
        "--json",
    ];

    // No key: a clear error, nothing deployed.
    let o = pulse_env(&deploy, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("PULSE_L1_PRIVATE_KEY"),
        "{}",
        stderr(&o)
    );
    // A bad key: refused without echoing it.
    let o = pulse_env(&deploy, &[("PULSE_L1_PRIVATE_KEY", "0xnotakey1234")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("notakey1234"), "{}", stderr(&o));

    let o = pulse_env(&deploy, &[("PULSE_L1_PRIVATE_KEY", key)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stdout(&o).contains(&key[2..]) && !stderr(&o).contains(&key[2..]),
        "the key is never printed"
    );
    let d: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("deployment JSON");
    let address = d["address"].as_str().expect("address").to_owned();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(keys.join("manifest.json")).expect("read"))
            .expect("json");
    assert_eq!(d["vk_hash"], manifest["vk_hash"]);
    assert_eq!(d["chain_id"], 31337);

    let o = pulse(&[
        "l1",
        "status",
        "--rpc-url",
        &url,
        "--contract",
        &address,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let st: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("status JSON");
    assert_eq!(st["batch_number"], 0);
    assert_eq!(st["state_root"].as_str(), d["genesis_root"].as_str());
    // The id transactions are signed over: the contract's, as Pulse computes it.
    let expected = pulse_l1::deployment_id(31337, address.parse().expect("address"));
    assert_eq!(
        d["deployment_id"].as_str(),
        Some(expected.to_string().as_str())
    );
    assert_eq!(st["deployment_id"], d["deployment_id"]);
    assert_eq!(st["last_batches"].as_array().map(Vec::len), Some(0));
    let o = pulse(&["l1", "status", "--rpc-url", &url, "--contract", &address]);
    assert!(
        stdout(&o).contains("no batches committed yet"),
        "{}",
        stdout(&o)
    );

    // No contract there / no node there: named, exit 2.
    let o = pulse(&[
        "l1",
        "status",
        "--rpc-url",
        &url,
        "--contract",
        "0x0000000000000000000000000000000000000001",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no contract at"), "{}", stderr(&o));
    let port = pulse_testkit::free_port();
    let o = pulse(&[
        "l1",
        "status",
        "--rpc-url",
        &format!("http://127.0.0.1:{port}"),
        "--contract",
        &address,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("check that the node is running"),
        "{}",
        stderr(&o)
    );
    let o = pulse(&["l1", "status", "--rpc-url", &url, "--contract", "0x12"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--contract"), "{}", stderr(&o));
}

#[test]
fn coordinator_flags_are_checked_before_anything_starts() {
    let base = [
        "coordinator",
        "run",
        "--state-dir",
        "/nonexistent/state",
        "--keys",
        "/nonexistent/keys",
        "--contract",
        "0x0000000000000000000000000000000000000001",
    ];
    let mut bad = base.to_vec();
    bad.extend(["--batch-deadline", "5parsecs"]);
    let o = pulse_env(&bad, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown unit"), "{}", stderr(&o));
    for (flag, value, says) in [
        ("--name", "coordinator a", "not a coordinator name"),
        ("--lease-ttl", "100ms", "out of range"),
        ("--nats-replicas", "0", "--nats-replicas"),
        ("--nats-replicas", "6", "--nats-replicas"),
        (
            "--split",
            "sometimes",
            "not a split mode: use auto, never or always",
        ),
        ("--max-shards", "1", "--max-shards"),
        ("--shard-timeout", "soon", "--shard-timeout"),
    ] {
        let mut bad = base.to_vec();
        bad.extend([flag, value]);
        let o = pulse_env(&bad, &[]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}");
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }

    let o = pulse_env(&base, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("PULSE_L1_PRIVATE_KEY"),
        "{}",
        stderr(&o)
    );

    let key = pulse_testkit::DEV_ACCOUNTS[1].private_key;
    let o = pulse_env(&base, &[("PULSE_L1_PRIVATE_KEY", key)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/keys"), "{}", stderr(&o));
}

#[test]
fn worker_flags_are_checked_before_anything_starts() {
    let o = pulse(&[
        "worker",
        "run",
        "--id",
        "bad id!",
        "--nats",
        "nats://127.0.0.1:1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("worker id"), "{}", stderr(&o));
    let o = pulse(&["worker", "run", "--id", "w1", "--backend", "quantum"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("quantum"), "{}", stderr(&o));
    for (value, says) in [
        ("0", "above zero"),
        ("12 parsecs", "not a size"),
        ("1.5GiB", "whole number"),
    ] {
        let o = pulse(&["worker", "run", "--id", "w1", "--base-memory", value]);
        assert_eq!(o.status.code(), Some(2), "{value}");
        assert!(
            stderr(&o).contains("--base-memory") && stderr(&o).contains(says),
            "{value}: {}",
            stderr(&o)
        );
    }
}

/// On a three-node NATS cluster (every stream and bucket at three replicas): the
/// single-server path is the dev-cluster suite's.
#[test]
fn dev_demo_takes_a_workload_to_committed_l1_batches() {
    let o = pulse(&["dev", "demo", "--nats-nodes", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("odd number"), "{}", stderr(&o));
    let o = pulse(&[
        "dev",
        "demo",
        "--nats-nodes",
        "3",
        "--txs",
        "17",
        "--slots",
        "2",
        "--depth",
        "5",
        "--batch-txs",
        "8",
        "--workers",
        "2",
        // Keys by one party: the ceremony's path is the dev-cluster suite's.
        "--setup",
        "single-party",
        "--json",
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("report JSON");
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {r}"));
    assert_eq!(n("submitted"), 17, "{r}");
    assert_eq!(n("submitted"), n("accepted") + n("rejected"));
    assert_eq!(n("committed"), n("accepted"));
    assert!(n("rejected") >= 6, "{r}");
    for reason in [
        "bad_signature",
        "stale_nonce",
        "malformed_json",
        "too_large",
        "no_active_grant",
    ] {
        assert!(
            r["rejections"][reason].as_u64().unwrap_or(0) >= 1,
            "no {reason} rejection: {r}"
        );
    }
    assert_eq!(r["l1_root_matches"], true);
    assert_eq!(r["granted_read_ok"], true);
    assert_eq!(r["revoked_read_refused"], true);
    assert_eq!(r["nats_servers"], 3, "{r}");
    let batches = r["batches"].as_array().expect("batches");
    assert!(!batches.is_empty());
    assert!(
        batches
            .iter()
            .all(|b| b["l1_tx"].as_str().is_some_and(|t| t.starts_with("0x"))),
        "{r}"
    );
}

/// `pulse bench prove` on the CPU: both provers' proofs verify (it fails otherwise), and the
/// peak memory of one proof is measured in child processes for ark-groth16, Pulse with the
/// key directory's constraint matrices, and Pulse building them on its first proof.
#[test]
fn bench_prove_measures_each_provers_memory() {
    let o = pulse(&[
        "bench",
        "prove",
        "--slots",
        "1",
        "--depth",
        "3",
        "--repeats",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("report JSON");
    assert_eq!(r["witness"], "real", "{r}");
    let memory = r["memory"].as_array().expect("memory");
    let names: Vec<&str> = memory.iter().filter_map(|m| m["prover"].as_str()).collect();
    assert_eq!(names, ["ark", "pulse", "pulse-first"], "{r}");
    for m in memory {
        let peak = m["peak_rss_bytes"].as_u64().expect("peak");
        let baseline = m["baseline_rss_bytes"].as_u64().expect("baseline");
        assert!(peak >= baseline && baseline > 0, "{m}");
        assert_eq!(m["proof_peak_bytes"].as_u64(), Some(peak - baseline), "{m}");
        let with_matrices = m["prover"] == "pulse";
        assert_eq!(
            m["constraints_bytes"].as_u64().unwrap_or(0) > 0,
            with_matrices,
            "{m}"
        );
    }
}

#[test]
fn bench_split_compares_shards_with_the_unsplit_proof() {
    let o = pulse(&[
        "bench",
        "split",
        "--slots",
        "1",
        "--depth",
        "3",
        "--shards",
        "1,2",
        "--repeats",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("report JSON");
    assert_eq!(r["witness"], "real", "{r}");
    let runs = r["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{r}");
    let key = r["key_base_bytes"].as_u64().expect("key bytes");
    for (run, n) in runs.iter().zip([1usize, 2]) {
        assert_eq!(run["shards"], n, "{run}");
        assert_eq!(run["shard_ms"].as_array().map(Vec::len), Some(n), "{run}");
        assert!(
            run["total_cpu_s"].as_f64().is_some_and(f64::is_finite),
            "{run}"
        );
        let scalars = run["scalars_bytes"].as_u64().expect("scalars");
        assert_eq!(
            run["bytes_moved"].as_u64(),
            Some(2 * scalars + 192 * n as u64),
            "{run}"
        );
        let largest = run["largest_shard_base_bytes"].as_u64().expect("largest");
        assert!(largest * n as u64 >= key && largest <= key, "{run}");
    }
    let roles: Vec<(String, u64)> = r["memory"]
        .as_array()
        .expect("memory")
        .iter()
        .map(|m| {
            let peak = m["peak_rss_bytes"].as_u64().unwrap_or(0);
            let baseline = m["baseline_rss_bytes"].as_u64().unwrap_or(0);
            assert!(peak >= baseline && baseline > 0, "{m}");
            (
                m["role"].as_str().unwrap_or("").to_owned(),
                m["shards"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("unsplit".to_owned(), 1),
            ("assembler".to_owned(), 2),
            ("shard".to_owned(), 2)
        ],
        "{r}"
    );
    let o = pulse(&["bench", "split", "--shards", "0,2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("shard counts are 1 to 64"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn committee_keys_and_file_are_made_and_checked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let mut members = Vec::new();
    for (i, name) in ["st-mary", "city-clinic", "north"].iter().enumerate() {
        let key = d.join(format!("{name}.key"));
        let new_key = || {
            pulse(&[
                "committee",
                "key",
                "new",
                "--name",
                name,
                "--out",
                key.to_str().expect("utf-8"),
            ])
        };
        let o = new_key();
        assert!(o.status.success(), "{}", stderr(&o));
        let public = stdout(&o).lines().last().unwrap_or_default().to_owned();
        assert!(public.starts_with(&format!("{name}:")), "{public}");
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&key).expect("key file")).expect("json");
        let secret = file["secret"].as_str().expect("secret");
        assert!(!stdout(&o).contains(secret) && !stderr(&o).contains(secret));
        let shown = pulse(&["committee", "key", "show", key.to_str().expect("utf-8")]);
        assert_eq!(stdout(&shown).trim(), public);
        members.push(format!("{public}:0x{:040x}", i + 1));
        // Never overwritten.
        let again = new_key();
        assert!(
            !again.status.success() && stderr(&again).contains("never overwritten"),
            "{}",
            stderr(&again)
        );
    }
    let file = d.join("committee.json");
    let f = file.to_str().expect("utf-8");
    let mut args = vec!["committee", "init", "--threshold", "2", "--out", f];
    for m in &members {
        args.extend(["--member", m.as_str()]);
    }
    let o = pulse(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = pulse(&["committee", "check", f]);
    assert!(
        o.status.success() && stdout(&o).contains("2 of 3 members"),
        "{}",
        stdout(&o)
    );
    // A threshold above the member count, and a member without its address.
    let bad = d.join("bad.json");
    let b = bad.to_str().expect("utf-8");
    let o = pulse(&[
        "committee",
        "init",
        "--threshold",
        "4",
        "--out",
        b,
        "--member",
        &members[0],
        "--member",
        &members[1],
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("between 1 and 2"),
        "{}",
        stderr(&o)
    );
    let o = pulse(&[
        "committee",
        "init",
        "--threshold",
        "1",
        "--out",
        b,
        "--member",
        "north:abcd",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("NAME:X25519_PUBLIC_HEX:ETH_ADDRESS"),
        "{}",
        stderr(&o)
    );
}
