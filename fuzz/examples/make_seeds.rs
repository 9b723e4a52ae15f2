//! Writes the seed corpora under `fuzz/corpus/TARGET/`: real messages, made by the encoders
//! the services use (transactions of every kind signed for a deployment, a proving job with
//! the witness the sequencer builds, results, receipts, a registry entry, a proof, keys, a
//! key file, an envelope and a key share, the node's answers as Kubo writes them, API paths,
//! credentials) and a few drawn transaction sequences. Run by `scripts/fuzz --make-seeds`;
//! the corpora are committed, so CI starts from their coverage.
#![allow(clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::str::FromStr;

use cid::Cid;
use pulse_circuits::Fr;
use pulse_circuits::artifacts::{PROVING_KEY_FILE, VERIFYING_KEY_FILE};
use pulse_circuits::circuit::ChunkWitness;
use pulse_circuits::eddsa::PrivateKey;
use pulse_circuits::tx::{Permissions, Role, Scope, SignedTransaction, Transaction, TxBody};
use pulse_client::KeyFile;
use pulse_client::record::add_recipient;
use pulse_fuzz::fixtures;
use pulse_protocol::{
    JobOutcome, JobResult, ProvingJob, Receipt, ReceiptStatus, ScalarsRef, ShardId, ShardJob,
    ShardSpan, WorkerInfo, encode, job_id, shard_job_id,
};
use pulse_prover::MsmSums;
use pulse_prover::split::{ShardRanges, ShardScalars, encode_sums};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn put(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("corpus folder");
    std::fs::write(d.join(name), bytes).expect("seed file");
}

fn with_prefix(b: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![b];
    v.extend_from_slice(rest);
    v
}

