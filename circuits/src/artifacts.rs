//! Groth16 keys and proofs with their identity.
//!
//! Pulse proves its statement with Groth16 (J. Groth, "On the Size of Pairing-based
//! Non-interactive Arguments", EUROCRYPT 2016) over BN254, as implemented by `ark-groth16`.
//! This module gives the keys and proofs an identity, so that a proof can never silently be
//! checked against the wrong key or the wrong circuit:
//!
//! - [`CircuitParams`] are the parameters that determine the circuit (batch size, tree depth,
//!   circuit version); [`CircuitParams::id`] hashes their canonical encoding into a
//!   [`CircuitId`].
//! - [`vk_hash`] is the SHA-256 of a verifying key's canonical compressed encoding.
//! - [`KeyArtifacts`] is the output of [`setup`]: the proving key and a [`Manifest`] naming
//!   the circuit and the hashes of both keys. On disk it is a directory (see
//!   [`KeyArtifacts::write`]); [`KeyArtifacts::load`] recomputes every hash and refuses a
//!   directory that does not match its manifest.
//! - [`ProofArtifact`] is a proof together with its public inputs, circuit id and the hash of
//!   the verifying key it was made for; [`ProofArtifact::verify`] checks that identity before
//!   running the pairing check.
//!
//! [`prove_reference`] is the reference prover: `ark-groth16`'s own, unmodified prover.
//! Faster provers must produce proofs that this module's [`ProofArtifact::verify`] accepts.

use std::cell::Cell;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use ark_bn254::{Bn254, Fr};
use ark_ff::UniformRand;
use ark_groth16::{Groth16, Proof, ProvingKey, VerifyingKey};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef, OptimizationGoal,
    R1CS_PREDICATE_LABEL, SynthesisError, SynthesisMode,
};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use ark_snark::SNARK;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::r1cs::{R1cs, R1csError};

/// The version of the Pulse circuit; part of every [`CircuitId`]. Bump it whenever the
/// constraints change for the same [`CircuitParams`], so that old keys are refused.
/// Version 2 added the deployment id as the fourth public input and the last input of
/// every signed message.
pub const CIRCUIT_VERSION: u32 = 2;

/// File name of the proving key inside a key directory.
pub const PROVING_KEY_FILE: &str = "proving.key";
/// File name of the verifying key inside a key directory.
pub const VERIFYING_KEY_FILE: &str = "verifying.key";
/// File name of the manifest inside a key directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the constraint matrices inside a key directory (see [`crate::r1cs`]).
pub const CONSTRAINTS_FILE: &str = "constraints.r1cs";

/// What [`Manifest::created_by`] says for artifacts written by this build.
pub const CREATED_BY: &str = concat!("pulse ", env!("CARGO_PKG_VERSION"));

/// Domain-separation tag that starts the canonical encoding of [`CircuitParams`].
const PARAMS_TAG: &[u8] = b"pulse/circuit-params";

/// Length in bytes of a compressed BN254 Groth16 proof (G1 + G2 + G1).
pub const PROOF_COMPRESSED_LEN: usize = 32 + 64 + 32;

/// What to tell the user when a key directory cannot be trusted.
const RERUN_SETUP: &str = "re-run `pulse setup` to regenerate the key directory";

// ---------------------------------------------------------------------------------------------
// Hashes and identities
// ---------------------------------------------------------------------------------------------

/// A SHA-256 digest, shown and serialized as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// SHA-256 of `bytes`.
    pub fn digest(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The digest as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.to_hex())
    }
}

impl FromStr for Hash32 {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        hash32_from_hex(s).map(Self)
    }
}

impl Serialize for Hash32 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The identity of a circuit: SHA-256 of the canonical encoding of its [`CircuitParams`].
///
/// Shown and serialized as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CircuitId(pub Hash32);

impl fmt::Display for CircuitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for CircuitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CircuitId({})", self.0.to_hex())
    }
}

impl FromStr for CircuitId {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// A hex string that is not 32 bytes of hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The string has the wrong number of characters.
    #[error("expected 64 hex digits, got {0} characters")]
    Length(usize),
    /// The string has a character that is not a hex digit.
    #[error("not a hex string: {0}")]
    Digit(String),
}

/// Lowercase hex of `bytes`, without a `0x` prefix.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Parses exactly 64 hex digits (either case, no `0x` prefix) into 32 bytes.
pub fn hash32_from_hex(s: &str) -> Result<[u8; 32], HexError> {
    if s.len() != 64 {
        return Err(HexError::Length(s.len()));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| HexError::Digit(e.to_string()))?;
    Ok(out)
}

/// The parameters that determine the Pulse circuit, and so its keys.
///
/// Two setups with equal parameters produce keys for the same constraint system (but
/// different keys: the toxic waste is random); [`CircuitParams::id`] names that system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitParams {
    /// Number of transaction slots in one chunk.
    pub slots: usize,
    /// Depth of the state trees.
    pub depth: usize,
    /// Circuit version, [`CIRCUIT_VERSION`] for circuits built by this code.
    pub version: u32,
}

impl CircuitParams {
    /// Parameters of the current circuit version.
    pub fn new(slots: usize, depth: usize) -> Self {
        Self {
            slots,
            depth,
            version: CIRCUIT_VERSION,
        }
    }

    /// The canonical encoding that [`CircuitParams::id`] hashes:
    ///
    /// ```text
    /// "pulse/circuit-params"   20 ASCII bytes, a domain-separation tag
    /// 0x00                     1 byte, ends the tag
    /// version                  u32, 4 bytes big-endian
    /// slots                    u64, 8 bytes big-endian
    /// depth                    u64, 8 bytes big-endian
    /// ```
    ///
    /// 41 bytes in all. `usize` fields are widened to `u64`, so the encoding (and the id)
    /// does not depend on the platform. A new field is appended after `depth`, and changes
    /// every id, which is intended: keys made for other parameters must be refused.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PARAMS_TAG.len() + 1 + 4 + 8 + 8);
        out.extend_from_slice(PARAMS_TAG);
        out.push(0);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&(self.slots as u64).to_be_bytes());
        out.extend_from_slice(&(self.depth as u64).to_be_bytes());
        out
    }

    /// The circuit's identity: SHA-256 of [`CircuitParams::canonical_bytes`].
    pub fn id(&self) -> CircuitId {
        CircuitId(Hash32::digest(&self.canonical_bytes()))
    }
}

