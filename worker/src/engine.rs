//! Provers, one per proving key, loaded from the key cache and kept in memory: preparing a
//! key's bases on a backend costs far more than one proof, so a worker keeps the provers
//! of the last few keys it used.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ark_bn254::{Bn254, Fr};
use ark_ff::UniformRand;
use ark_groth16::{Proof, ProvingKey, VerifyingKey};
use ark_serialize::{CanonicalDeserialize, Compress, Validate};
use pulse_circuits::artifacts::{
    Hash32, MANIFEST_FILE, Manifest, PROVING_KEY_FILE, ProofArtifact, vk_hash,
};
use pulse_circuits::circuit::{ChunkCircuit, ChunkWitness};
use pulse_prover::{CpuBackend, ProveError, Prover, StageTimings};

use crate::config::BackendKind;

/// Why a cached key could not be turned into a prover.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file of the cached key directory could not be read.
    #[error("{path}: {reason}; delete the key cache entry to download it again")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The key does not agree with its manifest.
    #[error("the proving key {pk_hash} does not agree with its manifest: {reason}")]
    Inconsistent {
        /// The key.
        pk_hash: String,
        /// What disagrees.
        reason: String,
    },
    /// The backend could not take the key.
    #[error("the {backend} backend cannot load the proving key: {source}")]
    Backend {
        /// The backend.
        backend: &'static str,
        /// Its error.
        source: ProveError,
    },
}

/// A prover on one of the backends.
enum Engine {
    Cpu(Prover<CpuBackend>),
}

/// A proving key ready to prove with: its manifest and a prover holding its bases.
pub struct Loaded {
    /// The key's manifest.
    pub manifest: Manifest,
    engine: Engine,
}

/// A proof and where the time went.
pub struct Proved {
    /// The proof artifact (circuit id, vk hash, public inputs, proof).
    pub artifact: ProofArtifact,
    /// Seconds building the witness (constraint synthesis).
    pub witness_seconds: f64,
    /// Seconds proving (the QAP reduction, the MSMs, assembly).
    pub prove_seconds: f64,
}

impl Loaded {
    /// Loads `dir` (a key cache entry checked by `pulse_protocol::keys::fetch_proving_key`:
    /// its `proving.key` hashes to its manifest's `pk_hash`) and prepares the key on
    /// `backend`. Blocking and slow: call it off the async runtime.
    ///
    /// The key is read without point validation, as `KeyArtifacts::load` does, because its
    /// SHA-256 was checked on download; the verifying key inside it is checked against the
    /// manifest's `vk_hash`.
    ///
    /// # Errors
    /// [`LoadError`].
    pub fn load(dir: &Path, backend: BackendKind) -> Result<Self, LoadError> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let read_err = |path: &Path, reason: String| LoadError::Read {
            path: path.display().to_string(),
            reason,
        };
        let bytes =
            std::fs::read(&manifest_path).map_err(|e| read_err(&manifest_path, e.to_string()))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| read_err(&manifest_path, e.to_string()))?;
        let pk_hash = manifest.pk_hash.to_hex();
        let inconsistent = |reason: String| LoadError::Inconsistent {
            pk_hash: pk_hash.clone(),
            reason,
        };
        if manifest.params.id() != manifest.circuit_id {
            return Err(inconsistent(format!(
                "circuit_id {} is not the id of its params",
                manifest.circuit_id
            )));
        }
        let pk_path = dir.join(PROVING_KEY_FILE);
        let file = File::open(&pk_path).map_err(|e| read_err(&pk_path, e.to_string()))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let pk =
            ProvingKey::<Bn254>::deserialize_with_mode(&mut reader, Compress::No, Validate::No)
                .map_err(|e| read_err(&pk_path, format!("not a proving key: {e}")))?;
        let embedded = Hash32(vk_hash(&pk.vk));
        if embedded != manifest.vk_hash {
            return Err(inconsistent(format!(
                "its verifying key has hash {embedded}, the manifest says {}",
                manifest.vk_hash
            )));
        }
        if pk.vk.gamma_abc_g1.len() != manifest.public_inputs + 1 {
            return Err(inconsistent(format!(
                "it takes {} public inputs, the manifest says {}",
                pk.vk.gamma_abc_g1.len().saturating_sub(1),
                manifest.public_inputs
            )));
        }
        let engine = match backend {
            BackendKind::Cpu => {
                Engine::Cpu(Prover::new(CpuBackend::new(), pk).map_err(|source| {
                    LoadError::Backend {
                        backend: backend.name(),
                        source,
                    }
                })?)
            }
        };
        Ok(Self { manifest, engine })
    }

    fn vk(&self) -> &VerifyingKey<Bn254> {
        match &self.engine {
            Engine::Cpu(p) => p.vk(),
        }
    }

    fn prove_with_randomness(
        &self,
        circuit: ChunkCircuit,
        r: Fr,
        s: Fr,
    ) -> Result<(Proof<Bn254>, StageTimings), ProveError> {
        match &self.engine {
            Engine::Cpu(p) => p.prove_with_randomness(circuit, r, s),
        }
    }

    /// Proves `witness` (already checked against the key's parameters) and checks the proof
    /// against the key's verifying key before handing it out, so that a faulty backend is
    /// caught here rather than by the coordinator. Blocking and slow.
    ///
    /// # Errors
    /// A reason for the operator: the prover's error, or a proof that does not verify.
    pub fn prove(&self, witness: ChunkWitness) -> Result<Proved, String> {
        let start = Instant::now();
        let public_inputs = witness.public_inputs();
        let params = self.manifest.params;
        let mut rng = rand::rngs::OsRng;
        let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
        let (proof, timings) = self
            .prove_with_randomness(ChunkCircuit { params, witness }, r, s)
            .map_err(|e| format!("proving failed: {e}"))?;
        let artifact = ProofArtifact {
            circuit_id: self.manifest.circuit_id,
            vk_hash: self.manifest.vk_hash,
            public_inputs,
            proof,
        };
        artifact.verify(&self.manifest.circuit_id, self.vk()).map_err(|e| {
            format!("the backend made a proof that does not verify ({e}); this worker's backend is faulty")
        })?;
        let total = start.elapsed();
        Ok(Proved {
            artifact,
            witness_seconds: timings.synthesis.as_secs_f64(),
            prove_seconds: total.saturating_sub(timings.synthesis).as_secs_f64(),
        })
    }
}

/// The provers of the last `capacity` keys used, most recent last.
pub(crate) struct ProverCache {
    capacity: usize,
    entries: Vec<(Hash32, Arc<Loaded>)>,
}

impl ProverCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Vec::new(),
        }
    }

    /// The prover of `pk_hash`, if loaded; it becomes the most recent.
    pub(crate) fn get(&mut self, pk_hash: &Hash32) -> Option<Arc<Loaded>> {
        let i = self.entries.iter().position(|(h, _)| h == pk_hash)?;
        let entry = self.entries.remove(i);
        let loaded = entry.1.clone();
        self.entries.push(entry);
        Some(loaded)
    }

    /// Adds a prover, dropping the least recently used beyond capacity.
    pub(crate) fn insert(&mut self, pk_hash: Hash32, loaded: Arc<Loaded>) {
        self.entries.retain(|(h, _)| *h != pk_hash);
        self.entries.push((pk_hash, loaded));
        while self.entries.len() > self.capacity {
            self.entries.remove(0);
        }
    }

    /// The circuits (hex ids) of the loaded keys.
    pub(crate) fn circuits(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .entries
            .iter()
            .map(|(_, l)| l.manifest.circuit_id.to_string())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}
