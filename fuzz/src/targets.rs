//! One function per fuzz target, taking the bytes from outside as the service receives them.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use axum::body::Body;
use axum::http::Request;
use pulse_circuits::Fr;
use pulse_circuits::artifacts::{
    CircuitParams, Hash32, KeyArtifacts, MANIFEST_FILE, PROVING_KEY_FILE, ProofArtifact,
    VERIFYING_KEY_FILE,
};
use pulse_circuits::circuit::{ChunkCircuit, Weakening, weaken_for_tests};
use pulse_circuits::differential::{self, Report};
use pulse_circuits::r1cs::{R1cs, Which};
use pulse_circuits::tx::{MAX_TX_JSON_BYTES, SignedTransaction};
use pulse_client::KeyFile;
use pulse_client::record::{KeyShare, RecordEnvelope, open_record, open_with_share};
use pulse_coordinator::pubdata::BatchData;
use pulse_coordinator::rebuild::check_data;
use pulse_l1::history::ChunkInputs;
use pulse_protocol::split::from_hex;
use pulse_protocol::{
    JobOutcome, JobResult, ProvingJob, Receipt, ShardJob, WorkerInfo, decode, encode,
    messages::Message, parse_job_id, parse_shard_job_id,
};
use pulse_prover::split::{ShardScalars, decode_sums, encode_sums};
use tower::ServiceExt;

use crate::fixtures;
use crate::json::Structured;

/// A decoded message must survive its own encoding.
fn round_trips<T: Message + PartialEq + std::fmt::Debug>(msg: &T) {
    let again: T = decode(&encode(msg))
        .unwrap_or_else(|e| panic!("a decoded {} does not decode after encoding: {e}", T::KIND));
    assert_eq!(&again, msg, "a {} changed through its encoding", T::KIND);
}

/// `pulse.tx.submit` as the coordinator takes it: the size limit, the text, the strict JSON
/// form, the hash for the deployment, the signature check against the signer's key, then
/// every rule of the sequencer on a populated state (applied with the signature taken as
/// checked, as the sequencer applies transactions whose signatures were checked in
/// parallel, so that fuzzed transactions reach the rules behind it; the batch is rolled
/// back).
pub fn tx_json(data: &[u8]) {
    if data.len() > MAX_TX_JSON_BYTES {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let Ok(stx) = SignedTransaction::from_json(&text) else {
        return;
    };
    let again = SignedTransaction::from_json(&stx.to_json())
        .unwrap_or_else(|e| panic!("a parsed transaction does not parse after encoding: {e}"));
    assert_eq!(again, stx, "a transaction changed through its JSON form");
    let f = fixtures::state();
    let _ = stx.hash(f.deployment.id);
    let _ = f.state.verify_signature(&stx, &f.deployment);
    let Ok(mut batch) = f.state.begin(f.timestamp, &f.deployment) else {
        return;
    };
    if let Ok(applied) = batch.apply_preverified(&stx) {
        // What the sequencer accepted becomes a proving job's witness.
        let slot = applied.slot.clone();
        let chunks = batch.chunks(f.state.roots().unwrap_or(batch.roots()), 1);
        assert_eq!(chunks.len(), 1, "one applied transaction makes one chunk");
        assert_eq!(chunks[0].slots[0], slot);
    }
    let _ = batch.rollback();
}

/// A proving job as a worker takes it from JetStream: decoded, its witness checked against
/// the circuit it names and, for a one-slot depth-2 circuit, synthesized and checked (a
/// hostile job must not crash the worker that proves it).
pub fn job(data: &[u8]) {
    let Ok(job) = decode::<ProvingJob>(data) else {
        return;
    };
    round_trips(&job);
    let params = CircuitParams::new(job.slots as usize, job.depth as usize);
    let _ = params.id();
    if job.witness.check_shape(params).is_err() {
        return;
    }
    // Synthesis of one small slot (depth 2) stays within the time limit per input under
    // the sanitizer; larger circuits are checked for shape only.
    if params.slots == 1 && params.depth <= 2 {
        let cs = ark_relations_cs();
        if (ChunkCircuit {
            params,
            witness: job.witness,
        })
        .synthesize(cs.clone(), None)
        .is_ok()
        {
            let _ = cs.is_satisfied();
        }
    }
}

fn ark_relations_cs() -> ark_relations::gr1cs::ConstraintSystemRef<Fr> {
    ark_relations::gr1cs::ConstraintSystem::<Fr>::new_ref()
}

/// A job result as the coordinator takes it from a worker: decoded, its job id parsed, and
/// a proof checked against the chunk's public inputs and the verifying key.
pub fn job_result(data: &[u8]) {
    let Ok(result) = decode::<JobResult>(data) else {
        return;
    };
    round_trips(&result);
    let _ = parse_job_id(&result.job_id);
    let _ = parse_shard_job_id(&result.job_id);
    match &result.outcome {
        JobOutcome::Proved { proof, .. } => check_proof(proof),
        // A shard's sums as the coordinator reads them: hex, then five checked points.
        JobOutcome::Shard { sums, .. } => {
            if let Some(bytes) = from_hex(sums) {
                check_sums(&bytes);
            }
        }
        _ => {}
    }
}

fn check_sums(bytes: &[u8]) {
    if let Ok(sums) = decode_sums(bytes) {
        let again = decode_sums(&encode_sums(&sums))
            .unwrap_or_else(|e| panic!("decoded sums do not decode after encoding: {e}"));
        assert_eq!(again, sums, "sums changed through their encoding");
    }
}

/// The byte forms of a split proof as they cross machines, by the first byte: a shard job
/// as a worker takes it from its own subject (decoded, its id parsed); a shard's scalars as
/// a worker reads them from the object store (canonical: read back, they encode to the
/// same bytes); a shard's sums as the coordinator reads them.
pub fn shard(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(job) = decode::<ShardJob>(rest) {
                round_trips(&job);
                let _ = parse_shard_job_id(&job.job_id);
                let _ = from_hex(&job.scalars.sha256);
            }
        }
        1 => {
            if let Ok(scalars) = ShardScalars::decode(rest) {
                assert_eq!(
                    scalars.encode(),
                    rest,
                    "shard scalars read back to other bytes"
                );
            }
        }
        _ => check_sums(rest),
    }
}