fn main() {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("corpus"));
    let state = fixtures::state();
    let d = &state.deployment;
    let cid =
        Cid::from_str("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy").expect("cid");
    // Keys of the opening: registrar [1;32] is account 1, doctors [2;32] and [3;32] are 2 and
    // 3, patients [4;32] and [5;32] are 4 and 5; patient 4 holds record 1 and grant 1 to 2.
    let key = |i: u8| PrivateKey::from_bytes([i; 32]);
    let sign = |k: u8, signer: u64, nonce: u64, body: TxBody| -> SignedTransaction {
        Transaction {
            signer,
            nonce,
            body,
        }
        .sign(&key(k), d.id)
        .expect("sign")
    };
    let txs = [
        (
            "register_self",
            sign(
                6,
                0,
                0,
                TxBody::Register {
                    public_key: key(6).public_key(),
                    role: Role::Patient,
                },
            ),
        ),
        (
            "register_doctor",
            sign(
                1,
                1,
                2,
                TxBody::Register {
                    public_key: key(7).public_key(),
                    role: Role::Doctor,
                },
            ),
        ),
        (
            "add_record",
            sign(
                4,
                4,
                3,
                TxBody::AddRecord {
                    patient: 4,
                    cid,
                    metadata_hash: Fr::from(99u64),
                    grant: None,
                },
            ),
        ),
        (
            "grant",
            sign(
                4,
                4,
                3,
                TxBody::Grant {
                    grantee: 3,
                    scope: Scope::Record(1),
                    permissions: Permissions {
                        read: true,
                        write: false,
                    },
                    expires_at: state.timestamp + 1000,
                },
            ),
        ),
        ("revoke", sign(4, 4, 3, TxBody::Revoke { grant: 1 })),
        (
            "access_log",
            sign(
                2,
                2,
                0,
                TxBody::AccessLog {
                    record: 1,
                    grant: 1,
                    purpose: Fr::from(5u64),
                },
            ),
        ),
    ];
    for (name, stx) in &txs {
        put(&dir, "tx_json", name, stx.to_json().as_bytes());
    }

    // A proving job with the witness the sequencer makes for the access log above.
    let mut batch = state
        .state
        .begin(state.timestamp, d)
        .expect("begin a batch");
    batch.apply(&txs[5].1).expect("the access log applies");
    let before = state.state.roots().expect("roots");
    let chunks: Vec<ChunkWitness> = batch.chunks(before, 1);
    batch.rollback().expect("rollback");
    let keys = fixtures::keys();
    let params = pulse_circuits::artifacts::CircuitParams::new(1, 3);
    let job = ProvingJob {
        job_id: job_id(1, 0, 0),
        batch: 1,
        chunk: 0,
        attempt: 0,
        circuit_id: params.id().to_string(),
        slots: 1,
        depth: 3,
        pk_hash: keys.keys.manifest.pk_hash.to_string(),
        vk_hash: keys.keys.manifest.vk_hash.to_string(),
        witness: chunks[0].clone(),
        split: Vec::new(),
    };
    put(&dir, "job", "access_log", &encode(&job));
    // A job the target also synthesizes: one slot at depth 2, a patient registering itself.
    let small = pulse_circuits::state::State::in_memory(2).expect("state");
    small.init_genesis(&[key(1).public_key()]).expect("genesis");
    let before = small.roots().expect("roots");
    let mut batch = small.begin(state.timestamp, d).expect("begin");
    batch.apply(&txs[0].1).expect("the registration applies");
    let small_job = ProvingJob {
        circuit_id: pulse_circuits::artifacts::CircuitParams::new(1, 2)
            .id()
            .to_string(),
        depth: 2,
        witness: batch.chunks(before, 1)[0].clone(),
        ..job.clone()
    };
    batch.rollback().expect("rollback");
    put(&dir, "job", "register_depth2", &encode(&small_job));

    let proof = keys.proof.to_json();
    let proved = JobResult {
        job_id: job_id(1, 0, 0),
        worker_id: "hospital-a-gpu0".into(),
        outcome: JobOutcome::Proved {
            proof: proof.clone(),
            witness_seconds: 0.01,
            prove_seconds: 1.5,
            backend: "cpu".into(),
        },
    };
    let failed = JobResult {
        job_id: job_id(2, 1, 3),
        worker_id: "hospital-b".into(),
        outcome: JobOutcome::Failed {
            reason: "out of memory".into(),
        },
    };
    put(&dir, "job_result", "proved", &encode(&proved));
    put(&dir, "job_result", "failed", &encode(&failed));

    // Split proofs: a witness job's and a shard's answers, a shard job, shard scalars and
    // sums as their encoders write them.
    let span = ShardSpan {
        assignment: [0, 3],
        l: [1, 2],
        h: [4, 6],
    };
    let scalars_ref = ScalarsRef {
        sha256: "ab".repeat(32),
        bytes: 56 + 32 * 6,
    };
    let witnessed = JobResult {
        job_id: job_id(3, 0, 1),
        worker_id: "hospital-a".into(),
        outcome: JobOutcome::Witnessed {
            scalars: vec![scalars_ref.clone(), scalars_ref.clone()],
            witness_seconds: 0.2,
            reduction_seconds: 0.9,
        },
    };
    let g = ark_bn254::G1Projective::from(<ark_bn254::G1Affine as ark_ec::AffineRepr>::generator());
    let sums = MsmSums {
        a: g,
        b_g1: g + g,
        b_g2: ark_bn254::G2Projective::from(
            <ark_bn254::G2Affine as ark_ec::AffineRepr>::generator(),
        ),
        l: g,
        h: ark_bn254::G1Projective::default(),
    };
    let sums_bytes = encode_sums(&sums);
    let shard_id = ShardId {
        batch: 3,
        chunk: 0,
        generation: 1,
        shard: 1,
        lease: 2,
    };
    let answered = JobResult {
        job_id: shard_job_id(shard_id),
        worker_id: "hospital-b".into(),
        outcome: JobOutcome::Shard {
            sums: pulse_protocol::split::to_hex(&sums_bytes),
            msm_seconds: 2.5,
            load_seconds: 0.1,
            backend: "cuda".into(),
        },
    };
    put(&dir, "job_result", "witnessed", &encode(&witnessed));
    put(&dir, "job_result", "shard", &encode(&answered));
    let shard_job = ShardJob {
        job_id: shard_job_id(shard_id),
        circuit_id: params.id().to_string(),
        pk_hash: keys.keys.manifest.pk_hash.to_string(),
        span: span.clone(),
        scalars: scalars_ref,
    };
    put(&dir, "shard", "job", &with_prefix(0, &encode(&shard_job)));
    let shard_scalars = ShardScalars {
        ranges: ShardRanges {
            assignment: 0..3,
            l: 1..2,
            h: 4..6,
        },
        assignment: vec![Fr::from(1u64), -Fr::from(1u64), Fr::from(7u64)],
        l: vec![Fr::from(0u64)],
        h: vec![Fr::from(3u64), Fr::from(u64::MAX)],
    };
    put(
        &dir,
        "shard",
        "scalars",
        &with_prefix(1, &shard_scalars.encode()),
    );
    put(&dir, "shard", "sums", &with_prefix(2, &sums_bytes));
    put(&dir, "proof", "blank_chunk", proof.as_bytes());

    let hash = txs[2].1.hash(d.id).expect("hash").to_string();
    for (name, status) in [
        (
            "accepted",
            ReceiptStatus::Accepted {
                batch: 3,
                new_account: None,
                new_record: Some(2),
                new_grant: None,
            },
        ),
        (
            "rejected",
            ReceiptStatus::Rejected {
                reason: "stale_nonce".into(),
                message: "account 4 expects nonce 3".into(),
            },
        ),
        (
            "committed",
            ReceiptStatus::Committed {
                batch: 3,
                l1_tx: format!("0x{}", "ab".repeat(32)),
            },
        ),
    ] {
        let r = Receipt {
            tx_hash: Some(hash.clone()),
            status,
        };
        put(&dir, "receipt", name, &encode(&r));
    }
    let info = WorkerInfo {
        worker_id: "hospital-a-gpu0".into(),
        backend: "cuda".into(),
        device: "NVIDIA H100".into(),
        memory_bytes: 80 << 30,
        version: "0.1.0".into(),
        circuits: vec![params.id().to_string()],
        jobs_done: 12,
        current_job: Some(job_id(1, 0, 0)),
        heartbeat_at: 1_800_000_000,
        base_memory_bytes: Some(24 << 30),
        resident: Vec::new(),
    };
    put(&dir, "worker_info", "cuda", &encode(&info));

    // Keys: the fixture's verifying key and the head of its proving key, cut as the target
    // cuts them (mode byte: low bit clear = the manifest is made from the files' hashes).
    let kdir = std::env::temp_dir().join(format!("pulse-seeds-{}", std::process::id()));
    keys.keys.write(&kdir).expect("write keys");
    let vk = std::fs::read(kdir.join(VERIFYING_KEY_FILE)).expect("vk");
    let pk = std::fs::read(kdir.join(PROVING_KEY_FILE)).expect("pk");
    let _ = std::fs::remove_dir_all(&kdir);
    let cut = vk.len().min(127);
    let mut seed = vec![(cut as u8) << 1];
    seed.extend_from_slice(&vk[..cut]);
    seed.extend_from_slice(&pk[..pk.len().min(2048)]);
    put(&dir, "keys", "vk_head_pk_head", &seed);

    // Constraint matrices: a small circuit's (the fixture's are hundreds of kilobytes).
    let r1cs = pulse_circuits::r1cs::R1cs::from_matrices(
        2,
        4,
        [
            vec![
                vec![(Fr::from(1u64), 2)],
                vec![(Fr::from(3u64), 1), (-Fr::from(1u64), 3)],
            ],
            vec![vec![(Fr::from(1u64), 2)], vec![(Fr::from(1u64), 0)]],
            vec![vec![(Fr::from(1u64), 3)], vec![]],
        ],
    )
    .expect("small matrices");
    put(&dir, "keys", "r1cs_small", &r1cs.to_bytes());
    // The same with 603,979,780 variables declared (bytes 20..24): a fuzz finding, the
    // harness built a witness that long and timed out; a worker refuses the count against
    // its key.
    let mut many = r1cs.to_bytes();
    many[20..24].copy_from_slice(&0x2400_0004u32.to_le_bytes());
    put(&dir, "keys", "r1cs_many_variables", &many);

    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let kf = KeyFile::new(key(4), Some(4));
    put(&dir, "key_file", "patient", kf.to_json().as_bytes());
    let kf = KeyFile::generate(&mut rng);
    put(&dir, "key_file", "unregistered", kf.to_json().as_bytes());

    let rec = fixtures::record();
    put(
        &dir,
        "envelope",
        "record",
        &with_prefix(0, &rec.envelope.to_json()),
    );
    let share = add_recipient(
        &rec.envelope,
        &cid,
        rec.account,
        &rec.key,
        2,
        &key(2).public_key(),
        &mut rng,
    )
    .expect("share");
    put(&dir, "envelope", "share", &with_prefix(1, &share.to_json()));

    let raw = pulse_ipfs::raw_cid_of(b"a test record").to_string();
    put(
        &dir,
        "ipfs_answer",
        "add",
        &with_prefix(
            0,
            format!("{{\"Name\":\"blob\",\"Hash\":\"{raw}\",\"Size\":\"13\"}}\n").as_bytes(),
        ),
    );
    put(
        &dir,
        "ipfs_answer",
        "version",
        &with_prefix(
            1,
            br#"{"Version":"0.32.1","Commit":"","Repo":"16","System":"amd64/linux","Golang":"go1.23.4"}"#,
        ),
    );
    put(
        &dir,
        "ipfs_answer",
        "pins",
        &with_prefix(2, format!("{{\"Pins\":[\"{raw}\"]}}\n").as_bytes()),
    );
    put(
        &dir,
        "ipfs_answer",
        "error",
        &with_prefix(
            3,
            br#"{"Message":"merkledag: not found","Code":0,"Type":"error"}"#,
        ),
    );
    put(
        &dir,
        "ipfs_answer",
        "cat",
        &with_prefix(4, b"a test record"),
    );

    for (name, path) in [
        ("account", "accounts/4"),
        ("record_latest", "records/1?view=latest"),
        ("grant_committed", "grants/1?view=committed"),
        ("status", "status"),
        ("health", "health"),
        ("metrics", "metrics"),
        ("page", "status.html"),
    ] {
        put(&dir, "http_api", name, path.as_bytes());
    }

    let creds = pulse_access::Credentials::generate(pulse_access::Role::Worker, "hospital-a")
        .expect("credentials");
    let cpath = std::env::temp_dir().join(format!("pulse-seed-creds-{}", std::process::id()));
    creds.save(&cpath).expect("save credentials");
    let text = std::fs::read(&cpath).expect("read credentials");
    let _ = std::fs::remove_file(&cpath);
    put(&dir, "credentials", "worker", &text);

    for i in 0..6u64 {
        let mut bytes = vec![0u8; 400];
        ChaCha20Rng::seed_from_u64(100 + i).fill_bytes(&mut bytes);
        put(&dir, "differential", &format!("sequence-{i}"), &bytes);
    }
    ceremony_seeds(&dir);
    sealed_seeds(&dir);
    dac_seeds(&dir);
    println!("seeds written under {}", dir.display());
}