/// SHA-256 of the verifying key's canonical compressed `ark-serialize` encoding (the exact
/// bytes of a `verifying.key` file).
pub fn vk_hash(vk: &VerifyingKey<Bn254>) -> [u8; 32] {
    let mut w = HashingWriter::new(io::sink());
    // Writing into a sink cannot fail, and a verifying key always serializes.
    let _ = vk.serialize_compressed(&mut w);
    w.finish().0
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Everything that can go wrong with keys and proofs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// A file of a key directory could not be read or written.
    #[error("{}: {source} ({hint})", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// A file of a key directory does not hash to what the manifest says.
    #[error(
        "{}: {what} has SHA-256 {found} but {MANIFEST_FILE} expects {expected}; \
         the key directory is corrupt or was modified: {RERUN_SETUP}",
        path.display()
    )]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// What was hashed ("file contents", "embedded verifying key", ...).
        what: &'static str,
        /// The hash the manifest records.
        expected: Hash32,
        /// The hash of what is on disk.
        found: Hash32,
    },
    /// A file of a key directory is not a valid encoding, or disagrees with the manifest.
    #[error("{}: {reason}; {RERUN_SETUP}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The proof was made for another verifying key than the one it is checked against.
    #[error(
        "the proof was made for verifying key {found}, but the verifier holds {expected}; \
         prove again with the current keys or verify with the keys the proof names"
    )]
    VkMismatch {
        /// Hash of the verifying key the verifier holds.
        expected: Hash32,
        /// Hash of the verifying key the proof names.
        found: Hash32,
    },
    /// The proof is for another circuit than the one it is checked against.
    #[error("the proof is for circuit {found}, but the verifier expects circuit {expected}")]
    CircuitMismatch {
        /// The circuit the verifier expects.
        expected: CircuitId,
        /// The circuit the proof names.
        found: CircuitId,
    },
    /// The number of public inputs does not match the verifying key.
    #[error("the verifying key takes {expected} public inputs, got {found}")]
    PublicInputCount {
        /// What the verifying key takes.
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// The proof is well formed and names the right key, but the pairing check fails.
    #[error("the proof does not verify against its public inputs")]
    BadProof,
    /// A field of a serialized proof artifact is malformed.
    #[error("malformed proof artifact: `{field}`: {reason}")]
    Malformed {
        /// The field (`proof`, `public_inputs[3]`, ...; `document` for the JSON as a whole).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The witness does not satisfy the circuit.
    #[error("the witness does not satisfy the circuit (first failing constraint: {})",
        constraint.as_deref().unwrap_or("unknown"))]
    Unsatisfied {
        /// The name of the first unsatisfied constraint, where known.
        constraint: Option<String>,
    },
    /// The circuit being proved does not have the shape the proving key was made for.
    #[error(
        "the circuit does not match the proving key: {what}: key has {key}, circuit has {circuit}"
    )]
    ShapeMismatch {
        /// What differs.
        what: &'static str,
        /// The proving key's value.
        key: usize,
        /// The circuit's value.
        circuit: usize,
    },
    /// Constraint synthesis, setup or proving failed inside the proof system.
    #[error("proof system error: {0}")]
    Synthesis(#[from] SynthesisError),
    /// The circuit's constraint matrices could not be taken at setup.
    #[error("taking the constraint matrices at setup: {0}")]
    Constraints(R1csError),
}

// ---------------------------------------------------------------------------------------------
// Progress
// ---------------------------------------------------------------------------------------------

/// A stage of a long-running operation, reported to a progress callback (`&dyn Fn(Stage)`)
/// when the stage starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Generating the constraint system from the circuit.
    Synthesizing,
    /// Computing the keys (setup).
    Setup,
    /// Computing the proof.
    Proving,
    /// Writing files.
    Writing,
    /// Reading and checking files.
    Loading,
}

impl Stage {
    /// A short lowercase label for progress displays.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Synthesizing => "synthesizing",
            Stage::Setup => "setup",
            Stage::Proving => "proving",
            Stage::Writing => "writing",
            Stage::Loading => "loading",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

fn no_progress(_: Stage) {}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// The `manifest.json` of a key directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The parameters the circuit was built with.
    pub params: CircuitParams,
    /// `params.id()`, recorded so a reader can see it; checked on load.
    pub circuit_id: CircuitId,
    /// [`vk_hash`] of the verifying key: SHA-256 of `verifying.key`.
    pub vk_hash: Hash32,
    /// SHA-256 of `proving.key`.
    pub pk_hash: Hash32,
    /// Number of R1CS constraints.
    pub constraints: usize,
    /// Number of public inputs (not counting the constant one).
    pub public_inputs: usize,
    /// The program that made the keys, `pulse x.y.z`.
    pub created_by: String,
    /// SHA-256 of `constraints.r1cs`, the circuit's constraint matrices ([`crate::r1cs`]),
    /// for key directories that have one (made by `pulse setup` since the file was added;
    /// older directories load without it, and their provers build the matrices on their
    /// first proof).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints_hash: Option<Hash32>,
    /// For keys from a multi-party ceremony (`pulse ceremony finalize`), its transcript;
    /// absent for a single-party `pulse setup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceremony: Option<CeremonyRecord>,
}

/// What a key directory records of the ceremony its keys came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CeremonyRecord {
    /// BLAKE2b-512 (hex) of the circuit hash and every contribution's public key: the
    /// whole transcript, as the last contributor's proof of knowledge binds it.
    pub transcript_hash: String,
    /// snarkjs's circuit hash of the initial key (hex).
    pub circuit_hash: String,
    /// The contributions, oldest first.
    pub contributions: Vec<ContributionRecord>,
    /// SHA-256 of the powers-of-tau file the ceremony started from.
    pub ptau_sha256: Hash32,
}

/// One contribution, as its contributor published it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContributionRecord {
    /// The contributor's name.
    pub name: String,
    /// The contribution hash (BLAKE2b-512 of its public key, hex), as snarkjs prints it.
    pub hash: String,
    /// Whether it was a public random beacon.
    pub beacon: bool,
}

/// Groth16 keys for one circuit, with their manifest.
///
/// On disk (see [`KeyArtifacts::write`]) a key directory holds:
///
/// - `proving.key`: the proving key, canonical **uncompressed** `ark-serialize` encoding.
///   Uncompressed because it is read far more often than written and it is large (millions
///   of points for the chunk circuit): decompressing costs a square root per point, and
///   validating costs a subgroup check per point, which together make loading take minutes
///   instead of the time to read the file. Loading therefore skips both and relies on the
///   file's SHA-256 matching the manifest instead (measured on 2 cores, release build, a
///   65,537-constraint key: 0.14 s for the 29 MB uncompressed file, hashed; 14.2 s for the
///   15 MB compressed one, validated; 4.9 s compressed without validation). This is sound:
///   the proving key affects only which proofs the prover can make, never what the verifier
///   accepts, and [`prove_reference`] checks every proof it makes.
/// - `verifying.key`: the verifying key, canonical **compressed** encoding (small; fully
///   validated on load). Its SHA-256 is the [`vk_hash`].
/// - `constraints.r1cs` (when the manifest names its hash): the circuit's constraint
///   matrices in the compact format of [`crate::r1cs`], for provers that take them instead
///   of synthesizing them (`pulse_prover::Prover::with_constraints`). Checked against its
///   hash and the key's sizes on load.
/// - `manifest.json`: the [`Manifest`], written last, so a directory whose writing was
///   interrupted has no manifest and is refused.
#[derive(Debug, Clone)]
pub struct KeyArtifacts {
    /// The manifest.
    pub manifest: Manifest,
    /// The proving key; `pk.vk` is the verifying key.
    pub pk: ProvingKey<Bn254>,
    /// The constraint matrices, when the keys came with them.
    pub constraints: Option<Arc<R1cs>>,
}

/// The verifier's half of a key directory: the manifest and the verifying key, without the
/// (large) proving key.
#[derive(Debug, Clone)]
pub struct VerifierArtifacts {
    /// The manifest.
    pub manifest: Manifest,
    /// The verifying key.
    pub vk: VerifyingKey<Bn254>,
}

/// The shape of a synthesized constraint system.
#[derive(Debug, Clone, Copy)]
struct Shape {
    constraints: usize,
    instance_variables: usize,
}

/// Wraps a circuit to report stages and record the constraint system's shape and matrices
/// during setup, so that the circuit is synthesized only once.
struct Observed<'a, C> {
    inner: C,
    progress: &'a dyn Fn(Stage),
    shape: &'a Cell<Option<Shape>>,
    constraints: &'a Cell<Option<Result<R1cs, R1csError>>>,
}