fn check_proof(text: &str) {
    let f = fixtures::keys();
    let Ok(artifact) = ProofArtifact::from_json(text) else {
        return;
    };
    let again = ProofArtifact::from_json(&artifact.to_json())
        .unwrap_or_else(|e| panic!("a parsed proof does not parse after encoding: {e}"));
    assert_eq!(again, artifact, "a proof changed through its JSON form");
    let _ = artifact.public_inputs == f.proof.public_inputs;
    let verified = f.keys.verifier().verify(&artifact);
    if artifact == f.proof {
        assert!(verified.is_ok(), "the fixture proof no longer verifies");
    }
}

/// A receipt as a client reads it from its receipt subject.
pub fn receipt(data: &[u8]) {
    if let Ok(r) = decode::<Receipt>(data) {
        round_trips(&r);
    }
}

/// A ceremony message from the ceremony stream, as the host (an announced contribution)
/// and a participant (its turn, the host's verdict) read it; the first byte picks which.
pub fn ceremony_message(data: &[u8]) {
    use pulse_protocol::ceremony::{CeremonyContribution, CeremonyTurn, CeremonyVerdict};
    let Some((kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            if let Ok(m) = decode::<CeremonyTurn>(bytes) {
                round_trips(&m);
            }
        }
        1 => {
            if let Ok(m) = decode::<CeremonyContribution>(bytes) {
                round_trips(&m);
            }
        }
        _ => {
            if let Ok(m) = decode::<CeremonyVerdict>(bytes) {
                round_trips(&m);
            }
        }
    }
}

