//! Provers, one per proving key, loaded from the key cache and kept in memory: preparing a
//! key's bases on a backend costs far more than one proof, so a worker keeps the provers
//! of the last few keys it used.
//!
//! [`Hardware`] is what a worker proves on, chosen once at start: the CPU, or one GPU
//! whose device (with its kernels built) every loaded key shares, each key's bases
//! resident on it. On a GPU, a key whose bases do not fit the device's memory budget, or a
//! job whose scratch memory does not, is proved on the CPU instead: the key's CPU prover is
//! built then and kept, its bases leave the device, and its later jobs (the same size) go
//! straight to the CPU. The proof is the same either way; only the time differs.

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use ark_bn254::{Bn254, Fr};
use ark_ff::UniformRand;
use ark_groth16::{Proof, ProvingKey, VerifyingKey};
use ark_serialize::{CanonicalDeserialize, Compress, Validate};
use pulse_circuits::artifacts::{
    self, Hash32, MANIFEST_FILE, Manifest, PROVING_KEY_FILE, ProofArtifact, vk_hash,
};
use pulse_circuits::circuit::{ChunkCircuit, ChunkWitness};
use pulse_circuits::r1cs::R1cs;
use pulse_gpu::{Api, Device, GpuBackend, GpuError};
use pulse_prover::{Backend, BackendError, CpuBackend, ProveError, Prover, StageTimings};

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

/// What a worker proves on, chosen once at start.
#[derive(Clone)]
pub enum Hardware {
    /// Pulse's CPU backend.
    Cpu,
    /// One GPU, opened once; every loaded key gets a [`GpuBackend`] on it.
    Gpu {
        /// The device, its kernels built.
        device: Arc<dyn Device>,
        /// The most device memory the worker uses, in bytes (default 90 % of the device's).
        memory_limit: Option<u64>,
    },
}

impl fmt::Debug for Hardware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hardware::Cpu => f.write_str("Cpu"),
            Hardware::Gpu {
                device,
                memory_limit,
            } => f
                .debug_struct("Gpu")
                .field("device", &device.info().label())
                .field("memory_limit", memory_limit)
                .finish(),
        }
    }
}

impl Hardware {
    /// Opens what `backend` asks for: device `device` (default 0) of a GPU API, the device
    /// `auto` picks, or nothing for the CPU. Blocking, and slow where the kernels have to
    /// be compiled: call it off the async runtime.
    ///
    /// # Errors
    /// The [`GpuError`] (no driver, no such device, kernels rejected) when `cuda` or
    /// `opencl` was asked for: a worker told to use a GPU does not quietly use the CPU.
    /// `auto` does not fail: without a usable GPU it warns and proves on the CPU.
    pub fn open(
        backend: BackendKind,
        device: Option<usize>,
        memory_limit: Option<u64>,
    ) -> Result<Self, GpuError> {
        let api = match backend {
            BackendKind::Cpu => return Ok(Self::Cpu),
            BackendKind::Auto => return Ok(Self::auto(memory_limit)),
            BackendKind::Cuda => Api::Cuda,
            BackendKind::OpenCl => Api::OpenCl,
        };
        let device = pulse_gpu::open_device(api, device)?;
        Ok(Self::Gpu {
            device,
            memory_limit,
        })
    }

    fn auto(memory_limit: Option<u64>) -> Self {
        let opened = pulse_gpu::open_auto_device();
        match opened {
            Ok(device) => Self::Gpu {
                device,
                memory_limit,
            },
            Err(reason) => {
                tracing::warn!(
                    %reason,
                    "backend auto: no usable GPU, proving on the CPU backend (pass --backend cuda or opencl to refuse to start without one)"
                );
                Self::Cpu
            }
        }
    }

    /// The backend's name in results, the registry and metrics: `cpu`, `cuda` or `opencl`.
    pub fn name(&self) -> &'static str {
        match self {
            Hardware::Cpu => "cpu",
            Hardware::Gpu { device, .. } => device.info().api.name(),
        }
    }
}

/// A key on a GPU worker: on the device, or moved to the CPU.
#[derive(Clone)]
enum OnGpu {
    /// The key's bases are resident on the device.
    Device(Arc<Prover<GpuBackend>>),
    /// The device ran out of memory for this key (`reason`): its jobs are proved here.
    FellBack {
        cpu: Arc<Prover<CpuBackend>>,
        reason: String,
    },
}

/// A prover on the worker's hardware.
enum Engine {
    Cpu(Box<Prover<CpuBackend>>),
    Gpu { api: Api, state: Mutex<OnGpu> },
}