/// A ceremony's messages, and its files at the smallest size: `x·x = y` over a ptau of
/// 2^3 powers, its initial key with one contribution, a witness, snarkjs JSON.
fn ceremony_seeds(dir: &Path) {
    use pulse_ceremony::ceremony::transcript_hash;
    use pulse_ceremony::{json, keys, phase2, ptau::Ptau, r1cs_file::CircomR1cs, rng, wtns};
    use pulse_protocol::ceremony::{
        CeremonyContribution, CeremonyTurn, CeremonyVerdict, VerdictOutcome, ZkeyRef,
    };
    let one = Fr::from(1u64);
    let r1cs = CircomR1cs {
        wires: 3,
        outputs: 1,
        public_inputs: 0,
        private_inputs: 1,
        labels: 3,
        constraints: vec![[vec![(2, one)], vec![(2, one)], vec![(1, one)]]],
    };
    put(dir, "ceremony_file", "r1cs", &r1cs.to_bytes());
    let ptau = Ptau::new(3, &mut ChaCha20Rng::seed_from_u64(7)).expect("ptau");
    put(dir, "ceremony_file", "ptau", &ptau.to_bytes());
    let init = phase2::initial(&r1cs, &ptau).expect("initial key");
    let (next, hash) = phase2::contribute(
        &init,
        &mut rng::contribution_stream(b"seed"),
        Some("hospital-a".into()),
    );
    put(dir, "ceremony_file", "zkey", &next.to_bytes());
    put(
        dir,
        "ceremony_file",
        "wtns",
        &wtns::to_bytes(&[one, Fr::from(9u64), Fr::from(3u64)]),
    );
    let vk = keys::verifying_key(&next);
    put(
        dir,
        "ceremony_file",
        "vk_json",
        json::to_string(&json::vk_json(&vk)).as_bytes(),
    );
    let proof = ark_groth16::Proof::<ark_bn254::Bn254> {
        a: vk.alpha_g1,
        b: vk.beta_g2,
        c: vk.alpha_g1,
    };
    put(
        dir,
        "ceremony_file",
        "proof_json",
        json::to_string(&json::proof_json(&proof)).as_bytes(),
    );
    put(
        dir,
        "ceremony_file",
        "public_json",
        json::to_string(&json::public_json(&[Fr::from(9u64)])).as_bytes(),
    );

    let zkey = |sha: u8| ZkeyRef {
        cid: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".into(),
        sha256: hex::encode([sha; 32]),
        bytes: 49_164_526,
    };
    let ceremony = hex::encode(next.mpc.cs_hash);
    let turn = CeremonyTurn {
        ceremony: ceremony.clone(),
        index: 2,
        zkey: zkey(1),
        transcript: transcript_hash(&init),
        timeout_s: 1800,
    };
    put(
        dir,
        "ceremony_message",
        "turn",
        &with_prefix(0, &encode(&turn)),
    );
    let c = CeremonyContribution {
        ceremony: ceremony.clone(),
        index: 2,
        base_sha256: hex::encode([1u8; 32]),
        zkey: zkey(2),
        contribution_hash: hex::encode(hash),
    };
    put(
        dir,
        "ceremony_message",
        "contribution",
        &with_prefix(1, &encode(&c)),
    );
    for (name, outcome) in [
        (
            "accepted",
            VerdictOutcome::Accepted {
                contribution_hash: hex::encode(hash),
                transcript: transcript_hash(&next),
            },
        ),
        (
            "refused",
            VerdictOutcome::Refused {
                reason: "contribution #2 (\"hospital-a\"): the key's δ₁ is not the one its contribution announces".into(),
                is_final: false,
            },
        ),
    ] {
        let v = CeremonyVerdict {
            ceremony: ceremony.clone(),
            index: 2,
            outcome,
        };
        put(dir, "ceremony_message", name, &with_prefix(2, &encode(&v)));
    }
}