impl<C: ConstraintSynthesizer<Fr>> ConstraintSynthesizer<Fr> for Observed<'_, C> {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        (self.progress)(Stage::Synthesizing);
        self.inner.generate_constraints(cs.clone())?;
        // Inlining linear combinations (done by the generator after this returns) changes
        // neither the number of constraints nor the number of variables.
        self.shape.set(Some(Shape {
            constraints: cs.num_constraints(),
            instance_variables: cs.num_instance_variables(),
        }));
        // Finalising here is what the generator does next (inlining then finds nothing left
        // to inline), so the matrices taken are the ones the key is made from.
        cs.finalize();
        self.constraints.set(Some(R1cs::of_finalized(&cs)));
        (self.progress)(Stage::Setup);
        Ok(())
    }
}

/// Circuit-specific Groth16 setup: `ark-groth16`'s `circuit_specific_setup`, plus the
/// manifest. Nothing is written; see [`KeyArtifacts::write`].
///
/// The randomness is the setup's toxic waste: use a cryptographic RNG seeded from the OS
/// for real keys (a seeded RNG only for tests).
pub fn setup<C, R>(
    circuit: C,
    params: CircuitParams,
    rng: &mut R,
) -> Result<KeyArtifacts, ArtifactError>
where
    C: ConstraintSynthesizer<Fr>,
    R: RngCore + CryptoRng,
{
    setup_with_progress(circuit, params, rng, &no_progress)
}

/// [`setup`], reporting [`Stage::Synthesizing`] then [`Stage::Setup`] to `progress`.
pub fn setup_with_progress<C, R>(
    circuit: C,
    params: CircuitParams,
    rng: &mut R,
    progress: &dyn Fn(Stage),
) -> Result<KeyArtifacts, ArtifactError>
where
    C: ConstraintSynthesizer<Fr>,
    R: RngCore + CryptoRng,
{
    let shape = Cell::new(None);
    let constraints = Cell::new(None);
    let observed = Observed {
        inner: circuit,
        progress,
        shape: &shape,
        constraints: &constraints,
    };
    let (pk, _vk) = Groth16::<Bn254>::circuit_specific_setup(observed, rng)?;
    let shape = shape.get().ok_or(SynthesisError::MissingCS)?;
    let constraints = constraints
        .take()
        .ok_or(SynthesisError::MissingCS)?
        .map_err(ArtifactError::Constraints)?;
    for (what, key, circuit) in [
        ("variables", pk.a_query.len(), constraints.num_variables()),
        (
            "constraints",
            shape.constraints,
            constraints.num_constraints(),
        ),
    ] {
        if key != circuit {
            return Err(ArtifactError::ShapeMismatch { what, key, circuit });
        }
    }
    if shape.instance_variables != pk.vk.gamma_abc_g1.len() {
        return Err(ArtifactError::ShapeMismatch {
            what: "instance variables",
            key: pk.vk.gamma_abc_g1.len(),
            circuit: shape.instance_variables,
        });
    }
    KeyArtifacts::from_key(params, pk, Arc::new(constraints), None)
}

impl KeyArtifacts {
    /// Keys for `params` from a proving key made elsewhere (a ceremony), with the
    /// circuit's matrices and the ceremony's record; the manifest's hashes are computed
    /// here.
    ///
    /// # Errors
    /// [`ArtifactError::ShapeMismatch`] when the key and the matrices disagree in variables,
    /// public inputs or constraints; [`ArtifactError::Io`] if the key cannot be encoded.
    pub fn from_key(
        params: CircuitParams,
        pk: ProvingKey<Bn254>,
        constraints: Arc<R1cs>,
        ceremony: Option<CeremonyRecord>,
    ) -> Result<Self, ArtifactError> {
        for (what, key, circuit) in [
            ("variables", pk.a_query.len(), constraints.num_variables()),
            (
                "instance variables",
                pk.vk.gamma_abc_g1.len(),
                constraints.num_instance(),
            ),
        ] {
            if key != circuit {
                return Err(ArtifactError::ShapeMismatch { what, key, circuit });
            }
        }
        let public_inputs = pk.vk.gamma_abc_g1.len().saturating_sub(1);
        let pk_hash = {
            let mut w = HashingWriter::new(io::sink());
            pk.serialize_uncompressed(&mut w)
                .map_err(|e| io::Error::other(e.to_string()))
                .map_err(|source| ArtifactError::Io {
                    path: PathBuf::from(PROVING_KEY_FILE),
                    source,
                    hint: "serializing the proving key failed",
                })?;
            w.finish()
        };
        let manifest = Manifest {
            params,
            circuit_id: params.id(),
            vk_hash: Hash32(vk_hash(&pk.vk)),
            pk_hash,
            constraints: constraints.num_constraints(),
            public_inputs,
            created_by: CREATED_BY.to_string(),
            constraints_hash: Some(Hash32::digest(&constraints.to_bytes())),
            ceremony,
        };
        Ok(KeyArtifacts {
            manifest,
            pk,
            constraints: Some(constraints),
        })
    }

    /// The verifying key.
    pub fn vk(&self) -> &VerifyingKey<Bn254> {
        &self.pk.vk
    }

    /// The circuit these keys are for.
    pub fn circuit_id(&self) -> CircuitId {
        self.manifest.circuit_id
    }

    /// The verifier's half of these keys.
    pub fn verifier(&self) -> VerifierArtifacts {
        VerifierArtifacts {
            manifest: self.manifest.clone(),
            vk: self.pk.vk.clone(),
        }
    }

    /// Writes `proving.key`, `verifying.key` and `manifest.json` into `dir` (created if
    /// missing; existing files are replaced). Each file is written under a temporary name
    /// and renamed into place; the manifest goes last.
    pub fn write(&self, dir: &Path) -> Result<(), ArtifactError> {
        self.write_with_progress(dir, &no_progress)
    }