/// A proving key ready to prove with: its manifest and a prover holding its bases.
pub struct Loaded {
    /// The key's manifest.
    pub manifest: Manifest,
    vk: VerifyingKey<Bn254>,
    /// The key cache entry, read again if the key has to move to the CPU.
    dir: PathBuf,
    engine: Engine,
}

/// A proof and where the time went.
pub struct Proved {
    /// The proof artifact (circuit id, vk hash, public inputs, proof).
    pub artifact: ProofArtifact,
    /// Seconds building the witness (constraint synthesis).
    pub witness_seconds: f64,
    /// Seconds proving (the QAP reduction, the MSMs, assembly; on a GPU that ran out of
    /// memory, the attempt there too).
    pub prove_seconds: f64,
    /// The backend that made the proof: `cpu`, `cuda` or `opencl`.
    pub backend: &'static str,
    /// On a GPU worker, why this job was proved on the CPU: the device's out-of-memory
    /// message.
    pub gpu_fallback: Option<String>,
}

/// A proof from one of the backends.
struct Run {
    proof: Proof<Bn254>,
    timings: StageTimings,
    backend: &'static str,
    gpu_fallback: Option<String>,
}

/// A key cache entry read: the manifest, the proving key, and the constraint matrices when
/// the key came with them.
struct KeyFiles {
    manifest: Manifest,
    pk: ProvingKey<Bn254>,
    constraints: Option<Arc<R1cs>>,
}

/// Reads a key cache entry: its manifest, its proving key checked against it, and its
/// `constraints.r1cs` when the manifest names one (checked against its hash and the key).
fn read_key(dir: &Path) -> Result<KeyFiles, LoadError> {
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
    let pk = ProvingKey::<Bn254>::deserialize_with_mode(&mut reader, Compress::No, Validate::No)
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
    let constraints = match manifest.constraints_hash {
        Some(expected) => Some(Arc::new(
            artifacts::read_constraints(dir, expected, &manifest, pk.a_query.len())
                .map_err(|e| inconsistent(e.to_string()))?,
        )),
        None => None,
    };
    Ok(KeyFiles {
        manifest,
        pk,
        constraints,
    })
}

/// A prover for `pk` on `backend`, given the key's constraint matrices when it has them (so
/// no proof synthesizes them).
fn prover_on<B: Backend>(
    backend: B,
    pk: ProvingKey<Bn254>,
    constraints: Option<Arc<R1cs>>,
) -> Result<Prover<B>, ProveError> {
    match constraints {
        Some(r1cs) => Prover::with_constraints(backend, pk, r1cs),
        None => Prover::new(backend, pk),
    }
}

fn cpu_prover(
    pk: ProvingKey<Bn254>,
    constraints: Option<Arc<R1cs>>,
) -> Result<Prover<CpuBackend>, LoadError> {
    prover_on(CpuBackend::new(), pk, constraints).map_err(|source| LoadError::Backend {
        backend: "cpu",
        source,
    })
}

/// Said once per key, when it moves to the CPU.
fn warn_fallback(manifest: &Manifest, api: Api, reason: &str) {
    tracing::warn!(
        pk_hash = %manifest.pk_hash,
        circuit = %manifest.circuit_id,
        gpu = api.name(),
        %reason,
        "the GPU does not have the memory for this proving key; its jobs are proved on the CPU backend from now on (a larger --gpu-memory-limit or GPU keeps them on the device)"
    );
}

impl Loaded {
    /// Loads `dir` (a key cache entry checked by `pulse_protocol::keys::fetch_proving_key`:
    /// its `proving.key` hashes to its manifest's `pk_hash`) and prepares the key on
    /// `hardware`. Blocking and slow: call it off the async runtime. On a GPU whose memory
    /// budget cannot hold the key, the key is prepared on the CPU instead (with a warning).
    ///
    /// The key is read without point validation, as `KeyArtifacts::load` does, because its
    /// SHA-256 was checked on download; the verifying key inside it is checked against the
    /// manifest's `vk_hash`.
    ///
    /// # Errors
    /// [`LoadError`].
    pub fn load(dir: &Path, hardware: &Hardware) -> Result<Self, LoadError> {
        let KeyFiles {
            manifest,
            pk,
            constraints,
        } = read_key(dir)?;
        let vk = pk.vk.clone();
        let engine = match hardware {
            Hardware::Cpu => Engine::Cpu(Box::new(cpu_prover(pk, constraints)?)),
            Hardware::Gpu {
                device,
                memory_limit,
            } => {
                let api = device.info().api;
                let backend = GpuBackend::on(device.clone(), *memory_limit);
                let state = match prover_on(backend, pk, constraints.clone()) {
                    Ok(prover) => OnGpu::Device(Arc::new(prover)),
                    Err(ProveError::Backend(BackendError::OutOfMemory(reason))) => {
                        // The key was consumed on the way to the device: read it again.
                        let cpu = Arc::new(cpu_prover(read_key(dir)?.pk, constraints)?);
                        warn_fallback(&manifest, api, &reason);
                        OnGpu::FellBack { cpu, reason }
                    }
                    Err(source) => {
                        return Err(LoadError::Backend {
                            backend: api.name(),
                            source,
                        });
                    }
                };
                Engine::Gpu {
                    api,
                    state: Mutex::new(state),
                }
            }
        };
        Ok(Self {
            manifest,
            vk,
            dir: dir.to_owned(),
            engine,
        })
    }