/// A committee member for the seeds: name, and key and address bytes `k`.
fn member(name: &str, k: u8) -> pulse_dac::Member {
    let key = pulse_dac::MemberKey::from_bytes(name, [k; 32]);
    pulse_dac::Member {
        name: name.into(),
        x25519: key.public_hex(),
        address: format!("0x{}", hex::encode([k; 20])),
    }
}

/// The committee's messages, a signed lookup's header and committee files.
fn dac_seeds(dir: &Path) {
    use pulse_dac::{Committee, MemberKey};
    use pulse_protocol::dac::{AttestRequest, AttestationMessage};
    use pulse_protocol::lookup_auth::LookupAuth;
    let r = AttestRequest {
        batch: 3,
        data_cid: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".into(),
        committee: hex::encode([5u8; 32]),
        commitments: vec![
            "12958436475945287049572850427300737219345685574743683209580260974828391588765".into(),
        ],
    };
    put(dir, "dac_message", "request", &with_prefix(0, &encode(&r)));
    let a = AttestationMessage {
        batch: 3,
        data_cid: r.data_cid.clone(),
        signer: format!("0x{}", hex::encode([0x11u8; 20])),
        signature: format!("0x{}", hex::encode([0x22u8; 65])),
    };
    put(dir, "dac_message", "attestation", &with_prefix(1, &encode(&a)));
    let auth = LookupAuth::sign(
        &PrivateKey::from_bytes([4; 32]),
        4,
        fixtures::state().deployment.id,
        1_800_000_000_000,
        0x0123_4567_89ab_cdef,
        "GET",
        "/accounts/4/records",
    );
    put(dir, "dac_message", "authorization", &with_prefix(2, auth.header().as_bytes()));
    let mut c = Committee::new(2, vec![member("st-mary", 7), member("city-clinic", 8), member("north", 9)])
        .expect("committee");
    put(dir, "dac_message", "committee", &with_prefix(3, c.to_json().as_bytes()));
    c.readers.push(pulse_dac::committee::Reader {
        name: "operator".into(),
        x25519: MemberKey::from_bytes("operator", [10; 32]).public_hex(),
    });
    put(dir, "dac_message", "committee_reader", &with_prefix(3, c.to_json().as_bytes()));
    put(
        dir,
        "http_api",
        "signed_records",
        format!("{}\naccounts/4/records", auth.header()).as_bytes(),
    );
}

/// Sealed batch data for the fuzz target's fixture committee (one member, `st-mary`, key
/// bytes `[7; 32]`), and for a committee of three.
fn sealed_seeds(dir: &Path) {
    use pulse_dac::{Committee, seal};
    let one = Committee::new(1, vec![member("st-mary", 7)]).expect("committee");
    let three = Committee::new(
        2,
        vec![
            member("st-mary", 7),
            member("city-clinic", 8),
            member("north", 9),
        ],
    )
    .expect("committee");
    let data = br#"{"version":2,"batch":3,"timestamp":1800000000,"chunks":[]}"#;
    put(
        dir,
        "sealed_batch",
        "one_member",
        &seal(data, 3, &one).expect("seal"),
    );
    put(
        dir,
        "sealed_batch",
        "three_members",
        &seal(data, 4, &three).expect("seal"),
    );
}
