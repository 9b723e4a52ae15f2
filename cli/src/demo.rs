//! `pulse demo`: the statement end to end, in one process. A registrar, doctors and
//! patients submit transactions of every kind through their JSON wire form (plus invalid
//! ones, refused with their reason); the sequencer applies them to a state on disk, seals
//! chunks, proves each chunk with Groth16 and verifies the proofs, then checks a record's
//! Merkle proof the way a light client would.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ark_bn254::Fr;
use cid::Cid;
use pulse_circuits::artifacts::{self, CircuitParams, KeyArtifacts};
use pulse_circuits::circuit::ChunkCircuit;
use pulse_circuits::deployment::{Deployment, DeploymentId};
use pulse_circuits::eddsa::PrivateKey;
use pulse_circuits::state::{ApplyError, State, TreeKind};
use pulse_circuits::tx::{
    Permissions, Role, Scope, SignedTransaction, Transaction, TxBody, fr_to_decimal,
};
use rand::SeedableRng;
use serde::Serialize;

/// Flags of `pulse demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Transaction slots per chunk.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    slots: u64,
    /// Tree depth.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(4..=32))]
    depth: u64,
    /// Number of patients (each makes about five transactions).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=200))]
    patients: u64,
    /// Keys from `pulse setup` for the same --slots and --depth; without it the demo runs
    /// its own (insecure, seeded) setup.
    #[arg(long)]
    keys: Option<PathBuf>,
    /// State directory (default: a temporary one).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Print a JSON summary instead of the log.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Summary {
    submitted: usize,
    accepted: usize,
    rejected: usize,
    chunks: usize,
    proofs_verified: usize,
    constraints: usize,
    setup_s: f64,
    prove_s_per_chunk: Vec<f64>,
    state_root: String,
    light_client_proof_ok: bool,
}

const NOW: u64 = 1_800_000_000;

struct Out {
    json: bool,
}

impl Out {
    #[allow(clippy::print_stdout)]
    fn line(&self, s: impl AsRef<str>) {
        if !self.json {
            println!("{}", s.as_ref());
        }
    }
}

/// The deployment the demo signs for: the one `pulse dev up` gets on its fresh anvil (the
/// first contract of anvil's first dev account), so the demo's hashes are a local
/// cluster's.
fn local_deployment() -> Result<Deployment> {
    let owner: alloy::signers::local::PrivateKeySigner =
        pulse_testkit::DEV_ACCOUNTS[0].private_key.parse()?;
    Ok(pulse_l1::deployment(
        pulse_testkit::ANVIL_CHAIN_ID,
        owner.address().create(0),
    ))
}

