//! Bindings to the rollup contract, generated from the compiled artifact in
//! `contracts/out/PulseRollup.json`, and the conversions between arkworks values and the
//! contract's encoding (shared with the generated verifier: a G2 point is
//! `[[x.c1, x.c0], [y.c1, y.c0]]`, the point at infinity is all zeros).

use alloy::primitives::U256;
use alloy::sol_types::SolInterface;
use ark_bn254::{Bn254, Fr};
use ark_ff::{BigInteger, PrimeField};
use ark_groth16::{Proof, VerifyingKey};
use pulse_circuits::solidity::{g1_coords, g2_coords};
use sha2::{Digest, Sha256};

/// The bindings generated from the artifact's ABI (the constructor's seven parameters give
/// `deploy` eight arguments).
mod bindings {
    #![allow(clippy::too_many_arguments, missing_docs)]
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug, PartialEq, Eq)]
        PulseRollup,
        "../contracts/out/PulseRollup.json"
    );
}

pub use bindings::PulseRollup;

pub use PulseRollup::PulseRollupErrors;

/// The compiled artifact, as checked in.
pub const ARTIFACT_JSON: &str = include_str!("../../contracts/out/PulseRollup.json");

/// The Solidity source the artifact was compiled from.
pub const SOURCE: &str = include_str!("../../contracts/src/PulseRollup.sol");

/// Number of public inputs of a chunk proof: root before, root after, commitment,
/// deployment id.
pub const CHUNK_PUBLIC_INPUTS: usize = 4;

/// Number of those the operator supplies in calldata: all but the deployment id, which the
/// contract fixes to its own.
pub const CALLDATA_PUBLIC_INPUTS: usize = 3;

/// Words of the verifying key the constructor takes: alpha, beta, gamma, delta and
/// IC_0..IC_4.
pub const VK_WORDS: usize = 2 + 3 * 4 + 2 * (CHUNK_PUBLIC_INPUTS + 1);

/// The SHA-256 of [`SOURCE`], as the artifact records it (`sourceSha256`).
pub fn source_sha256() -> String {
    hex::encode(Sha256::digest(SOURCE.as_bytes()))
}

/// The artifact's `sourceSha256`: when it differs from [`source_sha256`], the artifact is
/// stale (`scripts/contracts build` rebuilds it).
///
/// # Errors
/// A message when the artifact is not the JSON object the build script writes.
pub fn artifact_source_sha256() -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(ARTIFACT_JSON)
        .map_err(|e| format!("contracts/out/PulseRollup.json is not JSON: {e}"))?;
    v.get("sourceSha256")
        .and_then(|s| s.as_str())
        .map(str::to_owned)
        .ok_or_else(|| "contracts/out/PulseRollup.json has no sourceSha256".to_owned())
}

/// A field element as a 256-bit word.
pub fn word<F: PrimeField>(x: F) -> U256 {
    U256::from_be_slice(&x.into_bigint().to_bytes_be())
}

/// A 256-bit word as an element of Fr, if it is below the modulus.
pub fn fr_from_word(w: U256) -> Option<Fr> {
    let bytes = w.to_be_bytes::<32>();
    let x = Fr::from_be_bytes_mod_order(&bytes);
    (word(x) == w).then_some(x)
}

/// The verifying key as the constructor's `uint256[24]`: alpha, beta, gamma, delta,
/// IC_0..IC_4. (The contract folds IC_4 into IC_0 with its deployment id, and
/// `verifyingKey()` returns the first 22 words of that folded key.)
///
/// # Errors
/// A message when the key is not for [`CHUNK_PUBLIC_INPUTS`] public inputs.
pub fn vk_words(vk: &VerifyingKey<Bn254>) -> Result<[U256; VK_WORDS], String> {
    if vk.gamma_abc_g1.len() != CHUNK_PUBLIC_INPUTS + 1 {
        return Err(format!(
            "the verifying key has {} public inputs; the rollup contract takes chunk keys with {CHUNK_PUBLIC_INPUTS}",
            vk.gamma_abc_g1.len().saturating_sub(1)
        ));
    }
    let mut out = Vec::with_capacity(VK_WORDS);
    out.extend(g1_coords(&vk.alpha_g1).map(word));
    for g2 in [&vk.beta_g2, &vk.gamma_g2, &vk.delta_g2] {
        out.extend(g2_coords(g2).into_iter().flatten().map(word));
    }
    for ic in &vk.gamma_abc_g1 {
        out.extend(g1_coords(ic).map(word));
    }
    out.try_into()
        .map_err(|_| "verifying key encoding has the wrong length".to_owned())
}

/// A proof as the contract's `uint256[8]`: A, B, C.
pub fn proof_words(proof: &Proof<Bn254>) -> [U256; 8] {
    let [a0, a1] = g1_coords(&proof.a);
    let [[b0, b1], [b2, b3]] = g2_coords(&proof.b);
    let [c0, c1] = g1_coords(&proof.c);
    [a0, a1, b0, b1, b2, b3, c0, c1].map(word)
}

