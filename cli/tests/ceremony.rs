//! Ceremonies through the `pulse` binary, with snarkjs (installed by `scripts/deps`) as the
//! judge: a ceremony over a ptau snarkjs made, with contributions by Pulse and by snarkjs and
//! a beacon, verified by both, and each kind of bad transcript refused with the
//! contribution and the check named; then the chunk circuit's keys from a ceremony, proofs
//! and keys crossing between Pulse and snarkjs both ways.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ark_bn254::Fr;
use pulse_ceremony::r1cs_file::CircomR1cs;
use pulse_ceremony::zkey::Zkey;
use pulse_ceremony::{json, wtns};

fn pulse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(args)
        .output()
        .expect("run pulse")
}

fn snarkjs_bin() -> PathBuf {
    PathBuf::from(std::env::var("PULSE_SNARKJS").expect(
        "PULSE_SNARKJS is not set: run scripts/deps and source ~/.cache/pulse/tools.env (scripts/test does both)",
    ))
}

fn snarkjs(dir: &Path, args: &[&str]) -> Output {
    Command::new(snarkjs_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run snarkjs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `x³ + x + k = y` with `x` private and `y` public, unrolled with a few more squarings so
/// the circuit spans a domain of 32 rows.
fn cubic(k: u64) -> CircomR1cs {
    let f = |x: u64| Fr::from(x);
    // wires: 0 one, 1 y (public output), 2 x, 3 x², 4 x³, 5.. squarings of x.
    let mut constraints = vec![
        [vec![(2, f(1))], vec![(2, f(1))], vec![(3, f(1))]],
        [vec![(3, f(1))], vec![(2, f(1))], vec![(4, f(1))]],
        [
            vec![(4, f(1)), (2, f(1)), (0, f(k))],
            vec![(0, f(1))],
            vec![(1, f(1))],
        ],
    ];
    let mut wires = 5u32;
    let mut prev = 3u32;
    for _ in 0..20 {
        constraints.push([vec![(prev, f(1))], vec![(prev, f(1))], vec![(wires, f(1))]]);
        prev = wires;
        wires += 1;
    }
    CircomR1cs {
        wires,
        outputs: 1,
        public_inputs: 0,
        private_inputs: 1,
        labels: u64::from(wires),
        constraints,
    }
}

fn cubic_witness(x: u64, k: u64) -> Vec<Fr> {
    let x = Fr::from(x);
    let y = x * x * x + x + Fr::from(k);
    let mut w = vec![Fr::from(1u64), y, x, x * x, x * x * x];
    let mut prev = x * x;
    for _ in 0..20 {
        prev *= prev;
        w.push(prev);
    }
    w
}

/// A ceremony in `d/<name>` for `cubic(k)` (written to `d/<name>.r1cs`) over `ptau`.
fn cubic_ceremony(d: &Path, ptau: &Path, k: u64, name: &str) -> PathBuf {
    let r1cs = d.join(format!("{name}.r1cs"));
    std::fs::write(&r1cs, cubic(k).to_bytes()).expect("write r1cs");
    let c = d.join(name);
    ok(pulse(&[
        "ceremony",
        "new",
        "--r1cs",
        s(&r1cs),
        "--ptau",
        s(ptau),
        "--out",
        s(&c),
    ]));
    c
}

/// `pulse ceremony verify` must accept the ceremony in `c`; the contributors it names.
fn verified_contributors(c: &Path) -> Vec<String> {
    let o = ok(pulse(&["ceremony", "verify", s(c), "--json"]));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("verify json");
    report["contributions"]
        .as_array()
        .expect("contributions")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

/// Runs `pulse ceremony verify` on `dir` and returns its error text (it must fail).
fn refused(dir: &Path) -> String {
    let o = pulse(&["ceremony", "verify", s(dir)]);
    assert!(!o.status.success(), "a bad ceremony verified: {}", text(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn edit_zkey(path: &Path, f: impl FnOnce(&mut Zkey)) {
    let mut z = Zkey::parse(std::fs::read(path).expect("read")).expect("parse");
    f(&mut z);
    std::fs::write(path, z.to_bytes()).expect("write");
}

#[test]
fn a_ceremony_over_a_snarkjs_ptau_verifies_with_both_and_refuses_bad_transcripts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    // The ptau, made by snarkjs: new, a contribution, prepared for phase 2.
    ok(snarkjs(
        d,
        &["powersoftau", "new", "bn128", "6", "pot0.ptau"],
    ));
    ok(snarkjs(
        d,
        &[
            "powersoftau",
            "contribute",
            "pot0.ptau",
            "pot1.ptau",
            "--name=first",
            "-e=some entropy",
        ],
    ));
    ok(snarkjs(
        d,
        &["powersoftau", "prepare", "phase2", "pot1.ptau", "pot.ptau"],
    ));
    let ptau = d.join("pot.ptau");
    let o = ok(pulse(&["ptau", "check", s(&ptau), "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["power"], 6);
    assert_eq!(v["prepared"], true);

    let c = cubic_ceremony(d, &ptau, 5, "c");
    ok(pulse(&[
        "ceremony",
        "contribute",
        s(&c),
        "--name",
        "hospital a",
    ]));
    // The second contributor uses snarkjs; Pulse checks it before taking it.
    ok(snarkjs(
        d,
        &[
            "zkey",
            "contribute",
            "c/0001.zkey",
            "sj.zkey",
            "--name=hospital b",
            "-e=entropy of b",
        ],
    ));
    ok(pulse(&[
        "ceremony",
        "import",
        s(&c),
        "--zkey",
        s(&d.join("sj.zkey")),
    ]));
    ok(pulse(&[
        "ceremony",
        "contribute",
        s(&c),
        "--name",
        "clinic c",
        "--entropy",
        "dice",
    ]));
    let o = ok(pulse(&[
        "ceremony",
        "beacon",
        s(&c),
        "--hex",
        "0102030405060708090a0b0c0d0e0f",
        "--json",
    ]));
    let beacon: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(beacon["index"], 4);
    assert_eq!(
        verified_contributors(&c),
        ["hospital a", "hospital b", "clinic c", "beacon"]
    );
    // snarkjs checks the same transcript from the circuit and the ptau.
    let o = ok(snarkjs(
        d,
        &["zkey", "verify", "c.r1cs", "pot.ptau", "c/0004.zkey"],
    ));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ZKey Ok!"),
        "{}",
        text(&o)
    );
    // No contribution after a beacon.
    let o = pulse(&["ceremony", "contribute", s(&c), "--name", "late"]);
    assert!(
        !o.status.success() && text(&o).contains("beacon"),
        "{}",
        text(&o)
    );

    // A tampered contribution: one point of its H section replaced.
    let t = d.join("tampered");
    copy_dir(&c, &t);
    edit_zkey(&t.join("0002.zkey"), |z| z.h[3] = z.h[4]);
    let e = refused(&t);
    assert!(
        e.contains("contribution #2 (\"hospital b\")") && e.contains("H section"),
        "{e}"
    );

    // A contribution made on another circuit.
    let o2 = cubic_ceremony(d, &ptau, 6, "other");
    ok(pulse(&[
        "ceremony",
        "contribute",
        s(&o2),
        "--name",
        "elsewhere",
    ]));
    let w = d.join("wrong");
    copy_dir(&c, &w);
    std::fs::copy(o2.join("0001.zkey"), w.join("0001.zkey")).expect("copy");
    let e = refused(&w);
    assert!(
        e.contains("contribution #1 (\"elsewhere\")") && e.contains("another circuit"),
        "{e}"
    );

    // A reordered transcript.
    let r = d.join("reordered");
    copy_dir(&c, &r);
    std::fs::rename(r.join("0002.zkey"), r.join("x.zkey")).expect("rename");
    std::fs::rename(r.join("0003.zkey"), r.join("0002.zkey")).expect("rename");
    std::fs::rename(r.join("x.zkey"), r.join("0003.zkey")).expect("rename");
    let e = refused(&r);
    assert!(
        e.contains("contribution #2 (\"clinic c\")") && e.contains("does not extend"),
        "{e}"
    );

    // A contribution without a valid proof of knowledge.
    let p = d.join("unproven");
    copy_dir(&c, &p);
    edit_zkey(&p.join("0003.zkey"), |z| {
        let last = z.mpc.contributions.last_mut().expect("contribution");
        last.g2_spx = ark_bn254::G2Affine::from(last.g2_spx * Fr::from(2u64));
    });
    let e = refused(&p);
    assert!(
        e.contains("contribution #3 (\"clinic c\")") && e.contains("proof of knowledge"),
        "{e}"
    );

    // Any circom circuit: Pulse proves snarkjs's key from the .zkey and .wtns alone, and
    // snarkjs checks the proof.
    std::fs::write(d.join("w.wtns"), wtns::to_bytes(&cubic_witness(3, 5))).expect("wtns");
    ok(snarkjs(d, &["wtns", "check", "c.r1cs", "w.wtns"]));
    ok(snarkjs(
        d,
        &[
            "zkey",
            "export",
            "verificationkey",
            "c/0004.zkey",
            "vk.json",
        ],
    ));
    let final_zkey = c.join("0004.zkey");
    ok(pulse(&[
        "snarkjs",
        "prove",
        "--zkey",
        s(&final_zkey),
        "--wtns",
        s(&d.join("w.wtns")),
        "--out",
        s(&d.join("pp")),
    ]));
    let o = ok(snarkjs(
        d,
        &[
            "groth16",
            "verify",
            "vk.json",
            "pp/public.json",
            "pp/proof.json",
        ],
    ));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("OK!"),
        "{}",
        text(&o)
    );
    // A witness for another circuit is refused, naming the mismatch.
    std::fs::write(
        d.join("bad.wtns"),
        wtns::to_bytes(&cubic_witness(3, 5)[..10]),
    )
    .expect("wtns");
    let o = pulse(&[
        "snarkjs",
        "prove",
        "--zkey",
        s(&c.join("0004.zkey")),
        "--wtns",
        s(&d.join("bad.wtns")),
        "--out",
        s(&d.join("pb")),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("wires"),
        "{}",
        text(&o)
    );
}

#[test]
fn chunk_keys_from_a_ceremony_and_their_proofs_cross_between_pulse_and_snarkjs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let ptau = d.join("pot14.ptau");
    ok(pulse(&["ptau", "new", "--power", "14", "--out", s(&ptau)]));
    let c = d.join("c");
    ok(pulse(&[
        "ceremony",
        "new",
        "--slots",
        "1",
        "--depth",
        "4",
        "--ptau",
        s(&ptau),
        "--out",
        s(&c),
    ]));
    ok(pulse(&[
        "ceremony",
        "contribute",
        s(&c),
        "--name",
        "operator",
    ]));
    ok(pulse(&[
        "ceremony",
        "contribute",
        s(&c),
        "--name",
        "hospital a",
    ]));
    ok(pulse(&["ceremony", "beacon", s(&c), "--hex", "deadbeef"]));
    let keys = d.join("keys");
    let o = ok(pulse(&[
        "ceremony",
        "finalize",
        s(&c),
        "--out",
        s(&keys),
        "--json",
    ]));
    let manifest: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        manifest["ceremony"]["contributions"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert!(keys.join("PulseChunkVerifier.sol").exists());

    // snarkjs checks Pulse's final key from the exported circuit and the ptau.
    let ex = d.join("export");
    ok(pulse(&[
        "snarkjs",
        "export",
        "--keys",
        s(&keys),
        "--out",
        s(&ex),
    ]));
    let o = ok(snarkjs(
        d,
        &[
            "zkey",
            "verify",
            "export/circuit.r1cs",
            "pot14.ptau",
            "export/circuit_final.zkey",
        ],
    ));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ZKey Ok!"),
        "{}",
        text(&o)
    );

    // A Pulse chunk proof verifies with snarkjs.
    let pr = d.join("proof");
    ok(pulse(&[
        "snarkjs",
        "proof",
        "--keys",
        s(&keys),
        "--out",
        s(&pr),
    ]));
    let o = ok(snarkjs(
        d,
        &[
            "groth16",
            "verify",
            "export/verification_key.json",
            "proof/public.json",
            "proof/proof.json",
        ],
    ));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("OK!"),
        "{}",
        text(&o)
    );

    // snarkjs proves the same chunk with the exported key; Pulse verifies its proof, and
    // refuses it for other public values.
    ok(snarkjs(
        d,
        &[
            "groth16",
            "prove",
            "export/circuit_final.zkey",
            "proof/witness.wtns",
            "sj.json",
            "sj_public.json",
        ],
    ));
    ok(pulse(&[
        "snarkjs",
        "verify",
        "--keys",
        s(&keys),
        "--proof",
        s(&d.join("sj.json")),
        "--public",
        s(&d.join("sj_public.json")),
    ]));
    let public = std::fs::read_to_string(d.join("sj_public.json")).expect("public");
    let mut values = json::read_public(&public).expect("public values");
    values[0] += Fr::from(1u64);
    std::fs::write(
        d.join("wrong_public.json"),
        json::to_string(&json::public_json(&values)),
    )
    .expect("write");
    let o = pulse(&[
        "snarkjs",
        "verify",
        "--keys",
        s(&keys),
        "--proof",
        s(&d.join("sj.json")),
        "--public",
        s(&d.join("wrong_public.json")),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("not valid"),
        "{}",
        text(&o)
    );

    // The same key and witness, Pulse's prover against snarkjs's in one run.
    let o = ok(pulse(&[
        "bench",
        "prove",
        "--zkey",
        s(&ex.join("circuit_final.zkey")),
        "--wtns",
        s(&pr.join("witness.wtns")),
        "--repeats",
        "1",
        "--json",
    ]));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(b["ratio"].as_f64().is_some_and(|r| r > 0.0), "{b}");

    // Keys from a single-party setup are not exported: snarkjs could not check them.
    let single = d.join("single");
    ok(pulse(&[
        "setup",
        "--slots",
        "1",
        "--depth",
        "4",
        "--out",
        s(&single),
        "--insecure-seed",
        "1",
    ]));
    let o = pulse(&[
        "snarkjs",
        "export",
        "--keys",
        s(&single),
        "--out",
        s(&d.join("x")),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("single-party"),
        "{}",
        text(&o)
    );
}

/// The NATS flags of an endpoint, for a `pulse` command line.
fn nats_flags(e: &pulse_access::NatsEndpoint) -> Vec<String> {
    let mut flags = vec![format!("--nats={}", e.url)];
    if let Some(creds) = &e.credentials {
        flags.push(format!("--nats-credentials={}", creds.display()));
    }
    if let Some(ca) = &e.ca {
        flags.push(format!("--nats-ca={}", ca.display()));
    }
    flags
}

fn spawn_pulse(args: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pulse")
}

/// A participant driven by the test: it reads its turn, announces what it is told to,
/// and reads the host's verdicts.
struct Participant {
    name: &'static str,
    js: async_nats::jetstream::Context,
    ipfs: pulse_ipfs::IpfsClient,
}

impl Participant {
    async fn stream(&self) -> async_nats::jetstream::stream::Stream<()> {
        self.js
            .get_stream_no_info(pulse_protocol::ceremony::CEREMONY_STREAM)
            .await
            .expect("ceremony stream handle")
    }

    /// Its turn, once the host offers it.
    async fn turn(&self) -> pulse_protocol::ceremony::CeremonyTurn {
        let subject = pulse_protocol::ceremony::turn_subject(self.name);
        for _ in 0..1200 {
            if let Ok(msg) = self
                .stream()
                .await
                .direct_get_last_for_subject(&subject)
                .await
            {
                return pulse_protocol::decode(&msg.payload).expect("a turn");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{} was never offered its turn", self.name);
    }

    async fn add(&self, z: &Zkey) -> pulse_protocol::ceremony::ZkeyRef {
        use sha2::Digest;
        let bytes = z.to_bytes();
        let r = pulse_protocol::ceremony::ZkeyRef {
            sha256: hex::encode(sha2::Sha256::digest(&bytes)),
            bytes: bytes.len() as u64,
            cid: String::new(),
        };
        let cid = self.ipfs.add(bytes).await.expect("add to IPFS");
        pulse_protocol::ceremony::ZkeyRef {
            cid: cid.to_string(),
            ..r
        }
    }

    /// Announces `payload` and returns the host's verdict on it.
    async fn announce(&self, payload: Vec<u8>) -> pulse_protocol::ceremony::VerdictOutcome {
        use pulse_protocol::ceremony::{CeremonyVerdict, contribution_subject, verdict_subject};
        let seq = self
            .js
            .publish(contribution_subject(self.name), payload.into())
            .await
            .expect("publish")
            .await
            .expect("stored")
            .sequence;
        let subject = verdict_subject(self.name);
        for _ in 0..1200 {
            if let Ok(msg) = self
                .stream()
                .await
                .direct_get_last_for_subject(&subject)
                .await
                && msg.sequence > seq
            {
                let v: CeremonyVerdict = pulse_protocol::decode(&msg.payload).expect("a verdict");
                return v.outcome;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no verdict for {}", self.name);
    }
}

/// Scope 3 of the ceremony: the host passes the key from participant to participant through
/// NATS and IPFS and verifies each contribution before the next turn. `h1` takes part with
/// `pulse ceremony join`; `h2` (the test) first announces garbage, a contribution under
/// another's name and a contribution with a tampered δ, each refused with the reason while
/// its turn stays open, then a good one; `h3` never answers and is skipped when its turn
/// times out. The transcript then verifies and names h1 and h2.
#[test]
fn a_ceremony_passes_through_the_cluster_and_the_host_refuses_bad_contributions() {
    use pulse_protocol::ceremony::{CeremonyContribution, VerdictOutcome};
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let ptau = d.join("dev.ptau");
    ok(pulse(&["ptau", "new", "--power", "6", "--out", s(&ptau)]));
    let c = cubic_ceremony(d, &ptau, 5, "c");

    let mut nats = pulse_testkit::Nats::start();
    let ipfs = pulse_testkit::Ipfs::start();
    let host_nats = nats.coordinator();
    let (h1, h2) = (nats.worker("h1"), nats.worker("h2"));
    let _h3 = nats.worker("h3");
    let ipfs_flag = format!("--ipfs={}", ipfs.api_url());

    let mut args: Vec<String> = ["ceremony", "host", s(&c), "--participant", "h1,h2,h3"]
        .map(String::from)
        .into();
    args.extend(nats_flags(&host_nats));
    args.extend([
        ipfs_flag.clone(),
        "--turn-timeout=25s".into(),
        "--json".into(),
    ]);
    let host = spawn_pulse(&args);
    let mut args: Vec<String> = ["ceremony", "join", "--wait=180s", "--json"]
        .map(String::from)
        .into();
    args.extend(nats_flags(&h1));
    args.push(ipfs_flag);
    let join = spawn_pulse(&args);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let me = Participant {
            name: "h2",
            js: async_nats::jetstream::new(h2.connect("test-h2").await.expect("connect h2")),
            ipfs: pulse_ipfs::IpfsClient::new(&ipfs.api_url()).expect("ipfs client"),
        };
        let turn = me.turn().await;
        assert_eq!(turn.index, 2, "h1 contributed first: {turn:?}");
        let cid = pulse_ipfs::Cid::try_from(turn.zkey.cid.as_str()).expect("cid");
        let prev = Zkey::parse(
            me.ipfs
                .cat(&cid, std::time::Duration::from_secs(30))
                .await
                .expect("the turn's key"),
        )
        .expect("a zkey");
        let contribute = |name: &str| {
            pulse_ceremony::phase2::contribute(
                &prev,
                &mut pulse_ceremony::rng::contribution_stream(b""),
                Some(name.to_owned()),
            )
        };
        let announcement = |zkey, hash: [u8; 64]| CeremonyContribution {
            ceremony: turn.ceremony.clone(),
            index: turn.index,
            base_sha256: turn.zkey.sha256.clone(),
            zkey,
            contribution_hash: hex::encode(hash),
        };
        let refused = |o: VerdictOutcome, what: &str, expect: &str| match o {
            VerdictOutcome::Refused { reason, is_final } => {
                assert!(!is_final, "{what}: the turn stays open");
                assert!(reason.contains(expect), "{what}: {reason}");
            }
            other => panic!("{what} was accepted: {other:?}"),
        };

        refused(
            me.announce(b"{\"v\":1,\"not\":\"a contribution\"}".to_vec())
                .await,
            "garbage",
            "unreadable",
        );
        let (forged, hash) = contribute("h1");
        let zkey = me.add(&forged).await;
        refused(
            me.announce(pulse_protocol::encode(&announcement(zkey, hash)))
                .await,
            "a contribution under another's name",
            "announced by participant \"h2\"",
        );
        let (mut tampered, hash) = contribute("h2");
        tampered.delta1 = prev.delta1;
        let zkey = me.add(&tampered).await;
        refused(
            me.announce(pulse_protocol::encode(&announcement(zkey, hash)))
                .await,
            "a tampered δ",
            "contribution #2 (\"h2\"): the key's δ₁",
        );
        let (good, hash) = contribute("h2");
        let zkey = me.add(&good).await;
        match me
            .announce(pulse_protocol::encode(&announcement(zkey, hash)))
            .await
        {
            VerdictOutcome::Accepted {
                contribution_hash, ..
            } => assert_eq!(contribution_hash, hex::encode(hash)),
            other => panic!("the good contribution was refused: {other:?}"),
        }
    });

    let joined = join.wait_with_output().expect("join");
    assert!(joined.status.success(), "{}", text(&joined));
    let j: serde_json::Value = serde_json::from_slice(&joined.stdout).expect("join json");
    assert_eq!(j["participant"], "h1");
    assert_eq!(j["index"], 1);
    let hosted = host.wait_with_output().expect("host");
    assert!(hosted.status.success(), "{}", text(&hosted));
    let r: serde_json::Value = serde_json::from_slice(&hosted.stdout).expect("host json");
    let names = |k: &str| -> Vec<String> {
        r[k].as_array()
            .expect("list")
            .iter()
            .map(|e| e["participant"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(names("accepted"), ["h1", "h2"], "{r}");
    assert_eq!(names("skipped"), ["h3"], "{r}");
    let why = r["skipped"][0]["reason"].as_str().unwrap_or_default();
    assert!(why.contains("no contribution within"), "{why}");
    assert_eq!(r["accepted"][0]["hash"], j["contribution_hash"], "{r}");

    // The whole transcript verifies from the ptau, and names the participants.
    assert_eq!(verified_contributors(&c), ["h1", "h2"]);
}