    /// [`KeyArtifacts::write`], reporting [`Stage::Writing`] to `progress`.
    pub fn write_with_progress(
        &self,
        dir: &Path,
        progress: &dyn Fn(Stage),
    ) -> Result<(), ArtifactError> {
        progress(Stage::Writing);
        fs::create_dir_all(dir).map_err(|source| ArtifactError::Io {
            path: dir.to_path_buf(),
            source,
            hint: "cannot create the key directory",
        })?;

        // Remove a stale manifest first: until the new one is in place the directory is
        // (correctly) refused.
        let manifest_path = dir.join(MANIFEST_FILE);
        match fs::remove_file(&manifest_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ArtifactError::Io {
                    path: manifest_path,
                    source,
                    hint: "cannot replace the old manifest",
                });
            }
        }

        let pk_hash = write_atomically(&dir.join(PROVING_KEY_FILE), |w| {
            self.pk.serialize_uncompressed(w)
        })?;
        if pk_hash != self.manifest.pk_hash {
            return Err(ArtifactError::HashMismatch {
                path: dir.join(PROVING_KEY_FILE),
                what: "the proving key being written",
                expected: self.manifest.pk_hash,
                found: pk_hash,
            });
        }
        let vk_hash_written = write_atomically(&dir.join(VERIFYING_KEY_FILE), |w| {
            self.pk.vk.serialize_compressed(w)
        })?;
        if vk_hash_written != self.manifest.vk_hash {
            return Err(ArtifactError::HashMismatch {
                path: dir.join(VERIFYING_KEY_FILE),
                what: "the verifying key being written",
                expected: self.manifest.vk_hash,
                found: vk_hash_written,
            });
        }
        match (&self.constraints, self.manifest.constraints_hash) {
            (Some(r1cs), Some(expected)) => {
                let bytes = r1cs.to_bytes();
                let found =
                    write_atomically(&dir.join(CONSTRAINTS_FILE), |w| Ok(w.write_all(&bytes)?))?;
                if found != expected {
                    return Err(ArtifactError::HashMismatch {
                        path: dir.join(CONSTRAINTS_FILE),
                        what: "the constraint matrices being written",
                        expected,
                        found,
                    });
                }
            }
            (None, None) => {}
            _ => {
                return Err(ArtifactError::Corrupt {
                    path: dir.join(CONSTRAINTS_FILE),
                    reason: "the manifest and the keys disagree on whether constraint matrices come with them".into(),
                });
            }
        }
        let json = serde_json::to_vec_pretty(&self.manifest).map_err(|e| ArtifactError::Io {
            path: manifest_path.clone(),
            source: io::Error::other(e),
            hint: "cannot encode the manifest",
        })?;
        write_atomically(&manifest_path, |w| {
            w.write_all(&json)?;
            w.write_all(b"\n")?;
            Ok(())
        })?;
        Ok(())
    }

    /// Loads a key directory written by [`KeyArtifacts::write`], checking that:
    /// the manifest's circuit id is its parameters' id; `verifying.key` hashes to the
    /// manifest's `vk_hash` and takes `public_inputs` inputs; `proving.key` hashes to the
    /// manifest's `pk_hash`; and the verifying key inside the proving key hashes to
    /// `vk_hash`. Any mismatch is an error naming the file and telling to re-run
    /// `pulse setup`.
    pub fn load(dir: &Path) -> Result<Self, ArtifactError> {
        Self::load_with_progress(dir, &no_progress)
    }

    /// [`KeyArtifacts::load`], reporting [`Stage::Loading`] to `progress`.
    pub fn load_with_progress(dir: &Path, progress: &dyn Fn(Stage)) -> Result<Self, ArtifactError> {
        progress(Stage::Loading);
        let VerifierArtifacts { manifest, .. } = VerifierArtifacts::load(dir)?;

        let path = dir.join(PROVING_KEY_FILE);
        let file = File::open(&path).map_err(|source| ArtifactError::Io {
            path: path.clone(),
            source,
            hint: RERUN_SETUP,
        })?;
        let mut reader = HashingReader::new(BufReader::with_capacity(1 << 20, file));
        // See `KeyArtifacts` for why the proving key is not validated point by point.
        let parsed =
            ProvingKey::<Bn254>::deserialize_with_mode(&mut reader, Compress::No, Validate::No);
        // Hash the rest of the file too: trailing bytes, or the unread part after a parse
        // error, so that a corrupted file is reported as a hash mismatch.
        let trailing =
            io::copy(&mut reader, &mut io::sink()).map_err(|source| ArtifactError::Io {
                path: path.clone(),
                source,
                hint: RERUN_SETUP,
            })?;
        let found = reader.finish();
        if found != manifest.pk_hash {
            return Err(ArtifactError::HashMismatch {
                path,
                what: "file contents",
                expected: manifest.pk_hash,
                found,
            });
        }
        let pk = parsed.map_err(|e| ArtifactError::Corrupt {
            path: path.clone(),
            reason: format!("not a proving key: {e}"),
        })?;
        if trailing != 0 {
            return Err(ArtifactError::Corrupt {
                path,
                reason: format!("{trailing} bytes after the proving key"),
            });
        }
        let embedded = Hash32(vk_hash(&pk.vk));
        if embedded != manifest.vk_hash {
            return Err(ArtifactError::HashMismatch {
                path,
                what: "the embedded verifying key",
                expected: manifest.vk_hash,
                found: embedded,
            });
        }
        let constraints = match manifest.constraints_hash {
            Some(expected) => Some(Arc::new(read_constraints(
                dir,
                expected,
                &manifest,
                pk.a_query.len(),
            )?)),
            None => None,
        };
        Ok(Self {
            manifest,
            pk,
            constraints,
        })
    }
}

/// A key directory's file, refused unless its SHA-256 is `expected` (the manifest's).
fn read_hashed(path: &Path, expected: Hash32) -> Result<Vec<u8>, ArtifactError> {
    let bytes = fs::read(path).map_err(|source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
        hint: RERUN_SETUP,
    })?;
    let found = Hash32::digest(&bytes);
    if found != expected {
        return Err(ArtifactError::HashMismatch {
            path: path.to_path_buf(),
            what: "file contents",
            expected,
            found,
        });
    }
    Ok(bytes)
}

/// Reads `constraints.r1cs` from the key directory `dir`, checking its hash against
/// `expected` (the manifest's `constraints_hash`), its format, and its sizes against the
/// manifest and the proving key (`variables`: the length of its `a_query`).
///
/// # Errors
/// [`ArtifactError::Io`], [`ArtifactError::HashMismatch`], [`ArtifactError::Corrupt`], each
/// naming the file.
pub fn read_constraints(
    dir: &Path,
    expected: Hash32,
    manifest: &Manifest,
    variables: usize,
) -> Result<R1cs, ArtifactError> {
    let path = dir.join(CONSTRAINTS_FILE);
    let bytes = read_hashed(&path, expected)?;
    let r1cs = R1cs::from_bytes(&bytes).map_err(|e| ArtifactError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    for (what, want, got) in [
        (
            "constraints (manifest)",
            manifest.constraints,
            r1cs.num_constraints(),
        ),
        (
            "instance variables (public inputs and the constant 1)",
            manifest.public_inputs + 1,
            r1cs.num_instance(),
        ),
        (
            "variables (the proving key's a_query)",
            variables,
            r1cs.num_variables(),
        ),
    ] {
        if want != got {
            return Err(ArtifactError::Corrupt {
                path,
                reason: format!("it has {got} {what}, the keys {want}"),
            });
        }
    }
    Ok(r1cs)
}

impl VerifierArtifacts {
    /// Loads the manifest and `verifying.key` of a key directory, with the checks of
    /// [`KeyArtifacts::load`] that concern them; `proving.key` is not read.
    pub fn load(dir: &Path) -> Result<Self, ArtifactError> {
        let manifest = read_manifest(&dir.join(MANIFEST_FILE))?;

        let path = dir.join(VERIFYING_KEY_FILE);
        let bytes = read_hashed(&path, manifest.vk_hash)?;
        let mut slice = bytes.as_slice();
        let vk = VerifyingKey::<Bn254>::deserialize_compressed(&mut slice).map_err(|e| {
            ArtifactError::Corrupt {
                path: path.clone(),
                reason: format!("not a verifying key: {e}"),
            }
        })?;
        if !slice.is_empty() {
            return Err(ArtifactError::Corrupt {
                path,
                reason: format!("{} bytes after the verifying key", slice.len()),
            });
        }
        if vk.gamma_abc_g1.len() != manifest.public_inputs + 1 {
            return Err(ArtifactError::Corrupt {
                path,
                reason: format!(
                    "the verifying key takes {} public inputs but {MANIFEST_FILE} says {}",
                    vk.gamma_abc_g1.len().saturating_sub(1),
                    manifest.public_inputs
                ),
            });
        }
        Ok(Self { manifest, vk })
    }

    /// Verifies `proof` against this circuit and verifying key; see
    /// [`ProofArtifact::verify`].
    pub fn verify(&self, proof: &ProofArtifact) -> Result<(), ArtifactError> {
        proof.verify(&self.manifest.circuit_id, &self.vk)
    }
}

fn read_manifest(path: &Path) -> Result<Manifest, ArtifactError> {
    let bytes = fs::read(path).map_err(|source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
        hint: RERUN_SETUP,
    })?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| ArtifactError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("not a valid manifest: {e}"),
        })?;
    let id = manifest.params.id();
    if id != manifest.circuit_id {
        return Err(ArtifactError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "circuit_id {} is not the id of the recorded params ({id})",
                manifest.circuit_id
            ),
        });
    }
    Ok(manifest)
}