/// The availability committee's and the signed lookups' inputs: an attestation request and
/// an attestation as a member and the coordinator read them from NATS, a lookup's
/// `Authorization` header as the API reads it, and a `committee.json` as every party
/// reads it. What parses must survive its own encoding.
pub fn dac_message(data: &[u8]) {
    use pulse_protocol::dac::{AttestRequest, AttestationMessage};
    use pulse_protocol::lookup_auth::LookupAuth;
    let Some((kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 4 {
        0 => {
            if let Ok(m) = decode::<AttestRequest>(bytes) {
                round_trips(&m);
            }
        }
        1 => {
            if let Ok(m) = decode::<AttestationMessage>(bytes) {
                round_trips(&m);
            }
        }
        2 => {
            let text = String::from_utf8_lossy(bytes);
            if let Ok(a) = LookupAuth::parse(&text) {
                let again = LookupAuth::parse(&a.header())
                    .unwrap_or_else(|e| panic!("a parsed authorization does not parse again: {e}"));
                assert_eq!(again, a, "an authorization changed through its header");
            }
        }
        _ => {
            let text = String::from_utf8_lossy(bytes);
            if let Ok(c) = pulse_dac::Committee::from_json(&text, "fuzz.json") {
                let again = pulse_dac::Committee::from_json(&c.to_json(), "again.json")
                    .unwrap_or_else(|e| panic!("a parsed committee does not parse again: {e}"));
                assert_eq!(again, c, "a committee changed through its encoding");
                assert_eq!(again.id(), c.id());
            }
        }
    }
}

/// The ceremony's and snarkjs's files, as Pulse reads them from participants, from IPFS
/// and from disk (`pulse ceremony host|import|verify`, `pulse snarkjs …`, `pulse bench
/// prove --zkey --wtns`): chosen by their magic bytes (`zkey`, `r1cs`, `wtns`, `ptau`),
/// anything else read as snarkjs JSON (a proof, public values, a verifying key). A parsed
/// file must survive its own encoding; a key's derived verifying key and constraint count
/// must not panic.
pub fn ceremony_file(data: &[u8]) {
    use pulse_ceremony::{json, keys, ptau::Ptau, r1cs_file::CircomR1cs, wtns, zkey::Zkey};
    match data.get(..4) {
        Some(b"zkey") => {
            if let Ok(z) = Zkey::parse(data.to_vec()) {
                let again = Zkey::parse(z.to_bytes())
                    .unwrap_or_else(|e| panic!("a parsed zkey does not parse after encoding: {e}"));
                assert_eq!(again, z, "a zkey changed through its encoding");
                let _ = keys::verifying_key(&z);
                let _ = keys::constraints(&z);
            }
        }
        Some(b"r1cs") => {
            if let Ok(r) = CircomR1cs::parse(data.to_vec()) {
                let again = CircomR1cs::parse(r.to_bytes())
                    .unwrap_or_else(|e| panic!("a parsed r1cs does not parse after encoding: {e}"));
                assert_eq!(again, r, "an r1cs changed through its encoding");
            }
        }
        Some(b"wtns") => {
            if let Ok(w) = wtns::parse(data.to_vec()) {
                let again = wtns::parse(wtns::to_bytes(&w))
                    .unwrap_or_else(|e| panic!("a parsed wtns does not parse after encoding: {e}"));
                assert_eq!(again, w, "a wtns changed through its encoding");
            }
        }
        Some(b"ptau") => {
            if let Ok(p) = Ptau::parse(data.to_vec()) {
                let bytes = p.to_bytes();
                let again = Ptau::parse(bytes.clone())
                    .unwrap_or_else(|e| panic!("a parsed ptau does not parse after encoding: {e}"));
                assert_eq!(
                    again.to_bytes(),
                    bytes,
                    "a ptau changed through its encoding"
                );
            }
        }
        _ => {
            let text = String::from_utf8_lossy(data);
            let _ = json::read_proof(&text);
            let _ = json::read_public(&text);
            let _ = json::read_vk(&text);
        }
    }
}

/// Sealed batch data from IPFS, as a committee member reads it: parsed (its bytes must
/// read back the same), then opened with a member's key of a fixed committee.
pub fn sealed_batch(data: &[u8]) {
    use pulse_dac::{Committee, Member, MemberKey, Sealed, open};
    static FIXTURE: OnceLock<(Committee, MemberKey)> = OnceLock::new();
    let Ok(s) = Sealed::parse(data) else {
        return;
    };
    assert_eq!(
        s.to_bytes(),
        data,
        "sealed data changed through its encoding"
    );
    let (committee, key) = FIXTURE.get_or_init(|| {
        let key = MemberKey::from_bytes("st-mary", [7; 32]);
        let committee = Committee::new(
            1,
            vec![Member {
                name: "st-mary".into(),
                x25519: key.public_hex(),
                address: format!("0x{}", "11".repeat(20)),
            }],
        )
        .expect("the fixture committee");
        (committee, key)
    });
    let _ = open(data, s.batch, committee, key);
}

/// A worker registry entry as the coordinator and `pulse worker check` read it.
pub fn worker_info(data: &[u8]) {
    if let Ok(w) = decode::<WorkerInfo>(data) {
        round_trips(&w);
    }
}

/// A batch's public data as a rebuild or a follower reads it from IPFS: decoded, its own
/// encoding read back, checked against the chunks L1 would hold for it, and replayed onto a
/// small populated state. An `Err` anywhere is fine; a panic or an overflow is a finding.
pub fn batch_data(data: &[u8]) {
    let Ok(d) = BatchData::from_json(data) else {
        return;
    };
    let again = serde_json::to_vec(&d).expect("batch data encodes");
    assert_eq!(
        BatchData::from_json(&again).expect("its own encoding reads back"),
        d,
        "batch data changed through its encoding"
    );
    // L1's view as an honest operator would have committed it: the check passes unless a
    // chunk is empty or states a commitment its slots do not make.
    let l1: Vec<ChunkInputs> = d
        .chunks
        .iter()
        .map(|c| ChunkInputs {
            root_before: c.root_before,
            root_after: c.root_after,
            commitment: c.commitment,
        })
        .collect();
    let checked = check_data(d.batch, &d, &l1);
    let consistent = d
        .chunks
        .iter()
        .all(|c| !c.slots.is_empty() && c.computed_commitment(d.timestamp) == c.commitment);
    assert_eq!(checked.is_ok(), consistent, "check_data: {checked:?}");
    // Replayed onto the populated state (accounts, a record, a grant), then rolled back.
    let f = fixtures::state();
    let Ok(mut batch) = f.state.begin(d.timestamp, &f.deployment) else {
        return;
    };
    for c in &d.chunks {
        for s in &c.slots {
            let _ = batch.replay(&s.to_public());
        }
    }
    let _ = batch.rollback();
}

/// A proof artifact's JSON, checked as the coordinator checks a worker's proof.
pub fn proof(data: &[u8]) {
    check_proof(&String::from_utf8_lossy(data));
}

/// The folder the `keys` target writes key files into: in memory where the system has it.
fn key_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("pulse-fuzz-keys-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    })
}

/// A key folder as a worker or the coordinator loads it (an input that starts with the
/// magic bytes of `constraints.r1cs` is that file instead): the input is cut into the
/// verifying key and the proving key (and, when its first byte says so, the manifest's
/// text); otherwise the manifest is the fixture's with the hashes of the fuzzed files, so
/// that loading gets past the hash checks to the deserialisation.
pub fn keys(data: &[u8]) {
    if data.starts_with(pulse_circuits::r1cs::MAGIC) {
        return constraints_file(data);
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixtures::keys();
    let (manifest_text, rest) = if mode & 1 == 1 && rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        (Some(&rest[2..2 + n]), &rest[2 + n..])
    } else {
        (None, rest)
    };
    let cut = usize::from(mode >> 1).min(rest.len());
    let cut = if mode & 2 == 2 { rest.len() - cut } else { cut };
    let (vk, pk) = rest.split_at(cut);
    let dir = key_dir();
    let manifest = match manifest_text {
        Some(t) => t.to_vec(),
        None => {
            let mut m = f.keys.manifest.clone();
            // The constraint matrices have their own inputs (above).
            m.constraints_hash = None;
            m.vk_hash = Hash32::digest(vk);
            m.pk_hash = Hash32::digest(pk);
            serde_json::to_vec(&m).unwrap_or_default()
        }
    };
    let written = std::fs::write(dir.join(MANIFEST_FILE), manifest)
        .and_then(|()| std::fs::write(dir.join(VERIFYING_KEY_FILE), vk))
        .and_then(|()| std::fs::write(dir.join(PROVING_KEY_FILE), pk));
    if written.is_err() {
        return;
    }
    let _ = KeyArtifacts::load(dir);
}

/// A key directory's `constraints.r1cs`, as a worker reads it from its key cache: refused
/// with an error, or read into matrices whose encoding is the input again (the format has
/// one encoding per matrix set), and whose rows evaluate without a panic. Part of the
/// `keys` target: inputs that start with the file's magic bytes come here.
fn constraints_file(data: &[u8]) {
    let Ok(r) = R1cs::from_bytes(data) else {
        return;
    };
    assert_eq!(r.to_bytes(), data, "an r1cs file read back differently");
    // The variable count is a u32 the file declares (a worker refuses one that differs from
    // its key's): no witness that long is built here past 2^16 variables.
    if r.num_variables() > 1 << 16 {
        return;
    }
    let z: Vec<Fr> = (0..r.num_variables() as u64).map(Fr::from).collect();
    for i in 0..r.num_constraints().min(64) {
        for which in [Which::A, Which::B, Which::C] {
            assert!(
                r.evaluate_row(which, i, &z).is_some(),
                "row {i} names a missing variable"
            );
        }
    }
}

/// A client key file's text, as `pulse` reads `--key FILE`.
pub fn key_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(kf) = KeyFile::from_json(&text) {
        let again = KeyFile::from_json(&kf.to_json())
            .unwrap_or_else(|e| panic!("a parsed key file does not parse after encoding: {e}"));
        assert_eq!(again.account(), kf.account());
        assert_eq!(
            again.private_key().public_key(),
            kf.private_key().public_key()
        );
    }
}

/// A record envelope fetched from IPFS (opened with its owner's key) or a key share from the
/// share bucket (opened against the fixture record), the first byte choosing which.
pub fn envelope(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let f = fixtures::record();
    if which & 1 == 0 {
        if let Ok(env) = RecordEnvelope::from_json(rest) {
            let again = RecordEnvelope::from_json(&env.to_json())
                .unwrap_or_else(|e| panic!("a parsed envelope does not parse after encoding: {e}"));
            assert_eq!(again.to_json(), env.to_json());
            let _ = open_record(&env, f.account, &f.key);
        }
    } else if let Ok(share) = KeyShare::from_json(rest) {
        let _ = KeyShare::from_json(&share.to_json())
            .unwrap_or_else(|e| panic!("a parsed key share does not parse after encoding: {e}"));
        let _ = open_with_share(&f.envelope, &share, &f.key);
    }
}

/// An answer of the IPFS node's RPC API, the first byte choosing the endpoint.
pub fn ipfs_answer(data: &[u8]) {
    static CID: OnceLock<cid::Cid> = OnceLock::new();
    let cid = CID.get_or_init(|| pulse_ipfs::raw_cid_of(b"a test record"));
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    pulse_ipfs::fuzzing::read_answer(which, cid, rest);
}

/// A request line's path and query to the coordinator's HTTP API, answered by its router.
pub fn http_api(data: &[u8]) {
    let f = fixtures::api();
    let text = String::from_utf8_lossy(data);
    // `AUTHORIZATION\nPATH` sends the first line as the signed-lookup header.
    let (auth, path) = match text.split_once('\n') {
        Some((a, p)) => (Some(a), p),
        None => (None, text.as_ref()),
    };
    let mut builder = Request::get(format!("/{path}"));
    if let Some(a) = auth {
        builder = builder.header("authorization", a);
    }
    let Ok(request) = builder.body(Body::empty()) else {
        return;
    };
    let router = f.router.clone();
    f.runtime.block_on(async move {
        let Ok(response) = router.oneshot(request).await;
        let _ = axum::body::to_bytes(response.into_body(), 1 << 20).await;
    });
}

/// A NATS credentials file's text, as every component reads `--nats-credentials`.
pub fn credentials(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = pulse_access::Credentials::from_json(&text, "fuzz.json");
    // No error quotes the seed: with the seed field's value replaced by a marker that no
    // message contains, the error (if any) must not contain the marker.
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    if !obj.contains_key("nkey_seed") {
        return;
    }
    let marker = "SUSEEDMARKERSEEDMARKER";
    obj.insert("nkey_seed".into(), marker.into());
    if let Err(e) = pulse_access::Credentials::from_json(&value.to_string(), "fuzz.json") {
        assert!(
            !e.to_string().contains(marker),
            "a credentials error quotes the seed: {e}"
        );
    }
}

/// JSON built from the protocol's keys and words, read by the decoder `input.kind` names.
pub fn structured(input: &Structured) {
    let bytes = input.bytes();
    match input.kind % 9 {
        0 => tx_json(&bytes),
        1 => job(&with_version(&bytes)),
        2 => job_result(&with_version(&bytes)),
        3 => receipt(&with_version(&bytes)),
        4 => worker_info(&with_version(&bytes)),
        5 => proof(&bytes),
        6 => key_file(&bytes),
        7 => envelope(&[&[0u8][..], &bytes].concat()),
        _ => credentials(&bytes),
    }
}

/// Messages start with `{"v":1,`: put it in front of an object so the decoder reads on.
fn with_version(bytes: &[u8]) -> Vec<u8> {
    match bytes.split_first() {
        Some((b'{', rest)) if rest.first() != Some(&b'}') => [&b"{\"v\":1,"[..], rest].concat(),
        _ => bytes.to_vec(),
    }
}

/// Counts over the sequences of this process, printed every so often for the long run's
/// report.
static TOTAL: Mutex<Option<Report>> = Mutex::new(None);

/// One transaction sequence, native rules against the circuit. `PULSE_FUZZ_WEAKEN=grant_expiry`
/// switches the circuit's grant-expiry check off, to show the target catches it.
pub fn differential(data: &[u8]) {
    static WEAKEN: OnceLock<bool> = OnceLock::new();
    if *WEAKEN.get_or_init(|| std::env::var("PULSE_FUZZ_WEAKEN").is_ok_and(|v| v == "grant_expiry"))
    {
        weaken_for_tests(Some(Weakening::GrantExpiry));
    }
    match differential::run(data) {
        Ok(report) => {
            let Ok(mut total) = TOTAL.lock() else { return };
            let t = total.get_or_insert_with(Report::default);
            t.add(&report);
            if t.sequences.is_power_of_two() || t.sequences % 5000 == 0 {
                eprintln!("differential: {t}");
                eprintln!("differential: refused {:?}", t.refused);
                eprintln!(
                    "differential: forced and refused by the circuit {:?}",
                    t.forced_refused
                );
                eprintln!(
                    "differential: policy refusals the circuit accepts {:?}",
                    t.policy_accepted
                );
            }
        }
        Err(finding) => panic!("native rules and circuit disagree: {finding}"),
    }
}

/// The coordinator's sequencing journal as a coordinator taking over reads it from
/// JetStream: one entry per line, each decoded (its own encoding must read back equal),
/// then folded into batches. When the fold accepts the entries, the batches come in order,
/// every one but the last is sealed, and every transaction entry lands in exactly one batch.
pub fn journal(data: &[u8]) {
    use pulse_coordinator::journal::{self, Entry};
    let mut entries = Vec::new();
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        let Ok(e) = journal::decode(i as u64, line) else {
            return;
        };
        let again = serde_json::to_vec(&e).expect("an entry encodes");
        assert_eq!(
            journal::decode(0, &again).expect("its own encoding reads back"),
            e,
            "an entry changed through its encoding"
        );
        entries.push(e);
    }
    let tx_entries = entries
        .iter()
        .filter(|e| matches!(e, Entry::Tx { .. }))
        .count();
    let Ok(batches) = journal::fold(entries) else {
        return;
    };
    let last = batches.keys().next_back().copied();
    for (n, b) in &batches {
        assert!(
            b.sealed || Some(*n) == last,
            "batch {n} is followed by another but not sealed"
        );
    }
    let folded: usize = batches.values().map(|b| b.txs.len()).sum();
    assert_eq!(
        folded, tx_entries,
        "a transaction entry was lost or doubled"
    );
}
