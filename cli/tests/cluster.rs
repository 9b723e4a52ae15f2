//! The whole system end to end, through the `pulse` binary as users run it: `pulse dev up`
//! starts real nats-server, anvil, IPFS and Prometheus with a coordinator and two worker
//! processes; `pulse dev demo` pushes 200 transactions of every kind (and invalid ones)
//! through it to committed L1 batches; then a patient and a doctor use the client
//! commands — register, add an encrypted record, grant, read it (Merkle proofs checked
//! against the L1 root), log the access, revoke, and are refused; `pulse dev down` stops
//! everything.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pulse(args: &[&str], cluster: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(args)
        .env("PULSE_CLUSTER", cluster)
        .env_remove("PULSE_NATS")
        .env_remove("PULSE_COORDINATOR")
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

/// Stops the cluster however the test ends.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_pulse"))
            .args(["dev", "down", "--dir"])
            .arg(&self.0)
            .output();
    }
}

fn pid_alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

#[test]
fn two_hundred_transactions_to_l1_then_the_client_commands() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("dev");
    let cluster = dir.join("cluster.json");
    let _down = Down(dir.clone());
    let dir_s = dir.to_str().expect("utf-8 path");

    // --- up
    let o = pulse(
        &[
            "dev",
            "up",
            "--dir",
            dir_s,
            "--slots",
            "2",
            "--depth",
            "8",
            "--workers",
            "2",
            "--batch-txs",
            "24",
            "--batch-deadline",
            "2s",
            "--ttl",
            "30m",
            "--json",
        ],
        &cluster,
    );
    assert!(o.status.success(), "{}", text(&o));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).expect("cluster JSON");
    let supervisor = info["pid"].as_u64().expect("pid");
    assert!(pid_alive(supervisor));
    for k in [
        "nats_url",
        "coordinator_url",
        "ipfs_url",
        "l1_rpc",
        "prometheus_url",
    ] {
        let url = info[k].as_str().unwrap_or_else(|| panic!("{k}: {info}"));
        assert!(url.contains("127.0.0.1:"), "{k} must be on loopback: {url}");
    }
    // The deployment clients sign for, as the contract's address and chain give it.
    let contract = info["contract"].as_str().expect("contract");
    let expected = pulse_l1::deployment_id(
        info["chain_id"].as_u64().expect("chain id"),
        contract.parse().expect("address"),
    );
    assert_eq!(
        info["deployment_id"].as_str(),
        Some(expected.to_string().as_str()),
        "{info}"
    );
    // A second `up` on the same directory is refused while the first runs.
    let o = pulse(&["dev", "up", "--dir", dir_s], &cluster);
    assert!(!o.status.success());
    assert!(text(&o).contains("already running"), "{}", text(&o));

    // --- 200 transactions from many users, of every kind, some invalid
    let o = pulse(
        &[
            "dev",
            "demo",
            "--cluster",
            cluster.to_str().unwrap_or_default(),
            "--txs",
            "200",
            "--json",
        ],
        &cluster,
    );
    assert!(o.status.success(), "{}", text(&o));
    let demo_output = text(&o);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("report JSON");
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {r}"));
    assert_eq!(n("submitted"), 200, "{r}");
    assert_eq!(n("submitted"), n("accepted") + n("rejected"), "{r}");
    assert_eq!(
        n("committed"),
        n("accepted"),
        "every accepted transaction is committed: {r}"
    );
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
    assert_eq!(r["l1_root_matches"], true, "{r}");
    assert_eq!(r["granted_read_ok"], true, "{r}");
    assert_eq!(r["revoked_read_refused"], true, "{r}");
    let batches = r["batches"].as_array().expect("batches");
    assert!(batches.len() >= 2, "{r}");
    assert_eq!(
        batches
            .iter()
            .map(|b| b["txs"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        n("accepted"),
        "{r}"
    );

    // --- the availability committee (three hospitals, two attestations per batch; L1
    // refuses a batch without them, so every commit above carried two): each member
    // attested only after it fetched, opened, checked and pinned the data
    assert!(info["committee"]["file"].is_string(), "{info}");
    let attested: usize = (1..=3)
        .map(|i| {
            std::fs::read_to_string(dir.join(format!("logs/member-hospital-{i}.log")))
                .unwrap_or_default()
                .matches("batch attested")
                .count()
        })
        .sum();
    assert!(
        attested >= 2 * batches.len(),
        "{attested} attestations for {} batches",
        batches.len()
    );

    // --- an outsider (the API, IPFS and L1 reachable, no account key): every lookup of
    // every id is refused alike, and every batch's data on IPFS is ciphertext
    let api_port: u16 = info["coordinator_url"]
        .as_str()
        .and_then(|u| u.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("coordinator port");
    let mut answers = std::collections::BTreeSet::new();
    for id in 1..=30 {
        for path in [
            format!("/accounts/{id}"),
            format!("/records/{id}"),
            format!("/grants/{id}"),
            format!("/accounts/{id}/records"),
            format!("/accounts/{id}/grants"),
            format!("/accounts/{id}/access"),
            format!("/records/{id}?view=latest"),
        ] {
            let a = pulse_testkit::http_request(
                api_port,
                "GET",
                &path,
                None,
                std::time::Duration::from_secs(5),
            )
            .expect("the API answers");
            assert_eq!(a.status, 401, "{path}: {}", a.text());
            answers.insert(a.text());
        }
    }
    assert_eq!(
        answers.len(),
        1,
        "one answer for every id, existing or not: {answers:?}"
    );
    let st_out = pulse(
        &[
            "l1",
            "status",
            "--contract",
            contract,
            "--rpc-url",
            info["l1_rpc"].as_str().expect("rpc"),
            "--last",
            "1000",
            "--json",
        ],
        &cluster,
    );
    assert!(st_out.status.success(), "{}", text(&st_out));
    let st_all: serde_json::Value = serde_json::from_slice(&st_out.stdout).expect("status JSON");
    let data_cids: Vec<String> = st_all["last_batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| b["data_cid"].as_str().expect("a data CID").to_owned())
        .collect();
    assert!(data_cids.len() >= batches.len(), "{st_all}");
    let ipfs_port: u16 = info["ipfs_url"]
        .as_str()
        .and_then(|u| u.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("IPFS port");
    for cid in &data_cids {
        let a = pulse_testkit::http_request(
            ipfs_port,
            "POST",
            &format!("/api/v0/cat?arg={cid}"),
            None,
            std::time::Duration::from_secs(10),
        )
        .expect("IPFS answers");
        assert_eq!(a.status, 200, "{cid}");
        assert!(
            a.body.starts_with(b"PDAC")
                && !a.text().contains("\"slots\"")
                && !a.text().contains("\"actor\""),
            "batch data {cid} is not sealed"
        );
    }

    // --- the keys came from a ceremony (the operator, each worker, a beacon); snarkjs
    // proves a chunk for this deployment with them and the rollup contract accepts it
    let keys_dir = dir.join("keys");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keys_dir.join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    // The operator contributed locally; each worker's identity through the cluster (its
    // turn on NATS, its key on IPFS, verified by the host before the next); then a beacon.
    let contributors: Vec<&str> = manifest["ceremony"]["contributions"]
        .as_array()
        .expect("contributions")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        contributors,
        ["operator", "hospital-1", "hospital-2", "beacon"],
        "{manifest}"
    );
    for i in 1..=2 {
        let log = std::fs::read_to_string(dir.join(format!("logs/ceremony-hospital-{i}.log")))
            .expect("the participant's log");
        assert!(
            log.contains(&format!("by hospital-{i} accepted into ceremony")),
            "{log}"
        );
    }
    let sj = tmp.path().join("snarkjs");
    let (keys_s, sj_s) = (
        keys_dir.to_str().unwrap_or_default(),
        sj.to_str().unwrap_or_default(),
    );
    let o = pulse(
        &[
            "snarkjs",
            "export",
            "--keys",
            keys_s,
            "--out",
            &format!("{sj_s}/export"),
        ],
        &cluster,
    );
    assert!(o.status.success(), "{}", text(&o));
    let chain_id = info["chain_id"].as_u64().expect("chain id").to_string();
    let o = pulse(
        &[
            "snarkjs",
            "proof",
            "--keys",
            keys_s,
            "--out",
            &format!("{sj_s}/proof"),
            "--contract",
            contract,
            "--chain-id",
            &chain_id,
        ],
        &cluster,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o =
        Command::new(std::env::var("PULSE_SNARKJS").expect(
            "PULSE_SNARKJS is not set: run scripts/deps and source ~/.cache/pulse/tools.env",
        ))
        .args([
            "groth16",
            "prove",
            "export/circuit_final.zkey",
            "proof/witness.wtns",
            "sj.json",
            "sj_public.json",
        ])
        .current_dir(&sj)
        .output()
        .expect("run snarkjs");
    assert!(o.status.success(), "{}", text(&o));
    let o = pulse(
        &[
            "snarkjs",
            "verify",
            "--keys",
            keys_s,
            "--proof",
            &format!("{sj_s}/sj.json"),
            "--public",
            &format!("{sj_s}/sj_public.json"),
            "--contract",
            contract,
            "--rpc-url",
            info["l1_rpc"].as_str().expect("l1 rpc"),
        ],
        &cluster,
    );
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("valid on L1"),
        "{}",
        text(&o)
    );

    // --- a patient and a doctor through the client commands
    let key = |name: &str| {
        tmp.path()
            .join(name)
            .to_str()
            .unwrap_or_default()
            .to_owned()
    };
    let (pat, doc, file, out) = (
        key("patient.key"),
        key("doctor.key"),
        key("labs.txt"),
        key("labs.out"),
    );
    let record_text = b"Lab results (synthetic): HbA1c 5.4%, LDL 2.1 mmol/L\n";
    std::fs::write(&file, record_text).expect("write record");
    for k in [&pat, &doc] {
        let o = pulse(&["keys", "new", "--out", k], &cluster);
        assert!(o.status.success(), "{}", text(&o));
    }
    let json = |o: &Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", text(o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
    };
    let p = json(&pulse(
        &["account", "register", "--key", &pat, "--json"],
        &cluster,
    ));
    let patient = p["account"].as_u64().expect("patient id").to_string();
    let registrar = info["registrar_key"].as_str().expect("registrar key");
    // A doctor cannot register itself.
    let o = pulse(
        &["account", "register", "--key", &doc, "--role", "doctor"],
        &cluster,
    );
    assert!(
        !o.status.success() && text(&o).contains("--registrar-key"),
        "{}",
        text(&o)
    );
    let d = json(&pulse(
        &[
            "account",
            "register",
            "--key",
            &doc,
            "--role",
            "doctor",
            "--registrar-key",
            registrar,
            "--json",
        ],
        &cluster,
    ));
    let doctor = d["account"].as_u64().expect("doctor id").to_string();
    let a = json(&pulse(
        &[
            "record",
            "add",
            &file,
            "--patient",
            &patient,
            "--key",
            &pat,
            "--wait-committed",
            "--json",
        ],
        &cluster,
    ));
    let record = a["record"].as_u64().expect("record id").to_string();
    assert!(a["cid"].as_str().is_some_and(|c| c.starts_with("b")), "{a}");
    // Before any grant the doctor is refused.
    let o = pulse(&["record", "get", &record, "--key", &doc], &cluster);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("--grant"), "{}", text(&o));
    let g = json(&pulse(
        &[
            "grant",
            "--key",
            &pat,
            "--grantee",
            &doctor,
            "--record",
            &record,
            "--wait-committed",
            "--json",
        ],
        &cluster,
    ));
    let grant = g["grant"].as_u64().expect("grant id").to_string();
    // The granted doctor reads the decrypted file.
    let o = pulse(
        &[
            "record", "get", &record, "--key", &doc, "--grant", &grant, "--out", &out,
        ],
        &cluster,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&out).expect("decrypted file"), record_text);
    assert!(
        text(&o).contains("checked against the L1 state root"),
        "{}",
        text(&o)
    );
    // The patient reads her own record without a grant.
    let o = pulse(&["record", "get", &record, "--key", &pat], &cluster);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(o.stdout, record_text);
    let l = json(&pulse(
        &[
            "access-log",
            "--key",
            &doc,
            "--record",
            &record,
            "--grant",
            &grant,
            "--json",
        ],
        &cluster,
    ));
    assert_eq!(l["status"], "accepted", "{l}");
    json(&pulse(
        &[
            "revoke",
            "--key",
            &pat,
            "--grant",
            &grant,
            "--wait-committed",
            "--json",
        ],
        &cluster,
    ));
    // Revoked: refused by name, before anything is fetched.
    let o = pulse(
        &["record", "get", &record, "--key", &doc, "--grant", &grant],
        &cluster,
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("revoked"), "{}", text(&o));
    assert!(
        o.stdout.is_empty(),
        "nothing of the record is printed: {}",
        text(&o)
    );
    // Logging an access under the revoked grant is rejected by the coordinator.
    let o = pulse(
        &[
            "access-log",
            "--key",
            &doc,
            "--record",
            &record,
            "--grant",
            &grant,
            "--json",
        ],
        &cluster,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("rejection JSON");
    assert_eq!(v["reason"], "no_active_grant", "{v}");

    // --- a hospital's follower: a verified replica from L1 and IPFS, the data pinned on
    // its own IPFS node, and lookups a client checks against L1 as the coordinator's
    let cluster_s = cluster.to_str().expect("utf-8 path");
    let member_key = dir.join("committee").join("hospital-1.key");
    let own_ipfs = pulse_testkit::Ipfs::start();
    let follower_port = pulse_testkit::free_port();
    let follower_url = format!("http://127.0.0.1:{follower_port}");
    let mut follower = Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args([
            "follower",
            "run",
            "--cluster",
            cluster_s,
            "--state-dir",
            tmp.path().join("follower").to_str().expect("utf-8 path"),
            "--keep-ipfs",
            &own_ipfs.api_url(),
            "--http",
            &format!("127.0.0.1:{follower_port}"),
            "--poll",
            "500ms",
            // A committee member's follower: the batch data is sealed for the committee.
            "--committee-key",
            member_key.to_str().expect("utf-8 path"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("follower.log")).expect("log"))
        .spawn()
        .expect("start the follower");
    let follower_status = || -> Option<serde_json::Value> {
        let a = pulse_testkit::http_request(
            follower_port,
            "GET",
            "/status",
            None,
            std::time::Duration::from_secs(2),
        )
        .ok()?;
        serde_json::from_str(&a.text()).ok()
    };
    let caught_up = (0..300).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        follower_status().filter(|s| s["matches"] == true)
    });
    let follower_log =
        || std::fs::read_to_string(tmp.path().join("follower.log")).unwrap_or_default();
    let fs = caught_up.unwrap_or_else(|| {
        panic!(
            "the follower never caught up: {:?}\n{}",
            follower_status(),
            follower_log()
        )
    });
    assert_eq!(fs["root"], fs["l1_root"], "{fs}");
    assert!(fs["batch"].as_u64().unwrap_or(0) >= 2, "{fs}");
    assert_eq!(fs["pinned"], fs["batch"], "every batch's data pinned: {fs}");
    // The patient reads her record through the follower: proofs checked against L1.
    let o = pulse(
        &[
            "record",
            "get",
            &record,
            "--key",
            &pat,
            "--coordinator",
            &follower_url,
        ],
        &cluster,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(o.stdout, record_text);
    assert!(
        text(&o).contains("checked against the L1 state root"),
        "{}",
        text(&o)
    );
    // The follower's node holds the last batch's data, under the CID L1 names.
    let st = json(&pulse(
        &[
            "l1",
            "status",
            "--contract",
            contract,
            "--rpc-url",
            info["l1_rpc"].as_str().expect("rpc"),
            "--last",
            "1",
            "--json",
        ],
        &cluster,
    ));
    let last_cid = st["last_batches"][0]["data_cid"]
        .as_str()
        .expect("a data CID")
        .to_owned();
    let kept = pulse_testkit::http_request(
        own_ipfs.port(),
        "POST",
        &format!("/api/v0/cat?arg={last_cid}"),
        None,
        std::time::Duration::from_secs(10),
    )
    .expect("the follower's IPFS node answers");
    assert_eq!(kept.status, 200, "{}", kept.text());
    // Only ciphertext: sealed for the committee (PDAC), no batch data in the clear.
    assert!(
        kept.body.starts_with(b"PDAC") && !kept.text().contains("\"chunks\""),
        "batch data: {}",
        kept.text()
    );
    let _ = follower.kill();
    let _ = follower.wait();

    // --- the state rebuilt from L1 and IPFS alone: only with a key the committee lists
    let rebuilt = tmp.path().join("rebuilt");
    let o = pulse(
        &[
            "state",
            "rebuild",
            "--cluster",
            cluster_s,
            "--out",
            tmp.path().join("no-key").to_str().expect("utf-8 path"),
        ],
        &cluster,
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("encrypted for the deployment's availability committee")
            && text(&o).contains("--committee-key"),
        "{}",
        text(&o)
    );
    let rb = json(&pulse(
        &[
            "state",
            "rebuild",
            "--cluster",
            cluster_s,
            "--committee-key",
            member_key.to_str().expect("utf-8 path"),
            "--out",
            rebuilt.to_str().expect("utf-8 path"),
            "--json",
        ],
        &cluster,
    ));
    assert_eq!(rb["matches"], true, "{rb}");
    assert_eq!(rb["root"], rb["l1_root"], "{rb}");
    let rebuilt_batches = rb["batches"].as_u64().expect("batches");
    assert!(rebuilt_batches >= 2, "{rb}");
    assert!(
        rb["transactions"].as_u64().expect("transactions") > n("accepted"),
        "the demo's and the client commands' transactions: {rb}"
    );
    // Never over an existing state.
    let o = pulse(
        &[
            "state",
            "rebuild",
            "--cluster",
            cluster_s,
            "--out",
            rebuilt.to_str().expect("utf-8 path"),
        ],
        &cluster,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("empty or new directory"), "{}", text(&o));

    // --- the coordinator's disk lost and the coordinator killed (SIGKILL): the supervisor
    // restarts it, it rebuilds its state from L1 and IPFS, and the cluster carries on
    let pid_file = dir.join("logs").join("coordinator.pid");
    let old_pid: u64 = std::fs::read_to_string(&pid_file)
        .expect("the coordinator's pid file")
        .trim()
        .parse()
        .expect("a pid");
    std::fs::remove_dir_all(dir.join("state")).expect("delete the state directory");
    let killed = Command::new("kill")
        .args(["-s", "KILL", &old_pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let restarted = (0..600).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let pid: u64 = std::fs::read_to_string(&pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let api = info["coordinator_url"].as_str()?;
        let port: u16 = api.rsplit(':').next()?.parse().ok()?;
        let up = pulse_testkit::http_request(
            port,
            "GET",
            "/health",
            None,
            std::time::Duration::from_secs(2),
        )
        .is_ok_and(|a| a.status == 200);
        (pid != old_pid && up).then_some(pid)
    });
    let serve_log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
    assert!(
        restarted.is_some(),
        "the coordinator was not restarted; serve.log:\n{serve_log}"
    );
    assert!(serve_log.contains("coordinator exited"), "{serve_log}");
    let coordinator_log =
        std::fs::read_to_string(dir.join("logs").join("coordinator.log")).unwrap_or_default();
    assert!(
        coordinator_log.contains("state rebuilt from L1 and IPFS"),
        "{coordinator_log}"
    );
    // A worker is killed (SIGKILL) in the middle of a proof of this workload (its log shows
    // a job picked and not yet proved): the job's lease runs out, and the other worker (or
    // its restarted self) proves it.
    let worker_pid_file = dir.join("logs").join("worker-1.pid");
    let worker_pid: u64 = std::fs::read_to_string(&worker_pid_file)
        .expect("worker-1's pid file")
        .trim()
        .parse()
        .expect("a pid");
    let worker_log = dir.join("logs").join("worker-1.log");
    let in_flight = move || {
        let log = std::fs::read_to_string(&worker_log).unwrap_or_default();
        (
            log.matches("job picked").count(),
            log.matches("proved").count(),
        )
    };
    let (picked_before, _) = in_flight();
    let killer = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
        while std::time::Instant::now() < deadline {
            let (picked, proved) = in_flight();
            if picked > picked_before && picked > proved {
                return Command::new("kill")
                    .args(["-s", "KILL", &worker_pid.to_string()])
                    .status()
                    .is_ok_and(|s| s.success());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    });
    let o = pulse(
        &[
            "dev",
            "demo",
            "--cluster",
            cluster_s,
            "--txs",
            "24",
            "--json",
        ],
        &cluster,
    );
    assert!(
        killer.join().expect("killer"),
        "worker-1 was killed holding a job of this workload"
    );
    assert!(o.status.success(), "{}", text(&o));
    let noticed = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        std::fs::read_to_string(dir.join("serve.log")).is_ok_and(|l| l.contains("worker-1 exited"))
    });
    assert!(noticed, "the supervisor did not notice worker-1's death");
    let r2: serde_json::Value = serde_json::from_slice(&o.stdout).expect("report JSON");
    assert!(r2["accepted"].as_u64().unwrap_or(0) > 0, "{r2}");
    assert_eq!(r2["committed"], r2["accepted"], "{r2}");
    assert_eq!(r2["l1_root_matches"], true, "{r2}");
    // L1 holds each batch once, and the whole history still rebuilds to its root.
    let rb2 = json(&pulse(
        &[
            "state",
            "rebuild",
            "--cluster",
            cluster_s,
            "--committee-key",
            member_key.to_str().expect("utf-8 path"),
            "--out",
            tmp.path().join("rebuilt-2").to_str().expect("utf-8 path"),
            "--json",
        ],
        &cluster,
    ));
    assert_eq!(rb2["matches"], true, "{rb2}");
    assert!(
        rb2["batches"].as_u64().expect("batches") > rebuilt_batches,
        "{rb2}"
    );

    // --- NATS access: a hospital checks its worker's setup; anonymous is refused
    let url = info["nats_url"].as_str().expect("nats url");
    assert!(url.starts_with("tls://"), "{url}");
    let ca = info["nats_ca"].as_str().expect("nats_ca");
    let creds = &info["nats_credentials"];
    for role in ["coordinator", "worker", "client", "operator"] {
        assert!(
            creds[role].as_str().is_some(),
            "no {role} credentials: {info}"
        );
    }
    let worker_creds = creds["workers"]["hospital-1"].as_str().expect("hospital-1");
    let o = pulse(
        &[
            "worker",
            "check",
            "--nats",
            url,
            "--nats-ca",
            ca,
            "--nats-credentials",
            worker_creds,
        ],
        &cluster,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(" passed, 0 failed"), "{}", text(&o));
    assert!(
        text(&o).contains("the server refused pulse.tx.submit"),
        "{}",
        text(&o)
    );
    let o = pulse(
        &[
            "worker",
            "check",
            "--nats",
            url,
            "--nats-ca",
            ca,
            "--id",
            "anonymous",
        ],
        &cluster,
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("refused these credentials"),
        "{}",
        text(&o)
    );
    let o = pulse(
        &[
            "worker",
            "check",
            "--nats",
            url,
            "--nats-credentials",
            worker_creds,
        ],
        &cluster,
    );
    assert!(!o.status.success(), "no CA: {}", text(&o));

    // No credential appears in any log, in the demo's output or on the metrics page.
    let mut seeds = Vec::new();
    let mut files: Vec<String> = ["coordinator", "client", "operator"]
        .iter()
        .map(|r| creds[*r].as_str().expect("path").to_owned())
        .collect();
    for (_, path) in creds["workers"].as_object().expect("workers") {
        files.push(path.as_str().expect("path").to_owned());
    }
    for f in &files {
        let c: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(f).expect("credentials file"))
                .expect("credentials JSON");
        let seed = c["nkey_seed"].as_str().expect("seed").to_owned();
        assert!(seed.starts_with("SU") && seed.len() > 50, "not a seed");
        seeds.push(seed);
    }
    let mut haystacks = vec![demo_output.clone()];
    for entry in std::fs::read_dir(dir.join("logs")).expect("logs").flatten() {
        haystacks.push(std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    haystacks.push(std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default());
    let coordinator_url = info["coordinator_url"].as_str().expect("coordinator url");
    let port: u16 = coordinator_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    haystacks.push(
        pulse_testkit::http_request(
            port,
            "GET",
            "/metrics",
            None,
            std::time::Duration::from_secs(5),
        )
        .expect("metrics")
        .text(),
    );
    assert!(haystacks.len() >= 4, "logs missing");
    for seed in &seeds {
        for h in &haystacks {
            assert!(
                !h.contains(seed.as_str()),
                "a NATS seed leaked into a log or output"
            );
            // Nor a recognisable part of it.
            assert!(!h.contains(&seed[..24]), "part of a NATS seed leaked");
        }
    }

    // --- down: everything it started is gone
    let o = pulse(&["dev", "down", "--dir", dir_s], &cluster);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!pid_alive(supervisor), "the supervisor is still running");
    assert!(!cluster.exists());
    let nats_port: u16 = info["nats_url"]
        .as_str()
        .and_then(|u| u.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("nats port");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", nats_port)).is_err(),
        "nats-server still listens"
    );
}