    /// The backend the next job will be proved on: `cpu`, `cuda` or `opencl` (`cpu` for a
    /// key that moved off a GPU short of memory).
    pub fn proves_on(&self) -> &'static str {
        match &self.engine {
            Engine::Cpu(_) => "cpu",
            Engine::Gpu { api, state } => {
                match &*state.lock().unwrap_or_else(PoisonError::into_inner) {
                    OnGpu::Device(_) => api.name(),
                    OnGpu::FellBack { .. } => "cpu",
                }
            }
        }
    }

    /// Moves the key to the CPU after the device ran out of memory proving it: builds its
    /// CPU prover (reading the key again) and drops the device's copy of its bases.
    fn fall_back(
        &self,
        state: &Mutex<OnGpu>,
        api: Api,
        reason: String,
    ) -> Result<(Arc<Prover<CpuBackend>>, String), String> {
        let mut on = state.lock().unwrap_or_else(PoisonError::into_inner);
        if let OnGpu::FellBack { cpu, reason } = &*on {
            return Ok((cpu.clone(), reason.clone()));
        }
        let cpu = read_key(&self.dir)
            .and_then(|k| cpu_prover(k.pk, k.constraints))
            .map_err(|e| {
                format!("the GPU ran out of memory ({reason}) and the key could not be prepared on the CPU: {e}")
            })?;
        let cpu = Arc::new(cpu);
        warn_fallback(&self.manifest, api, &reason);
        *on = OnGpu::FellBack {
            cpu: cpu.clone(),
            reason: reason.clone(),
        };
        Ok((cpu, reason))
    }

    fn run(&self, circuit: ChunkCircuit, r: Fr, s: Fr) -> Result<Run, String> {
        let failed = |e: ProveError| format!("proving failed: {e}");
        let (api, state) = match &self.engine {
            Engine::Cpu(prover) => {
                let (proof, timings) = prover
                    .prove_with_randomness(circuit, r, s)
                    .map_err(failed)?;
                return Ok(Run {
                    proof,
                    timings,
                    backend: "cpu",
                    gpu_fallback: None,
                });
            }
            Engine::Gpu { api, state } => (*api, state),
        };
        let on = state.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let (cpu, reason) = match on {
            OnGpu::Device(gpu) => match gpu.prove_with_randomness(circuit.clone(), r, s) {
                Ok((proof, timings)) => {
                    return Ok(Run {
                        proof,
                        timings,
                        backend: api.name(),
                        gpu_fallback: None,
                    });
                }
                Err(ProveError::Backend(BackendError::OutOfMemory(reason))) => {
                    // The last handle on the device's copy goes with the state it leaves.
                    drop(gpu);
                    self.fall_back(state, api, reason)?
                }
                Err(e) => return Err(failed(e)),
            },
            OnGpu::FellBack { cpu, reason } => (cpu, reason),
        };
        let (proof, timings) = cpu.prove_with_randomness(circuit, r, s).map_err(failed)?;
        Ok(Run {
            proof,
            timings,
            backend: "cpu",
            gpu_fallback: Some(reason),
        })
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
        let run = self.run(ChunkCircuit { params, witness }, r, s)?;
        let artifact = ProofArtifact {
            circuit_id: self.manifest.circuit_id,
            vk_hash: self.manifest.vk_hash,
            public_inputs,
            proof: run.proof,
        };
        artifact.verify(&self.manifest.circuit_id, &self.vk).map_err(|e| {
            format!(
                "the {} backend made a proof that does not verify ({e}); this worker's backend is faulty",
                run.backend
            )
        })?;
        let total = start.elapsed();
        Ok(Proved {
            artifact,
            witness_seconds: run.timings.synthesis.as_secs_f64(),
            prove_seconds: total.saturating_sub(run.timings.synthesis).as_secs_f64(),
            backend: run.backend,
            gpu_fallback: run.gpu_fallback,
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

    /// Whether the prover of `pk_hash` is loaded.
    pub(crate) fn contains(&self, pk_hash: &Hash32) -> bool {
        self.entries.iter().any(|(h, _)| h == pk_hash)
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