/// Writes `path` through `write` under a temporary name, then renames it into place.
/// Returns the SHA-256 of what was written.
fn write_atomically<F>(path: &Path, write: F) -> Result<Hash32, ArtifactError>
where
    F: FnOnce(&mut HashingWriter<BufWriter<File>>) -> Result<(), ark_serialize::SerializationError>,
{
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let io_err = |source: io::Error| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
        hint: "cannot write the key directory",
    };
    let file = File::create(&tmp).map_err(io_err)?;
    let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let written = write(&mut w).map_err(|e| match e {
        ark_serialize::SerializationError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    });
    let result = written.and_then(|()| {
        w.inner.flush()?;
        let hash = Hash32(w.hasher.clone().finalize().into());
        let file = w.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(hash)
    });
    match result {
        Ok(hash) => {
            fs::rename(&tmp, path).map_err(io_err)?;
            Ok(hash)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(io_err(e))
        }
    }
}

/// A writer that hashes everything written through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn finish(self) -> Hash32 {
        Hash32(self.hasher.finalize().into())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn finish(self) -> Hash32 {
        Hash32(self.hasher.finalize().into())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// Proofs
// ---------------------------------------------------------------------------------------------

/// A proof with everything needed to check it against the right key.
///
/// JSON form (see [`ProofArtifact::to_json`]):
///
/// ```json
/// {
///   "circuit_id": "<64 hex digits>",
///   "vk_hash": "<64 hex digits>",
///   "public_inputs": ["<decimal, < r>", ...],
///   "proof": "<256 hex digits: compressed ark-serialize encoding of (A, B, C)>"
/// }
/// ```
///
/// Public inputs are canonical decimal integers (no sign, no leading zeros) below the BN254
/// scalar field modulus `r`, in the order the circuit allocates them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ProofArtifactJson", into = "ProofArtifactJson")]
pub struct ProofArtifact {
    /// The circuit the proof is for.
    pub circuit_id: CircuitId,
    /// [`vk_hash`] of the verifying key the proof is for.
    pub vk_hash: Hash32,
    /// The public inputs, without the constant one.
    pub public_inputs: Vec<Fr>,
    /// The Groth16 proof.
    pub proof: Proof<Bn254>,
}

/// The JSON shape of a [`ProofArtifact`], before its fields are parsed.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofArtifactJson {
    circuit_id: String,
    vk_hash: String,
    public_inputs: Vec<String>,
    proof: String,
}

impl From<ProofArtifact> for ProofArtifactJson {
    fn from(p: ProofArtifact) -> Self {
        let mut proof = Vec::with_capacity(PROOF_COMPRESSED_LEN);
        // Serializing into a Vec cannot fail.
        let _ = p.proof.serialize_compressed(&mut proof);
        Self {
            circuit_id: p.circuit_id.to_string(),
            vk_hash: p.vk_hash.to_hex(),
            public_inputs: p.public_inputs.iter().map(fr_to_decimal).collect(),
            proof: to_hex(&proof),
        }
    }
}

impl TryFrom<ProofArtifactJson> for ProofArtifact {
    type Error = ArtifactError;

    fn try_from(j: ProofArtifactJson) -> Result<Self, Self::Error> {
        let malformed = |field: &str, reason: String| ArtifactError::Malformed {
            field: field.to_string(),
            reason,
        };
        let circuit_id = j
            .circuit_id
            .parse()
            .map_err(|e: HexError| malformed("circuit_id", e.to_string()))?;
        let vk_hash = j
            .vk_hash
            .parse()
            .map_err(|e: HexError| malformed("vk_hash", e.to_string()))?;
        let public_inputs = j
            .public_inputs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                fr_from_decimal(s)
                    .map_err(|r| malformed(&format!("public_inputs[{i}]"), r.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let proof = proof_from_hex(&j.proof).map_err(|r| malformed("proof", r))?;
        Ok(Self {
            circuit_id,
            vk_hash,
            public_inputs,
            proof,
        })
    }
}

impl ProofArtifact {
    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // The JSON shape has only strings and arrays of strings: encoding cannot fail.
        serde_json::to_string_pretty(&ProofArtifactJson::from(self.clone())).unwrap_or_default()
    }

    /// Parses the JSON written by [`ProofArtifact::to_json`]. Errors are
    /// [`ArtifactError::Malformed`], naming the field at fault (`document` when the JSON
    /// itself is invalid or has missing, unknown or repeated fields).
    pub fn from_json(json: &str) -> Result<Self, ArtifactError> {
        crate::json::check_unique_keys_str(json).map_err(|e| ArtifactError::Malformed {
            field: "document".to_string(),
            reason: e.to_string(),
        })?;
        let raw: ProofArtifactJson =
            serde_json::from_str(json).map_err(|e| ArtifactError::Malformed {
                field: "document".to_string(),
                reason: e.to_string(),
            })?;
        Self::try_from(raw)
    }

    /// Checks, in this order, that the proof is for `vk` ([`ArtifactError::VkMismatch`]),
    /// for circuit `circuit_id` ([`ArtifactError::CircuitMismatch`]), has as many public
    /// inputs as `vk` takes ([`ArtifactError::PublicInputCount`]), and finally that the
    /// Groth16 pairing check holds ([`ArtifactError::BadProof`]).
    pub fn verify(
        &self,
        circuit_id: &CircuitId,
        vk: &VerifyingKey<Bn254>,
    ) -> Result<(), ArtifactError> {
        let held = Hash32(vk_hash(vk));
        if held != self.vk_hash {
            return Err(ArtifactError::VkMismatch {
                expected: held,
                found: self.vk_hash,
            });
        }
        if *circuit_id != self.circuit_id {
            return Err(ArtifactError::CircuitMismatch {
                expected: *circuit_id,
                found: self.circuit_id,
            });
        }
        check_public_input_count(vk, self.public_inputs.len())?;
        if Groth16::<Bn254>::verify(vk, &self.public_inputs, &self.proof)? {
            Ok(())
        } else {
            Err(ArtifactError::BadProof)
        }
    }
}

/// `ark-groth16` silently ignores extra public inputs and treats missing ones as zero, so
/// the count is checked first.
fn check_public_input_count(vk: &VerifyingKey<Bn254>, found: usize) -> Result<(), ArtifactError> {
    let expected = vk.gamma_abc_g1.len().saturating_sub(1);
    if vk.gamma_abc_g1.is_empty() || found != expected {
        return Err(ArtifactError::PublicInputCount { expected, found });
    }
    Ok(())
}

pub use crate::field::{fr_from_decimal, fr_to_decimal};

fn proof_from_hex(s: &str) -> Result<Proof<Bn254>, String> {
    if s.len() != 2 * PROOF_COMPRESSED_LEN {
        return Err(format!(
            "expected {} hex digits ({PROOF_COMPRESSED_LEN} bytes), got {} characters",
            2 * PROOF_COMPRESSED_LEN,
            s.len()
        ));
    }
    let bytes = hex::decode(s).map_err(|e| format!("not a hex string: {e}"))?;
    let mut slice = bytes.as_slice();
    let proof = Proof::<Bn254>::deserialize_compressed(&mut slice)
        .map_err(|e| format!("not a valid compressed BN254 proof: {e}"))?;
    if !slice.is_empty() {
        return Err(format!("{} bytes after the proof", slice.len()));
    }
    Ok(proof)
}

/// Proves `circuit` with `ark-groth16`'s own prover (the reference path) and returns the
/// proof with its identity. The public inputs are read from the synthesized circuit.
///
/// Errors: [`ArtifactError::Unsatisfied`] if the witness does not satisfy the circuit,
/// [`ArtifactError::ShapeMismatch`] if the circuit is not the one the key was made for,
/// [`ArtifactError::BadProof`] if, for any other reason, the proof does not verify (every
/// proof is checked before it is returned; this costs one pairing check).
pub fn prove_reference<C, R>(
    keys: &KeyArtifacts,
    circuit: C,
    rng: &mut R,
) -> Result<ProofArtifact, ArtifactError>
where
    C: ConstraintSynthesizer<Fr>,
    R: RngCore + CryptoRng,
{
    prove_reference_with_progress(keys, circuit, rng, &no_progress)
}

/// [`prove_reference`], reporting [`Stage::Synthesizing`] then [`Stage::Proving`].
pub fn prove_reference_with_progress<C, R>(
    keys: &KeyArtifacts,
    circuit: C,
    rng: &mut R,
    progress: &dyn Fn(Stage),
) -> Result<ProofArtifact, ArtifactError>
where
    C: ConstraintSynthesizer<Fr>,
    R: RngCore + CryptoRng,
{
    let pk = &keys.pk;
    progress(Stage::Synthesizing);
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Prove {
        construct_matrices: true,
        generate_lc_assignments: false,
    });
    circuit.generate_constraints(cs.clone())?;
    cs.finalize();
    if !cs.is_satisfied()? {
        return Err(ArtifactError::Unsatisfied {
            constraint: cs.which_is_unsatisfied().ok().flatten(),
        });
    }

