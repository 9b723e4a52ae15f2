//! A ceremony on disk: a directory that passes from contributor to contributor.
//!
//! | file | holds |
//! |---|---|
//! | `ceremony.json` | what the ceremony is for: the circuit, the ptau (path and SHA-256), the circuit hash, and a list of the contributions so far (a summary: the `.zkey` files are the truth) |
//! | `circuit.r1cs` | the circuit's constraints (circom's format) |
//! | `0000.zkey` | the initial key, from the circuit and the ptau |
//! | `0001.zkey`, … | the key after each contribution, each a snarkjs `.zkey` |
//!
//! [`Ceremony::verify`] trusts none of it: it recomputes the initial key from the circuit
//! and the ptau, and checks each file against the one before it ([`phase2::verify_step`]),
//! so a tampered, reordered, foreign or unproven contribution is named with the check it
//! fails. [`Ceremony::finalize`] verifies, then writes the keys Pulse's coordinator, workers
//! and L1 deployment use.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use blake2::{Blake2b512, Digest};
use pulse_circuits::artifacts::{
    CeremonyRecord, CircuitParams, ContributionRecord, Hash32, KeyArtifacts,
};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::keys::proving_key;
use crate::phase2::{self, Phase2Error};
use crate::ptau::Ptau;
use crate::r1cs_file::CircomR1cs;
use crate::rng::contribution_stream;
use crate::zkey::Zkey;

/// The manifest of a ceremony directory.
pub const MANIFEST: &str = "ceremony.json";
/// The circuit's constraints in a ceremony directory (and in an exported key directory).
pub const R1CS: &str = "circuit.r1cs";
/// The final key a finalized key directory keeps beside Pulse's own files.
pub const FINAL_ZKEY: &str = "circuit_final.zkey";

/// Errors of a ceremony.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file is not what it should be.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The ceremony cannot go on as asked (with what to do instead).
    #[error("{0}")]
    Usage(String),
    /// A key or the transcript was refused.
    #[error(transparent)]
    Phase2(#[from] Phase2Error),
    /// The final keys could not be made.
    #[error("making the keys: {0}")]
    Keys(#[from] pulse_circuits::artifacts::ArtifactError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CeremonyError + '_ {
    move |source| CeremonyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What circuit a ceremony is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Circuit {
    /// Pulse's chunk circuit with these parameters.
    Chunk {
        /// Slots and tree depth (and the circuit version).
        params: CircuitParams,
    },
    /// Any circuit given as a circom `.r1cs`.
    R1cs,
}

/// The ptau a ceremony starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtauRef {
    /// Where it was when the ceremony began (`verify` takes another path too).
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: Hash32,
    /// Its power.
    pub power: u32,
}

/// One contribution as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its number, from 1.
    pub index: usize,
    /// The contributor's name.
    pub name: String,
    /// The file holding the key after it.
    pub file: String,
    /// The contribution hash (hex), as its contributor publishes it.
    pub hash: String,
    /// Whether it is a random beacon.
    pub beacon: bool,
}

/// `ceremony.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version, 1.
    pub version: u32,
    /// The circuit.
    pub circuit: Circuit,
    /// SHA-256 of `circuit.r1cs`.
    pub r1cs_sha256: Hash32,
    /// The ptau.
    pub ptau: PtauRef,
    /// snarkjs's circuit hash (hex).
    pub circuit_hash: String,
    /// Constraints and public values, for the record.
    pub constraints: usize,
    /// Public values (not counting the constant one).
    pub public: u32,
    /// The contributions so far.
    pub contributions: Vec<Entry>,
}

/// The summary of one contribution, what its contributor publishes.
#[derive(Debug, Clone, Serialize)]
pub struct ContributionSummary {
    /// Its number, from 1.
    pub index: usize,
    /// The contributor's name.
    pub name: String,
    /// The contribution hash (hex).
    pub hash: String,
    /// The file written.
    pub file: PathBuf,
}