#[test]
fn bench_cluster_reports_latency_throughput_and_plots() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("report");
    let o = Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args([
            "bench",
            "cluster",
            "--txs",
            "16",
            "--users",
            "3",
            "--slots",
            "1",
            "--depth",
            "4",
            "--workers",
            "1",
            "--batch-txs",
            "8",
            "--batch-deadline",
            "1s",
            "--json",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("run pulse");
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("report JSON");
    let run = &r["runs"][0];
    let n = |k: &str| {
        run[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} missing: {r}"))
    };
    assert_eq!(
        n("submitted"),
        16 + 3 + 1,
        "the load plus 3 patients and 1 doctor: {r}"
    );
    assert_eq!(n("committed"), n("accepted"), "{r}");
    assert!(n("batches") >= 1, "{r}");
    for k in [
        "p50_batch_latency_s",
        "p99_batch_latency_s",
        "throughput_tps",
    ] {
        let v = r[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {r}"));
        assert!(v.is_finite() && v > 0.0, "{k} = {v}: {r}");
    }
    let share = r["non_proving_share"].as_f64().expect("non_proving_share");
    assert!((0.0..=1.0).contains(&share), "{share}");
    assert!(r["p99_batch_latency_s"].as_f64() >= r["p50_batch_latency_s"].as_f64());
    for f in [
        "report.json",
        "latency_over_time.svg",
        "throughput_over_time.svg",
        "latency_vs_batch_size.svg",
    ] {
        let text = std::fs::read_to_string(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!text.is_empty(), "{f}");
        if f.ends_with(".svg") {
            assert!(text.starts_with("<svg") && text.contains("</svg>"), "{f}");
        }
    }
}