    let num_inputs = cs.num_instance_variables();
    let num_witness = cs.num_witness_variables();
    let num_constraints = cs.num_constraints();
    let shape_checks = [
        ("instance variables", pk.vk.gamma_abc_g1.len(), num_inputs),
        ("witness variables", pk.l_query.len(), num_witness),
        ("variables", pk.a_query.len(), num_inputs + num_witness),
        (
            "variables (B query)",
            pk.b_g2_query.len(),
            num_inputs + num_witness,
        ),
        ("constraints", keys.manifest.constraints, num_constraints),
    ];
    for (what, key, circuit) in shape_checks {
        if key != circuit {
            return Err(ArtifactError::ShapeMismatch { what, key, circuit });
        }
    }
    if cs.num_predicates() != 1 {
        return Err(ArtifactError::ShapeMismatch {
            what: "predicates (Groth16 proves R1CS only)",
            key: 1,
            circuit: cs.num_predicates(),
        });
    }
    let matrices = cs.to_matrices()?;
    let r1cs = matrices
        .get(R1CS_PREDICATE_LABEL)
        .ok_or(SynthesisError::PredicateNotFound)?;
    let instance = cs.instance_assignment()?;
    let public_inputs = instance.get(1..).unwrap_or_default().to_vec();
    let full_assignment = [instance, cs.witness_assignment()?].concat();

    progress(Stage::Proving);
    let r = Fr::rand(rng);
    let s = Fr::rand(rng);
    let proof = Groth16::<Bn254>::create_proof_with_reduction_and_matrices(
        pk,
        r,
        s,
        r1cs,
        num_inputs,
        num_constraints,
        &full_assignment,
    )?;
    let artifact = ProofArtifact {
        circuit_id: keys.manifest.circuit_id,
        vk_hash: keys.manifest.vk_hash,
        public_inputs,
        proof,
    };
    artifact.verify(&keys.manifest.circuit_id, &pk.vk)?;
    Ok(artifact)
}

/// The smallest circuit worth proving, for tests of keys, proofs and verifiers (here, in the
/// Solidity verifier's drift check and by other crates' smoke tests): witnesses `x`, `y`;
/// public inputs `z = x * y` and `s = x + y`, in that order. Two public inputs, so that tests
/// notice if the inputs are ever reordered.
pub mod toy {
    use super::*;
    use ark_r1cs_std::{
        alloc::AllocVar,
        eq::EqGadget,
        fields::{FieldVar, fp::FpVar},
    };
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// The toy's parameters: 0 slots, depth 0, which no real Pulse circuit has.
    pub const PARAMS: CircuitParams = CircuitParams {
        slots: 0,
        depth: 0,
        version: CIRCUIT_VERSION,
    };