/// The result of verifying a whole ceremony.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// snarkjs's circuit hash (hex).
    pub circuit_hash: String,
    /// The contributions, oldest first.
    pub contributions: Vec<ContributionRecord>,
    /// BLAKE2b-512 of the whole transcript (hex).
    pub transcript_hash: String,
    /// SHA-256 of the ptau checked against.
    pub ptau_sha256: Hash32,
}

/// A ceremony directory.
#[derive(Debug, Clone)]
pub struct Ceremony {
    dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

fn zkey_file(index: usize) -> String {
    format!("{index:04}.zkey")
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CeremonyError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn read(path: &Path) -> Result<Vec<u8>, CeremonyError> {
    fs::read(path).map_err(io_err(path))
}

/// Reads and parses a ptau file, returning it with its SHA-256.
///
/// # Errors
/// The file cannot be read or is not a ptau.
pub fn read_ptau(path: &Path) -> Result<(Ptau, Hash32), CeremonyError> {
    let bytes = read(path)?;
    let sha = Hash32::digest(&bytes);
    let ptau = Ptau::parse(bytes).map_err(|e| CeremonyError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok((ptau, sha))
}

/// Reads and parses a `.zkey`.
///
/// # Errors
/// The file cannot be read or is not a Groth16 zkey.
pub fn read_zkey(path: &Path) -> Result<Zkey, CeremonyError> {
    Zkey::parse(read(path)?).map_err(|e| CeremonyError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// BLAKE2b-512 of the circuit hash and every contribution's public key (hex).
pub fn transcript_hash(z: &Zkey) -> String {
    let mut h = Blake2b512::new();
    h.update(z.mpc.cs_hash);
    for c in &z.mpc.contributions {
        h.update(c.public_key_bytes());
    }
    hex::encode(h.finalize())
}

impl Ceremony {
    /// Starts a ceremony in `dir` (which must not hold one) for `r1cs` over the ptau at
    /// `ptau_path`, checking the ptau first. `progress` hears each long step.
    ///
    /// # Errors
    /// An unreadable or inconsistent ptau, one too small for the circuit, an existing
    /// ceremony in `dir`, a write failure.
    pub fn create(
        dir: &Path,
        circuit: Circuit,
        r1cs: &CircomR1cs,
        ptau_path: &Path,
        progress: &dyn Fn(&str),
    ) -> Result<Self, CeremonyError> {
        if dir.join(MANIFEST).exists() {
            return Err(CeremonyError::Usage(format!(
                "{} already holds a ceremony; choose another directory",
                dir.display()
            )));
        }
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        progress("reading the ptau");
        let (ptau, sha) = read_ptau(ptau_path)?;
        progress("checking the ptau");
        ptau.check(&mut rand_chacha::ChaCha20Rng::from_entropy())
            .map_err(|e| CeremonyError::Format {
                path: ptau_path.to_path_buf(),
                reason: e.to_string(),
            })?;
        progress("computing the initial key");
        let init = phase2::initial(r1cs, &ptau)?;
        Self::start(dir, circuit, r1cs, ptau_path, sha, ptau.power, &init)
    }

    /// Starts a ceremony in `dir` from its initial key `init` (made by the caller for
    /// `r1cs` over the ptau at `ptau_path`, of SHA-256 `sha` and power `power`).
    ///
    /// # Errors
    /// A write failure.
    pub fn start(
        dir: &Path,
        circuit: Circuit,
        r1cs: &CircomR1cs,
        ptau_path: &Path,
        sha: Hash32,
        power: u32,
        init: &Zkey,
    ) -> Result<Self, CeremonyError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let r1cs_bytes = r1cs.to_bytes();
        write_atomically(&dir.join(R1CS), &r1cs_bytes)?;
        write_atomically(&dir.join(zkey_file(0)), &init.to_bytes())?;
        let manifest = Manifest {
            version: 1,
            circuit,
            r1cs_sha256: Hash32::digest(&r1cs_bytes),
            ptau: PtauRef {
                path: ptau_path
                    .canonicalize()
                    .unwrap_or_else(|_| ptau_path.to_path_buf()),
                sha256: sha,
                power,
            },
            circuit_hash: hex::encode(init.mpc.cs_hash),
            constraints: r1cs.constraints.len(),
            public: r1cs.public(),
            contributions: Vec::new(),
        };
        let c = Self {
            dir: dir.to_path_buf(),
            manifest,
        };
        c.save()?;
        Ok(c)
    }

    /// Opens the ceremony in `dir`.
    ///
    /// # Errors
    /// No ceremony there, or an unreadable manifest.
    pub fn open(dir: &Path) -> Result<Self, CeremonyError> {
        let path = dir.join(MANIFEST);
        let bytes = fs::read(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                CeremonyError::Usage(format!(
                    "{} holds no ceremony (no {MANIFEST}); start one with `pulse ceremony new`",
                    dir.display()
                ))
            } else {
                CeremonyError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| CeremonyError::Format {
                path: path.clone(),
                reason: format!("not a ceremony manifest: {e}"),
            })?;
        if manifest.version != 1 {
            return Err(CeremonyError::Format {
                path,
                reason: format!("manifest version {} (only 1 is known)", manifest.version),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    fn save(&self) -> Result<(), CeremonyError> {
        let mut json = serde_json::to_vec_pretty(&self.manifest).expect("plain data");
        json.push(b'\n');
        write_atomically(&self.dir.join(MANIFEST), &json)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key after the last contribution (the initial key before any).
    ///
    /// # Errors
    /// The file is missing or malformed.
    pub fn latest(&self) -> Result<Zkey, CeremonyError> {
        read_zkey(&self.latest_path())
    }

    fn append(
        &mut self,
        next: &Zkey,
        hash: [u8; 64],
        name: String,
        beacon: bool,
    ) -> Result<ContributionSummary, CeremonyError> {
        let index = self.manifest.contributions.len() + 1;
        let file = zkey_file(index);
        write_atomically(&self.dir.join(&file), &next.to_bytes())?;
        self.manifest.contributions.push(Entry {
            index,
            name: name.clone(),
            file: file.clone(),
            hash: hex::encode(hash),
            beacon,
        });
        self.save()?;
        Ok(ContributionSummary {
            index,
            name,
            hash: hex::encode(hash),
            file: self.dir.join(file),
        })
    }

    fn check_name(&self, name: &str) -> Result<(), CeremonyError> {
        if name.trim().is_empty() || name.chars().count() > 64 {
            return Err(CeremonyError::Usage(
                "a contributor's name must be 1 to 64 characters (it is published with the contribution)".into(),
            ));
        }
        if self.manifest.contributions.iter().any(|c| c.beacon) {
            return Err(CeremonyError::Usage(
                "the ceremony already ends with a beacon; finalize it, or start a new one".into(),
            ));
        }
        Ok(())
    }

    /// Adds a contribution with fresh randomness from the operating system and the
    /// optional `entropy`; the secret is never written. Returns what to publish.
    ///
    /// # Errors
    /// A bad name, a ceremony already closed by a beacon, unreadable files.
    pub fn contribute(
        &mut self,
        name: &str,
        entropy: &[u8],
        progress: &dyn Fn(&str),
    ) -> Result<ContributionSummary, CeremonyError> {
        self.check_name(name)?;
        progress("reading the latest key");
        let prev = self.latest()?;
        progress("applying the contribution");
        let (next, hash) = phase2::contribute(
            &prev,
            &mut contribution_stream(entropy),
            Some(name.to_owned()),
        );
        self.append(&next, hash, name.to_owned(), false)
    }

    /// Adds a contribution from a public random beacon (`hash` its value,
    /// `iterations_exp` the SHA-256 iterations' exponent).
    ///
    /// # Errors
    /// As [`Self::contribute`], and beacon parameters outside snarkjs's bounds.
    pub fn beacon(
        &mut self,
        hash: &[u8],
        iterations_exp: u8,
        name: &str,
        progress: &dyn Fn(&str),
    ) -> Result<ContributionSummary, CeremonyError> {
        self.check_name(name)?;
        progress("reading the latest key");
        let prev = self.latest()?;
        progress("applying the beacon");
        let (next, h) = phase2::beacon(&prev, hash, iterations_exp, Some(name.to_owned()))?;
        self.append(&next, h, name.to_owned(), true)
    }

    /// Adds a contribution made elsewhere on this ceremony's latest key (by
    /// `snarkjs zkey contribute` or `beacon`, or another Pulse), after checking it against
    /// that key ([`phase2::verify_step`]).
    ///
    /// # Errors
    /// An unreadable key, or one that is not a valid next step of this ceremony (the
    /// message names the check).
    pub fn import(&mut self, path: &Path) -> Result<ContributionSummary, CeremonyError> {
        self.import_zkey(&read_zkey(path)?)
    }

    /// As [`Self::import`], for a key already read (from the network, say).
    ///
    /// # Errors
    /// As [`Self::import`].
    pub fn import_zkey(&mut self, next: &Zkey) -> Result<ContributionSummary, CeremonyError> {
        if self.is_closed() {
            return Err(CeremonyError::Usage(
                "the ceremony already ends with a beacon; finalize it, or start a new one".into(),
            ));
        }
        let prev = self.latest()?;
        let index = self.manifest.contributions.len() + 1;
        phase2::verify_step(
            &prev,
            next,
            index,
            &mut rand_chacha::ChaCha20Rng::from_entropy(),
        )?;
        let c = next
            .mpc
            .contributions
            .last()
            .expect("verify_step found the new contribution");
        let name = c
            .name
            .clone()
            .unwrap_or_else(|| format!("contribution {index}"));
        let (hash, beacon) = (c.hash(), c.beacon.is_some());
        self.append(next, hash, name, beacon)
    }

    /// Whether a beacon closed the ceremony (no contribution may follow it).
    pub fn is_closed(&self) -> bool {
        self.manifest.contributions.iter().any(|c| c.beacon)
    }

    /// The file of the key after the last contribution (the initial key before any).
    pub fn latest_path(&self) -> PathBuf {
        self.dir.join(zkey_file(self.manifest.contributions.len()))
    }

    /// Verifies the whole ceremony from the circuit and the ptau (at `ptau`, or where the
    /// manifest says): the ptau's hash and consistency, the initial key recomputed, then
    /// every contribution against the key before it. Returns the final key and the report.
    ///
    /// # Errors
    /// The first failure, naming the contribution and the check.
    pub fn verify(
        &self,
        ptau: Option<&Path>,
        progress: &dyn Fn(&str),
    ) -> Result<(Zkey, Report), CeremonyError> {
        self.verify_with(ptau, true, progress)
    }

    /// [`Self::verify`], checking the ptau itself only when `check_ptau` (a development
    /// cluster's own, made moments before, needs no check).
    ///
    /// # Errors
    /// As [`Self::verify`].
    pub fn verify_with(
        &self,
        ptau: Option<&Path>,
        check_ptau: bool,
        progress: &dyn Fn(&str),
    ) -> Result<(Zkey, Report), CeremonyError> {
        let ptau_path = ptau.unwrap_or(&self.manifest.ptau.path);
        progress("reading the ptau");
        let (ptau, sha) = read_ptau(ptau_path)?;
        if sha != self.manifest.ptau.sha256 {
            return Err(CeremonyError::Usage(format!(
                "{} is not the ptau this ceremony began with (SHA-256 {sha}, the ceremony's is {}); pass the right one with --ptau",
                ptau_path.display(),
                self.manifest.ptau.sha256
            )));
        }
        let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
        if check_ptau {
            progress("checking the ptau");
            ptau.check(&mut rng).map_err(|e| CeremonyError::Format {
                path: ptau_path.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
        let r1cs_path = self.dir.join(R1CS);
        let r1cs_bytes = read(&r1cs_path)?;
        if Hash32::digest(&r1cs_bytes) != self.manifest.r1cs_sha256 {
            return Err(CeremonyError::Format {
                path: r1cs_path,
                reason: "the circuit differs from the one the ceremony began with".into(),
            });
        }
        let r1cs = CircomR1cs::parse(r1cs_bytes).map_err(|e| CeremonyError::Format {
            path: r1cs_path.clone(),
            reason: e.to_string(),
        })?;
        if let Circuit::Chunk { params } = &self.manifest.circuit {
            let ours = chunk_r1cs(*params).map_err(CeremonyError::Usage)?;
            if ours != r1cs {
                return Err(CeremonyError::Format {
                    path: r1cs_path,
                    reason: format!(
                        "these are not the constraints of the chunk circuit with {} slots and depth {}",
                        params.slots, params.depth
                    ),
                });
            }
        }
        progress("checking the initial key");
        let init = read_zkey(&self.dir.join(zkey_file(0)))?;
        phase2::check_initial(&r1cs, &ptau, &init, &mut rng)?;
        let mut prev = init;
        for i in 1..=self.manifest.contributions.len() {
            progress(&format!("checking contribution #{i}"));
            let next = read_zkey(&self.dir.join(zkey_file(i)))?;
            phase2::verify_step(&prev, &next, i, &mut rng)?;
            prev = next;
        }
        let report = Report {
            circuit_hash: hex::encode(prev.mpc.cs_hash),
            contributions: prev
                .mpc
                .contributions
                .iter()
                .map(|c| ContributionRecord {
                    name: c.name.clone().unwrap_or_default(),
                    hash: hex::encode(c.hash()),
                    beacon: c.beacon.is_some(),
                })
                .collect(),
            transcript_hash: transcript_hash(&prev),
            ptau_sha256: sha,
        };
        Ok((prev, report))
    }

    /// Verifies the ceremony and writes the keys it gives into `out`: a key directory as
    /// `pulse setup` writes it (with the ceremony's record in its manifest), plus the final
    /// `.zkey` and the circuit's `.r1cs`, which `pulse snarkjs export` hands to snarkjs.
    ///
    /// # Errors
    /// A ceremony that does not verify, one for a circuit other than Pulse's chunk circuit
    /// (its keys are the `.zkey`), one with no contribution, a write failure.
    pub fn finalize(
        &self,
        out: &Path,
        ptau: Option<&Path>,
        progress: &dyn Fn(&str),
    ) -> Result<(KeyArtifacts, Report), CeremonyError> {
        self.finalize_with(out, ptau, true, progress)
    }

    /// [`Self::finalize`], checking the ptau only when `check_ptau`.
    ///
    /// # Errors
    /// As [`Self::finalize`].
    pub fn finalize_with(
        &self,
        out: &Path,
        ptau: Option<&Path>,
        check_ptau: bool,
        progress: &dyn Fn(&str),
    ) -> Result<(KeyArtifacts, Report), CeremonyError> {
        let Circuit::Chunk { params } = self.manifest.circuit else {
            return Err(CeremonyError::Usage(
                "this ceremony is for a circom circuit: its keys are its last .zkey, for snarkjs or `pulse snarkjs prove`".into(),
            ));
        };
        if self.manifest.contributions.is_empty() {
            return Err(CeremonyError::Usage(
                "the ceremony has no contribution yet: its key is known to everyone; contribute first".into(),
            ));
        }
        let (last, report) = self.verify_with(ptau, check_ptau, progress)?;
        progress("writing the keys");
        let r1cs_bytes = read(&self.dir.join(R1CS))?;
        let r1cs = CircomR1cs::parse(r1cs_bytes.clone()).map_err(|e| CeremonyError::Format {
            path: self.dir.join(R1CS),
            reason: e.to_string(),
        })?;
        let constraints = r1cs.to_pulse().map_err(|e| CeremonyError::Format {
            path: self.dir.join(R1CS),
            reason: e.to_string(),
        })?;
        let record = CeremonyRecord {
            transcript_hash: report.transcript_hash.clone(),
            circuit_hash: report.circuit_hash.clone(),
            contributions: report.contributions.clone(),
            ptau_sha256: report.ptau_sha256,
        };
        let keys = KeyArtifacts::from_key(params, proving_key(&last), constraints, Some(record))?;
        if out.join(pulse_circuits::artifacts::MANIFEST_FILE).exists() {
            return Err(CeremonyError::Usage(format!(
                "{} already holds keys; choose another --out or remove it first",
                out.display()
            )));
        }
        fs::create_dir_all(out).map_err(io_err(out))?;
        write_atomically(&out.join(FINAL_ZKEY), &last.to_bytes())?;
        write_atomically(&out.join(R1CS), &r1cs_bytes)?;
        keys.write(out)?;
        Ok((keys, report))
    }
}

/// The circom form of Pulse's chunk circuit with `params`.
///
/// # Errors
/// The circuit fails to synthesize (a message saying so).
pub fn chunk_r1cs(params: CircuitParams) -> Result<CircomR1cs, String> {
    let r1cs = pulse_circuits::r1cs::R1cs::of_circuit(
        pulse_circuits::circuit::ChunkCircuit::blank(params),
    )
    .map_err(|e| format!("building the chunk circuit's constraints: {e}"))?;
    Ok(CircomR1cs::from_pulse(&r1cs))
}

/// A development cluster's ceremony in `dir`: a fresh ptau made here (its maker, this
/// process, knows τ, so the initial key is computed in the field), one contribution per
/// name in `contributors`, a closing beacon of fresh randomness, then the keys finalized
/// into `keys_out` after the whole transcript verifies. Its keys protect nothing that the
/// dev cluster's single operator could not forge anyway; what it shows is the real
/// ceremony's files and checks, end to end, feeding a cluster.
///
/// # Errors
/// As the steps.
pub fn dev_ceremony(
    dir: &Path,
    params: CircuitParams,
    contributors: &[String],
    keys_out: &Path,
    progress: &dyn Fn(&str),
) -> Result<(KeyArtifacts, Report), CeremonyError> {
    let mut c = dev_ceremony_start(dir, params, progress)?;
    for name in contributors {
        progress(&format!("contribution of {name}"));
        c.contribute(name, b"", &|_| {})?;
    }
    dev_ceremony_close(&mut c, keys_out, progress)
}

/// The first step of [`dev_ceremony`]: a development ptau in `dir` (`dev.ptau`) and the
/// ceremony started from it in `dir/ceremony`, with no contribution yet.
///
/// # Errors
/// As the steps.
pub fn dev_ceremony_start(
    dir: &Path,
    params: CircuitParams,
    progress: &dyn Fn(&str),
) -> Result<Ceremony, CeremonyError> {
    let r1cs = chunk_r1cs(params).map_err(CeremonyError::Usage)?;
    let power = phase2::domain_power(r1cs.constraints.len(), r1cs.public() as usize);
    // snarkjs's circuit hash reads one power past the domain's from 2^15 rows on.
    let power = if power >= 15 { power + 1 } else { power };
    progress("making a development ptau");
    let (ptau, secrets) = Ptau::new_with_secrets(power, &mut rand::rngs::OsRng)
        .map_err(|e| CeremonyError::Usage(e.to_string()))?;
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let ptau_path = dir.join("dev.ptau");
    let bytes = ptau.to_bytes();
    write_atomically(&ptau_path, &bytes)?;
    progress("computing the initial key");
    let init = phase2::initial_from_secrets(&r1cs, &ptau, &secrets)?;
    drop(secrets);
    Ceremony::start(
        &dir.join("ceremony"),
        Circuit::Chunk { params },
        &r1cs,
        &ptau_path,
        Hash32::digest(&bytes),
        power,
        &init,
    )
}

/// The last step of [`dev_ceremony`]: a beacon of fresh randomness, the whole transcript
/// verified, the keys written to `keys_out`.
///
/// # Errors
/// As the steps.
pub fn dev_ceremony_close(
    c: &mut Ceremony,
    keys_out: &Path,
    progress: &dyn Fn(&str),
) -> Result<(KeyArtifacts, Report), CeremonyError> {
    let mut beacon = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut beacon);
    progress("closing beacon");
    c.beacon(&beacon, 10, "beacon", &|_| {})?;
    progress("verifying the ceremony and writing the keys");
    c.finalize_with(keys_out, None, false, &|_| {})
}