/// One chunk proof with its public inputs, as a batch commit carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkProof {
    /// State root before the chunk.
    pub root_before: Fr,
    /// State root after the chunk.
    pub root_after: Fr,
    /// The chunk's public-data commitment.
    pub commitment: Fr,
    /// The deployment id the proof is for; not sent: the contract supplies its own, so
    /// only a proof for that deployment verifies there.
    pub deployment: Fr,
    /// The Groth16 proof.
    pub proof: Proof<Bn254>,
}

impl ChunkProof {
    /// From the public inputs in the circuit's order and the proof.
    ///
    /// # Errors
    /// A message when there are not exactly [`CHUNK_PUBLIC_INPUTS`] inputs.
    pub fn new(public_inputs: &[Fr], proof: Proof<Bn254>) -> Result<Self, String> {
        match public_inputs {
            [root_before, root_after, commitment, deployment] => Ok(Self {
                root_before: *root_before,
                root_after: *root_after,
                commitment: *commitment,
                deployment: *deployment,
                proof,
            }),
            other => Err(format!(
                "a chunk proof has {CHUNK_PUBLIC_INPUTS} public inputs, not {}",
                other.len()
            )),
        }
    }

    /// The public inputs in the circuit's order.
    pub fn public_inputs(&self) -> [Fr; CHUNK_PUBLIC_INPUTS] {
        [
            self.root_before,
            self.root_after,
            self.commitment,
            self.deployment,
        ]
    }

    /// The public inputs the operator sends (`verifyProof`'s `inputs`): all but the
    /// deployment id.
    pub fn calldata_inputs(&self) -> [Fr; CALLDATA_PUBLIC_INPUTS] {
        [self.root_before, self.root_after, self.commitment]
    }

    /// The contract's `Chunk` struct.
    pub fn to_abi(&self) -> PulseRollup::Chunk {
        PulseRollup::Chunk {
            rootBefore: word(self.root_before),
            rootAfter: word(self.root_after),
            commitment: word(self.commitment),
            proof: proof_words(&self.proof),
        }
    }
}

/// A revert of the rollup contract, decoded: the custom error's name and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revert {
    /// The custom error's name (`WrongStartRoot`), or `"unknown"` for revert data the
    /// contract's ABI does not describe.
    pub name: String,
    /// The arguments, as `name: value` pairs, or the raw data in hex.
    pub detail: String,
}

impl std::fmt::Display for Revert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}({})", self.name, self.detail)
        }
    }
}

/// Decodes revert data into the contract's custom error.
pub fn decode_revert(data: &[u8]) -> Revert {
    use PulseRollupErrors as E;
    let Ok(err) = PulseRollupErrors::abi_decode(data) else {
        return Revert {
            name: "unknown".to_owned(),
            detail: format!("0x{}", hex::encode(data)),
        };
    };
    let detail = match &err {
        E::NotOwner(e) => format!("caller: {}", e.caller),
        E::NotOperator(e) => format!("caller: {}", e.caller),
        E::UnexpectedBatchNumber(e) => format!("expected: {}, given: {}", e.expected, e.given),
        E::TooManyChunks(e) => format!("given: {}, max: {}", e.given, e.max),
        E::WrongStartRoot(e) => format!("stored: {}, given: {}", e.stored, e.given),
        E::BrokenRootChain(e) => format!("chunk: {}", e.chunk),
        E::PublicInputNotInField(e) => format!("chunk: {}, input: {}", e.chunk, e.input),
        E::NotEnoughAttestations(e) => format!("given: {}, needed: {}", e.given, e.needed),
        E::MalformedAttestation(e) => format!("index: {}", e.index),
        E::NotACommitteeMember(e) => format!("index: {}, signer: {}", e.index, e.signer),
        E::AttestationsNotSorted(e) => format!("index: {}", e.index),
        E::InvalidCommittee(e) => format!("members: {}, threshold: {}", e.members, e.threshold),
        _ => String::new(),
    };
    Revert {
        name: error_name(&err).to_owned(),
        detail,
    }
}

/// The Solidity name of a custom error.
pub fn error_name(err: &PulseRollupErrors) -> &'static str {
    use PulseRollupErrors as E;
    use alloy::sol_types::SolError;
    fn name<T: SolError>(_: &T) -> &'static str {
        let sig = T::SIGNATURE;
        sig.split('(').next().unwrap_or(sig)
    }
    match err {
        E::NotOwner(e) => name(e),
        E::NotOperator(e) => name(e),
        E::UnexpectedBatchNumber(e) => name(e),
        E::EmptyBatch(e) => name(e),
        E::TooManyChunks(e) => name(e),
        E::WrongStartRoot(e) => name(e),
        E::BrokenRootChain(e) => name(e),
        E::PublicInputNotInField(e) => name(e),
        E::InvalidBatchProof(e) => name(e),
        E::ZeroAddress(e) => name(e),
        E::GenesisRootNotInField(e) => name(e),
        E::InvalidVerifyingKey(e) => name(e),
        E::NotEnoughAttestations(e) => name(e),
        E::MalformedAttestation(e) => name(e),
        E::NotACommitteeMember(e) => name(e),
        E::AttestationsNotSorted(e) => name(e),
        E::InvalidCommittee(e) => name(e),
    }
}