    /// `x * y = z`, `x + y = s` with `z`, `s` public. `None` witnesses are for setup.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct ToyCircuit {
        /// First factor (witness).
        pub x: Option<Fr>,
        /// Second factor (witness).
        pub y: Option<Fr>,
    }

    impl ToyCircuit {
        /// The circuit without a witness, for setup.
        pub fn blank() -> Self {
            Self::default()
        }

        /// The circuit with witness `x`, `y`.
        pub fn new(x: Fr, y: Fr) -> Self {
            Self {
                x: Some(x),
                y: Some(y),
            }
        }

        /// The public inputs a proof of `new(x, y)` carries: `[x * y, x + y]`.
        pub fn public_inputs(x: Fr, y: Fr) -> Vec<Fr> {
            vec![x * y, x + y]
        }
    }

    impl ConstraintSynthesizer<Fr> for ToyCircuit {
        fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
            let both = || match (self.x, self.y) {
                (Some(x), Some(y)) => Ok((x, y)),
                _ => Err(SynthesisError::AssignmentMissing),
            };
            let z = FpVar::new_input(cs.clone(), || both().map(|(x, y)| x * y))?;
            let s = FpVar::new_input(cs.clone(), || both().map(|(x, y)| x + y))?;
            let x = FpVar::new_witness(cs.clone(), || both().map(|(x, _)| x))?;
            let y = FpVar::new_witness(cs, || both().map(|(_, y)| y))?;
            x.mul_equals(&y, &z)?;
            (&x + &y).enforce_equal(&s)
        }
    }

    /// Deterministic toy keys: [`setup`] of [`ToyCircuit`] with [`PARAMS`] and a ChaCha20
    /// RNG seeded with `seed`. Never use seeded keys outside tests.
    pub fn keys(seed: u64) -> Result<KeyArtifacts, ArtifactError> {
        setup(
            ToyCircuit::blank(),
            PARAMS,
            &mut ChaCha20Rng::seed_from_u64(seed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::toy::ToyCircuit;
    use super::*;
    use ark_ff::PrimeField;
    use num_bigint::BigUint;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::cell::RefCell;

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    fn toy_keys(seed: u64) -> KeyArtifacts {
        toy::keys(seed).expect("setup")
    }

    fn toy(x: u64, y: u64) -> ToyCircuit {
        ToyCircuit::new(Fr::from(x), Fr::from(y))
    }

    #[test]
    fn artifacts_circuit_id_is_documented_encoding() {
        let p = CircuitParams {
            slots: 4,
            depth: 20,
            version: 1,
        };
        let bytes = p.canonical_bytes();
        assert_eq!(bytes.len(), 41);
        assert_eq!(&bytes[..21], b"pulse/circuit-params\0");
        assert_eq!(&bytes[21..25], &[0, 0, 0, 1]);
        assert_eq!(&bytes[25..33], &4u64.to_be_bytes());
        assert_eq!(&bytes[33..], &20u64.to_be_bytes());
        assert_eq!(p.id().0, Hash32::digest(&bytes));
        assert_ne!(p.id(), CircuitParams { version: 2, ..p }.id());
        assert_ne!(
            p.id(),
            CircuitParams {
                slots: 20,
                depth: 4,
                ..p
            }
            .id()
        );
        let shown = p.id().to_string();
        assert_eq!(shown.len(), 64);
        assert_eq!(shown.parse::<CircuitId>().expect("parse"), p.id());
    }

    #[test]
    fn artifacts_hex_helpers() {
        let h = Hash32([0xab; 32]);
        assert_eq!(h.to_hex(), "ab".repeat(32));
        assert_eq!("AB".repeat(32).parse::<Hash32>().expect("upper"), h);
        assert_eq!("ab".parse::<Hash32>(), Err(HexError::Length(2)));
        assert!(matches!(
            "zz".repeat(32).parse::<Hash32>(),
            Err(HexError::Digit(_))
        ));
    }

    #[test]
    fn artifacts_decimal_inputs() {
        assert_eq!(fr_from_decimal("0"), Ok(Fr::from(0u64)));
        assert_eq!(fr_from_decimal("42"), Ok(Fr::from(42u64)));
        let r_minus_1 = fr_to_decimal(&-Fr::from(1u64));
        assert_eq!(fr_from_decimal(&r_minus_1), Ok(-Fr::from(1u64)));
        let r = BigUint::from(Fr::MODULUS).to_string();
        assert!(fr_from_decimal(&r).is_err());
        for bad in ["", "-1", "+1", "01", "1e3", " 1", "0x10", &"9".repeat(200)] {
            assert!(fr_from_decimal(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn artifacts_setup_prove_verify() {
        let stages = RefCell::new(Vec::new());
        let record = |s: Stage| stages.borrow_mut().push(s);
        let keys = setup_with_progress(
            ToyCircuit::blank(),
            CircuitParams::new(2, 3),
            &mut rng(1),
            &record,
        )
        .expect("setup");
        assert_eq!(*stages.borrow(), [Stage::Synthesizing, Stage::Setup]);
        assert_eq!(keys.manifest.public_inputs, 2);
        assert_eq!(keys.manifest.constraints, 2);
        assert_eq!(keys.manifest.created_by, CREATED_BY);
        assert_eq!(keys.manifest.circuit_id, CircuitParams::new(2, 3).id());

        stages.borrow_mut().clear();
        let proof =
            prove_reference_with_progress(&keys, toy(6, 7), &mut rng(2), &record).expect("prove");
        assert_eq!(*stages.borrow(), [Stage::Synthesizing, Stage::Proving]);
        assert_eq!(proof.public_inputs, vec![Fr::from(42u64), Fr::from(13u64)]);
        proof
            .verify(&keys.circuit_id(), keys.vk())
            .expect("verifies");
        keys.verifier()
            .verify(&proof)
            .expect("verifies via verifier artifacts");

        // JSON round trip.
        let json = proof.to_json();
        assert!(json.contains("\"42\""), "{json}");
        let back = ProofArtifact::from_json(&json).expect("parse");
        assert_eq!(back, proof);
        back.verify(&keys.circuit_id(), keys.vk())
            .expect("verifies");
        // serde itself gives the same shape.
        let via_serde: ProofArtifact = serde_json::from_str(&json).expect("serde");
        assert_eq!(via_serde, proof);
    }

    #[test]
    fn artifacts_tampered_public_input_fails() {
        let keys = toy_keys(3);
        let mut proof = prove_reference(&keys, toy(3, 5), &mut rng(4)).expect("prove");
        assert_eq!(proof.public_inputs, vec![Fr::from(15u64), Fr::from(8u64)]);
        let good = proof.clone();
        proof.public_inputs[0] = Fr::from(16u64);
        assert!(matches!(
            proof.verify(&keys.circuit_id(), keys.vk()),
            Err(ArtifactError::BadProof)
        ));
        // Swapped inputs.
        proof.public_inputs = vec![Fr::from(8u64), Fr::from(15u64)];
        assert!(matches!(
            proof.verify(&keys.circuit_id(), keys.vk()),
            Err(ArtifactError::BadProof)
        ));
        // A tampered proof point (C replaced by A).
        let mut bad_c = good.clone();
        bad_c.proof.c = bad_c.proof.a;
        assert!(matches!(
            bad_c.verify(&keys.circuit_id(), keys.vk()),
            Err(ArtifactError::BadProof)
        ));
        proof.public_inputs.push(Fr::from(1u64));
        assert!(matches!(
            proof.verify(&keys.circuit_id(), keys.vk()),
            Err(ArtifactError::PublicInputCount {
                expected: 2,
                found: 3
            })
        ));
        proof.public_inputs.clear();
        assert!(matches!(
            proof.verify(&keys.circuit_id(), keys.vk()),
            Err(ArtifactError::PublicInputCount {
                expected: 2,
                found: 0
            })
        ));
    }

    #[test]
    fn artifacts_other_setup_refused_by_vk_hash() {
        let a = toy_keys(5);
        let b = toy_keys(6);
        let proof = prove_reference(&a, toy(2, 9), &mut rng(7)).expect("prove");
        match proof.verify(&b.circuit_id(), b.vk()) {
            Err(ArtifactError::VkMismatch { expected, found }) => {
                assert_eq!(expected, b.manifest.vk_hash);
                assert_eq!(found, a.manifest.vk_hash);
            }
            other => panic!("expected VkMismatch, got {other:?}"),
        }
        // Even with the vk hash rewritten to b's, the pairing check refuses it.
        let mut forged = proof.clone();
        forged.vk_hash = b.manifest.vk_hash;
        assert!(matches!(
            forged.verify(&b.circuit_id(), b.vk()),
            Err(ArtifactError::BadProof)
        ));
        // The right key but another circuit id.
        let other = CircuitParams::new(3, 3).id();
        assert_eq!(proof.circuit_id, toy::PARAMS.id());
        assert!(matches!(
            proof.verify(&other, a.vk()),
            Err(ArtifactError::CircuitMismatch { .. })
        ));
    }

    #[test]
    fn artifacts_unsatisfied_witness_refused() {
        // A circuit that claims z = 7 for x = 2, y = 3.
        struct Liar;
        impl ConstraintSynthesizer<Fr> for Liar {
            fn generate_constraints(
                self,
                cs: ConstraintSystemRef<Fr>,
            ) -> Result<(), SynthesisError> {
                use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, fields::fp::FpVar};
                let z = FpVar::new_input(cs.clone(), || Ok(Fr::from(7u64)))?;
                let s = FpVar::new_input(cs.clone(), || Ok(Fr::from(5u64)))?;
                let x = FpVar::new_witness(cs.clone(), || Ok(Fr::from(2u64)))?;
                let y = FpVar::new_witness(cs, || Ok(Fr::from(3u64)))?;
                ark_r1cs_std::fields::FieldVar::mul_equals(&x, &y, &z)?;
                (&x + &y).enforce_equal(&s)
            }
        }
        let keys = toy_keys(8);
        assert!(matches!(
            prove_reference(&keys, Liar, &mut rng(9)),
            Err(ArtifactError::Unsatisfied { .. })
        ));
    }

    #[test]
    fn artifacts_wrong_circuit_refused_by_prover() {
        // One public input instead of two.
        struct Square;
        impl ConstraintSynthesizer<Fr> for Square {
            fn generate_constraints(
                self,
                cs: ConstraintSystemRef<Fr>,
            ) -> Result<(), SynthesisError> {
                use ark_r1cs_std::{alloc::AllocVar, fields::fp::FpVar};
                let z = FpVar::new_input(cs.clone(), || Ok(Fr::from(9u64)))?;
                let x = FpVar::new_witness(cs, || Ok(Fr::from(3u64)))?;
                ark_r1cs_std::fields::FieldVar::mul_equals(&x, &x, &z)
            }
        }
        let keys = toy_keys(8);
        assert!(matches!(
            prove_reference(&keys, Square, &mut rng(9)),
            Err(ArtifactError::ShapeMismatch {
                what: "instance variables",
                key: 3,
                circuit: 2
            })
        ));
    }

    #[test]
    fn artifacts_write_load_roundtrip() {
        let keys = toy_keys(10);
        let dir = tempfile::tempdir().expect("tempdir");
        let stages = RefCell::new(Vec::new());
        keys.write_with_progress(dir.path(), &|s| stages.borrow_mut().push(s))
            .expect("write");
        assert_eq!(*stages.borrow(), [Stage::Writing]);
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                CONSTRAINTS_FILE,
                MANIFEST_FILE,
                PROVING_KEY_FILE,
                VERIFYING_KEY_FILE
            ]
        );

        let vk_bytes = fs::read(dir.path().join(VERIFYING_KEY_FILE)).expect("read vk");
        assert_eq!(Hash32::digest(&vk_bytes), keys.manifest.vk_hash);

        let loaded = KeyArtifacts::load(dir.path()).expect("load");
        assert_eq!(loaded.manifest, keys.manifest);
        assert_eq!(loaded.pk, keys.pk);
        assert_eq!(loaded.constraints, keys.constraints);
        assert!(keys.constraints.is_some() && keys.manifest.constraints_hash.is_some());
        let proof = prove_reference(&loaded, toy(11, 13), &mut rng(11)).expect("prove");
        VerifierArtifacts::load(dir.path())
            .expect("load verifier")
            .verify(&proof)
            .expect("verifies");

        // Writing again over an existing directory works.
        keys.write(dir.path()).expect("rewrite");
        KeyArtifacts::load(dir.path()).expect("reload");
    }

    fn expect_hash_mismatch(dir: &Path, file: &str) {
        match KeyArtifacts::load(dir) {
            Err(e @ ArtifactError::HashMismatch { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(file), "{msg}");
                assert!(msg.contains("pulse setup"), "{msg}");
            }
            other => panic!("expected a hash mismatch on {file}, got {other:?}"),
        }
    }

    #[test]
    fn artifacts_tampering_detected_on_load() {
        let keys = toy_keys(12);
        let other = toy_keys(13);
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let manifest_path = d.join(MANIFEST_FILE);
        let pk_path = d.join(PROVING_KEY_FILE);
        let vk_path = d.join(VERIFYING_KEY_FILE);

        // A flipped byte in the proving key.
        keys.write(d).expect("write");
        let mut pk = fs::read(&pk_path).expect("read");
        let mid = pk.len() / 2;
        pk[mid] ^= 1;
        fs::write(&pk_path, &pk).expect("write");
        expect_hash_mismatch(d, PROVING_KEY_FILE);

        // A truncated proving key.
        pk.truncate(mid);
        fs::write(&pk_path, &pk).expect("write");
        expect_hash_mismatch(d, PROVING_KEY_FILE);

        // A flipped byte in the constraint matrices, then no matrices at all.
        keys.write(d).expect("write");
        let r1cs_path = d.join(CONSTRAINTS_FILE);
        let mut r1cs = fs::read(&r1cs_path).expect("read");
        let last = r1cs.len() - 1;
        r1cs[last] ^= 1;
        fs::write(&r1cs_path, &r1cs).expect("write");
        expect_hash_mismatch(d, CONSTRAINTS_FILE);
        fs::remove_file(&r1cs_path).expect("rm");
        let err = KeyArtifacts::load(d).expect_err("missing matrices");
        assert!(err.to_string().contains(CONSTRAINTS_FILE), "{err}");

        // The verifying key of another setup.
        keys.write(d).expect("write");
        let mut vk = Vec::new();
        other.vk().serialize_compressed(&mut vk).expect("ser");
        fs::write(&vk_path, &vk).expect("write");
        expect_hash_mismatch(d, VERIFYING_KEY_FILE);

        // The manifest rewritten to accept the other verifying key: the proving key still
        // embeds the original one.
        let mut m = keys.manifest.clone();
        m.vk_hash = other.manifest.vk_hash;
        fs::write(&manifest_path, serde_json::to_vec(&m).expect("json")).expect("write");
        match KeyArtifacts::load(d) {
            Err(ArtifactError::HashMismatch { path, what, .. }) => {
                assert_eq!(path, pk_path);
                assert_eq!(what, "the embedded verifying key");
            }
            other => panic!("expected embedded vk mismatch, got {other:?}"),
        }

        // The manifest's parameters edited without the id.
        keys.write(d).expect("write");
        let mut m = keys.manifest.clone();
        m.params.slots += 1;
        fs::write(&manifest_path, serde_json::to_vec(&m).expect("json")).expect("write");
        let err = KeyArtifacts::load(d).expect_err("tampered params");
        assert!(matches!(err, ArtifactError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains(MANIFEST_FILE));

        // The public input count edited: it must agree with the verifying key.
        let mut m = keys.manifest.clone();
        m.public_inputs = 3;
        fs::write(&manifest_path, serde_json::to_vec(&m).expect("json")).expect("write");
        let err = KeyArtifacts::load(d).expect_err("tampered count");
        assert!(err.to_string().contains(VERIFYING_KEY_FILE), "{err}");

        // The manifest's pk hash edited.
        let mut m = keys.manifest.clone();
        m.pk_hash = Hash32([0; 32]);
        fs::write(&manifest_path, serde_json::to_vec(&m).expect("json")).expect("write");
        expect_hash_mismatch(d, PROVING_KEY_FILE);

        // Not JSON at all, then missing.
        fs::write(&manifest_path, b"{").expect("write");
        let err = KeyArtifacts::load(d).expect_err("bad json");
        assert!(err.to_string().contains("pulse setup"), "{err}");
        fs::remove_file(&manifest_path).expect("rm");
        let err = KeyArtifacts::load(d).expect_err("missing");
        assert!(matches!(err, ArtifactError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains(MANIFEST_FILE), "{err}");
    }

    #[test]
    fn artifacts_malformed_json_is_named() {
        let keys = toy_keys(14);
        let proof = prove_reference(&keys, toy(4, 4), &mut rng(15)).expect("prove");
        let good: serde_json::Value = serde_json::from_str(&proof.to_json()).expect("json");

        let field_of = |json: &str| match ProofArtifact::from_json(json) {
            Err(ArtifactError::Malformed { field, reason }) => {
                assert!(!reason.is_empty());
                field
            }
            other => panic!("expected Malformed, got {other:?}"),
        };
        let with = |key: &str, value: serde_json::Value| {
            let mut v = good.clone();
            v[key] = value;
            v.to_string()
        };

        assert_eq!(field_of("not json"), "document");
        assert_eq!(field_of("{}"), "document");
        let mut extra = good.clone();
        extra["extra"] = serde_json::json!(1);
        assert_eq!(field_of(&extra.to_string()), "document");
        assert_eq!(field_of(&with("circuit_id", "abc".into())), "circuit_id");
        assert_eq!(field_of(&with("vk_hash", "g".repeat(64).into())), "vk_hash");
        let r = BigUint::from(Fr::MODULUS).to_string();
        assert_eq!(
            field_of(&with("public_inputs", serde_json::json!(["1", r]))),
            "public_inputs[1]"
        );
        assert_eq!(
            field_of(&with("public_inputs", serde_json::json!(["0x10"]))),
            "public_inputs[0]"
        );
        assert_eq!(field_of(&with("proof", "00".into())), "proof");
        // Right length, but not a curve point.
        assert_eq!(field_of(&with("proof", "ff".repeat(128).into())), "proof");

        let err = ProofArtifact::from_json(&with("proof", "00".into())).expect_err("bad");
        assert!(err.to_string().contains("`proof`"), "{err}");
    }
}