/// The wire items of the demo: JSON text, as clients would publish it, signed for
/// `deployment`.
fn workload(
    patients: u64,
    registrar: &PrivateKey,
    deployment: &Deployment,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> Result<Vec<(String, String)>> {
    let sign_for = |d: DeploymentId, k: &PrivateKey, signer, nonce, body| -> Result<String> {
        Ok(Transaction {
            signer,
            nonce,
            body,
        }
        .sign(k, d)?
        .to_json())
    };
    let sign =
        |k: &PrivateKey, signer, nonce, body| sign_for(deployment.id, k, signer, nonce, body);
    let doctor = PrivateKey::random(rng);
    let cid = Cid::from_str("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")?;
    const REGISTRAR: u64 = 1;
    const DOCTOR: u64 = 2;
    let mut items = vec![(
        "registrar registers a doctor".to_string(),
        sign(
            registrar,
            REGISTRAR,
            0,
            TxBody::Register {
                public_key: doctor.public_key(),
                role: Role::Doctor,
            },
        )?,
    )];
    let mut doctor_nonce = 0;
    let mut keys = Vec::new();
    for i in 0..patients {
        let k = PrivateKey::random(rng);
        let id = 3 + i;
        items.push((
            format!("patient {id} registers itself"),
            sign(
                &k,
                0,
                0,
                TxBody::Register {
                    public_key: k.public_key(),
                    role: Role::Patient,
                },
            )?,
        ));
        items.push((
            format!("patient {id} adds its own record"),
            sign(
                &k,
                id,
                1,
                TxBody::AddRecord {
                    patient: id,
                    cid,
                    metadata_hash: Fr::from(i + 1),
                    grant: None,
                },
            )?,
        ));
        items.push((
            format!("patient {id} grants the doctor read+write"),
            sign(
                &k,
                id,
                2,
                TxBody::Grant {
                    grantee: DOCTOR,
                    scope: Scope::All,
                    permissions: Permissions {
                        read: true,
                        write: true,
                    },
                    expires_at: NOW + 3600,
                },
            )?,
        ));
        keys.push((id, k));
    }
    for (n, (id, _)) in keys.iter().enumerate() {
        let grant = n as u64 + 1;
        let record = n as u64 + 1;
        items.push((
            format!("doctor uploads a record for patient {id}"),
            sign(
                &doctor,
                DOCTOR,
                doctor_nonce,
                TxBody::AddRecord {
                    patient: *id,
                    cid,
                    metadata_hash: Fr::from(100 + n as u64),
                    grant: Some(grant),
                },
            )?,
        ));
        doctor_nonce += 1;
        items.push((
            format!("doctor logs reading record {record}"),
            sign(
                &doctor,
                DOCTOR,
                doctor_nonce,
                TxBody::AccessLog {
                    record,
                    grant,
                    purpose: Fr::from(1u64),
                },
            )?,
        ));
        doctor_nonce += 1;
    }
    let (first, first_key) = &keys[0];
    items.push((
        format!("patient {first} revokes grant 1"),
        sign(first_key, *first, 3, TxBody::Revoke { grant: 1 })?,
    ));
    // Invalid ones.
    items.push((
        "doctor reads under the revoked grant".into(),
        sign(
            &doctor,
            DOCTOR,
            doctor_nonce,
            TxBody::AccessLog {
                record: 1,
                grant: 1,
                purpose: Fr::from(1u64),
            },
        )?,
    ));
    items.push((
        format!("patient {first} replays nonce 3"),
        sign(first_key, *first, 3, TxBody::Revoke { grant: 1 })?,
    ));
    items.push((
        "a grant signed with the wrong key".into(),
        sign(
            &doctor,
            *first,
            4,
            TxBody::Grant {
                grantee: DOCTOR,
                scope: Scope::All,
                permissions: Permissions {
                    read: true,
                    write: false,
                },
                expires_at: NOW + 60,
            },
        )?,
    ));
    items.push((
        "the doctor tries to grant".into(),
        sign(
            &doctor,
            DOCTOR,
            doctor_nonce,
            TxBody::Grant {
                grantee: 3,
                scope: Scope::All,
                permissions: Permissions {
                    read: true,
                    write: false,
                },
                expires_at: NOW + 60,
            },
        )?,
    ));
    let stranger = PrivateKey::random(rng);
    items.push((
        "a registration signed for another chain".into(),
        sign_for(
            pulse_l1::deployment(deployment.chain_id + 1, deployment.contract.into()).id,
            &stranger,
            0,
            0,
            TxBody::Register {
                public_key: stranger.public_key(),
                role: Role::Patient,
            },
        )?,
    ));
    items.push((
        "malformed JSON".into(),
        "{\"version\": 1, \"type\": \"grant\", \"signer\": 3".into(),
    ));
    Ok(items)
}

/// Run the demo.
///
/// # Errors
/// When setup, storage or proving fails.
#[allow(clippy::print_stdout)]
pub fn run(args: DemoArgs) -> Result<()> {
    let out = Out { json: args.json };
    let params = CircuitParams::new(args.slots as usize, args.depth as usize);
    let tmp = tempfile::tempdir().context("creating a temporary state directory")?;
    let dir = args
        .state
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("state.redb");
    if path.exists() {
        bail!(
            "{} already holds a state; the demo starts from genesis, give it a fresh --state",
            dir.display()
        );
    }
    let state = State::open(&path, params.depth).context("opening the state")?;
    let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
    let registrar = PrivateKey::random(&mut rng);
    let genesis = state
        .init_genesis(&[registrar.public_key()])
        .context("writing genesis")?;
    out.line(format!(
        "genesis state root {}",
        fr_to_decimal(&genesis.state_root())
    ));

    let deployment = local_deployment()?;
    out.line(format!("signing for {deployment}"));
    let items = workload(args.patients, &registrar, &deployment, &mut rng)?;
    let mut batch = state.begin(NOW, &deployment).context("starting a batch")?;
    let (mut accepted, mut rejected) = (0, 0);
    for (what, json) in &items {
        let result = SignedTransaction::from_json(json)
            .map_err(ApplyError::Rejected)
            .and_then(|stx| {
                batch
                    .apply(&stx)
                    .map(|a| (a.hash, a.new_account, a.new_record, a.new_grant))
            });
        match result {
            Ok((hash, acc, rec, grant)) => {
                accepted += 1;
                let ids = [("account", acc), ("record", rec), ("grant", grant)]
                    .iter()
                    .filter_map(|(k, v)| v.map(|v| format!(" {k} {v}")))
                    .collect::<String>();
                out.line(format!(
                    "  accepted  {what:<44} {}{ids}",
                    &hash.to_string()[..12]
                ));
            }
            Err(ApplyError::Rejected(e)) => {
                rejected += 1;
                out.line(format!("  rejected  {what:<44} [{}] {e}", e.reason()));
            }
            Err(e) => return Err(e).context("applying a transaction"),
        }
    }
    let chunks = batch.chunks(genesis, params.slots);
    out.line(format!(
        "{accepted} accepted, {rejected} rejected; {} chunks of {} slots at depth {}",
        chunks.len(),
        params.slots,
        params.depth
    ));

    let t = Instant::now();
    let keys = match &args.keys {
        Some(dir) => {
            let k = KeyArtifacts::load(dir)
                .with_context(|| format!("loading keys from {}", dir.display()))?;
            if k.manifest.params != params {
                bail!(
                    "the keys in {} are for {} slots at depth {}, not {} at depth {}; run `pulse setup` for these parameters",
                    dir.display(),
                    k.manifest.params.slots,
                    k.manifest.params.depth,
                    params.slots,
                    params.depth
                );
            }
            k
        }
        None => {
            out.line("running a Groth16 setup (insecure, for the demo only)...");
            artifacts::setup(ChunkCircuit::blank(params), params, &mut rng).context("setup")?
        }
    };
    let setup_s = t.elapsed().as_secs_f64();
    out.line(format!(
        "keys ready in {setup_s:.1} s: {} constraints, vk hash {}",
        keys.manifest.constraints, keys.manifest.vk_hash
    ));
    let verifier = keys.verifier();
    let mut times = Vec::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let t = Instant::now();
        let proof = artifacts::prove_reference(
            &keys,
            ChunkCircuit {
                params,
                witness: chunk,
            },
            &mut rng,
        )
        .with_context(|| format!("proving chunk {i}"))?;
        verifier
            .verify(&proof)
            .with_context(|| format!("verifying chunk {i}"))?;
        let s = t.elapsed().as_secs_f64();
        times.push(s);
        out.line(format!(
            "  chunk {i}: proved and verified in {s:.2} s, root {} -> {}",
            &fr_to_decimal(&proof.public_inputs[0])[..12],
            &fr_to_decimal(&proof.public_inputs[1])[..12]
        ));
    }
    let roots = batch.commit().context("committing the batch")?;
    let (leaf, proof, r) = state
        .proof(TreeKind::Records, 1)
        .context("reading a proof")?;
    let ok = r == roots && proof.verify(params.depth, r.records, leaf);
    out.line(format!(
        "committed state root {}",
        fr_to_decimal(&roots.state_root())
    ));
    out.line(format!(
        "record 1's Merkle proof against the committed root: {}",
        if ok { "valid" } else { "INVALID" }
    ));
    if args.json {
        let s = Summary {
            submitted: items.len(),
            accepted,
            rejected,
            chunks: times.len(),
            proofs_verified: times.len(),
            constraints: keys.manifest.constraints,
            setup_s,
            prove_s_per_chunk: times,
            state_root: fr_to_decimal(&roots.state_root()),
            light_client_proof_ok: ok,
        };
        println!("{}", serde_json::to_string_pretty(&s)?);
    }
    if !ok {
        bail!("the light-client proof did not verify");
    }
    Ok(())
}
