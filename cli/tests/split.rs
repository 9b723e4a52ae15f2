//! Split proofs through the `pulse` binary as users run them: `pulse dev up --split always
//! --worker-base-memory 10MiB` starts real nats-server, anvil, IPFS and Prometheus with a
//! coordinator and two worker processes, each giving a key's bases less memory than the
//! chunk's whole proving key needs; `pulse dev demo` takes a workload to committed L1
//! batches with every chunk proved in shards on both workers; then a worker process is
//! killed (SIGKILL) while it holds a shard, and the next workload still commits.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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

fn report(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// Every accepted transaction committed, the L1 root the coordinator's, and every chunk
/// of the run proved in two shards.
fn check_split_report(r: &serde_json::Value) {
    let accepted = r["accepted"].as_u64().expect("accepted");
    assert!(accepted > 0, "{r}");
    assert_eq!(r["committed"], r["accepted"], "{r}");
    assert_eq!(r["l1_root_matches"], true, "{r}");
    let chunks: u64 = r["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| b["chunks"].as_u64().unwrap_or(0))
        .sum();
    assert!(chunks > 0, "{r}");
    assert_eq!(r["split_proofs"].as_u64(), Some(chunks), "{r}");
    assert_eq!(r["shards"].as_u64(), Some(2 * chunks), "{r}");
}

#[test]
fn every_chunk_is_proved_in_shards_and_a_killed_shard_worker_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("dev");
    let cluster = dir.join("cluster.json");
    let _down = Down(dir.clone());
    let dir_s = dir.to_str().expect("utf-8 path");
    let cluster_s = cluster.to_str().expect("utf-8 path");

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
            "16",
            "--batch-deadline",
            "2s",
            "--split",
            "always",
            "--worker-base-memory",
            "10MiB",
            // Keys by one party: the ceremony's path is the dev-cluster suite's.
            "--setup",
            "single-party",
            "--ttl",
            "20m",
            "--json",
        ],
        &cluster,
    );
    assert!(o.status.success(), "{}", text(&o));
    // The premise: no worker can hold the key whole, each can hold half of it.
    let key = std::fs::metadata(dir.join("keys").join("proving.key"))
        .expect("the cluster's proving key")
        .len();
    assert!(
        key > 10 << 20 && key / 2 < (10 << 20) - (1 << 20),
        "the chunk's proving key is {key} bytes: choose another --worker-base-memory for this test"
    );

    // --- a workload, every chunk in two shards on the two workers
    let demo = [
        "dev",
        "demo",
        "--cluster",
        cluster_s,
        "--txs",
        "16",
        "--json",
    ];
    let r1 = report(&pulse(&demo, &cluster));
    check_split_report(&r1);
    let logs = dir.join("logs");
    for w in ["worker-1", "worker-2"] {
        let log = std::fs::read_to_string(logs.join(format!("{w}.log"))).unwrap_or_default();
        assert!(
            log.contains("shard computed"),
            "{w} computed no shard:\n{log}"
        );
    }

    // --- worker-1 killed (SIGKILL) while it holds a shard of the next workload: the shard
    // is leased again (to the other worker, or to worker-1 restarted by the supervisor)
    // and every batch commits.
    let worker_pid: u64 = std::fs::read_to_string(logs.join("worker-1.pid"))
        .expect("worker-1's pid file")
        .trim()
        .parse()
        .expect("a pid");
    let worker_log = logs.join("worker-1.log");
    let holding = move || {
        let log = std::fs::read_to_string(&worker_log).unwrap_or_default();
        (
            log.matches("shard picked").count(),
            log.matches("shard computed").count() + log.matches("cannot compute the shard").count(),
        )
    };
    let (picked_before, _) = holding();
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            let (picked, done) = holding();
            if picked > picked_before && picked > done {
                return Command::new("kill")
                    .args(["-s", "KILL", &worker_pid.to_string()])
                    .status()
                    .is_ok_and(|s| s.success());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    });
    let r2 = report(&pulse(&demo, &cluster));
    assert!(
        killer.join().expect("killer"),
        "worker-1 was killed holding a shard of this workload"
    );
    check_split_report(&r2);
    let serve_log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
    assert!(serve_log.contains("worker-1 exited"), "{serve_log}");
    // The shard went again: re-sent by the coordinator to the other worker, or delivered
    // again by JetStream when its lease ran out.
    let coordinator_log = std::fs::read_to_string(logs.join("coordinator.log")).unwrap_or_default();
    let resent = coordinator_log.contains("goes to another worker")
        || ["worker-1", "worker-2"].iter().any(|w| {
            std::fs::read_to_string(logs.join(format!("{w}.log")))
                .is_ok_and(|l| l.contains("shard picked again"))
        });
    assert!(resent, "no shard was leased again:\n{coordinator_log}");
}
