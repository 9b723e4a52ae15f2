//! Attestations of the data-availability committee: what a member signs for a batch, how
//! the operator packs them for `commitBatch`, and reading the committee the contract holds.
//!
//! A member signs, as an Ethereum signed message (EIP-191), the digest
//!
//! ```text
//! keccak256(abi.encode(ATTESTATION_TAG, deploymentId, batch, keccak256(bytes(dataCid)),
//!                      keccak256(abi.encodePacked(commitments))))
//! ```
//!
//! with `ATTESTATION_TAG = keccak256("PulseRollup.attestation.v1")`: the contract's
//! `attestationDigest`. The deployment id keeps a signature from serving another chain or
//! contract, the batch number from serving another batch.

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;
use ark_bn254::Fr;
use pulse_circuits::deployment::DeploymentId;

use crate::contract::{PulseRollup, word};
use crate::{L1Error, connect_to_contract};

/// Bytes of one attestation: r, s, v (27 or 28).
pub const ATTESTATION_BYTES: usize = 65;

/// The domain tag: `keccak256("PulseRollup.attestation.v1")`.
pub fn attestation_tag() -> B256 {
    keccak256(b"PulseRollup.attestation.v1")
}

/// The digest a member signs for batch `batch` of `deployment`, whose data is at
/// `data_cid` and whose chunks commit to `commitments` (in order).
pub fn attestation_digest(
    deployment: DeploymentId,
    batch: u64,
    data_cid: &str,
    commitments: &[Fr],
) -> B256 {
    let packed: Vec<u8> = commitments
        .iter()
        .flat_map(|c| word(*c).to_be_bytes::<32>())
        .collect();
    keccak256(
        (
            attestation_tag(),
            word(deployment.0),
            U256::from(batch),
            keccak256(data_cid.as_bytes()),
            keccak256(&packed),
        )
            .abi_encode(),
    )
}

/// One member's signature over a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attestation {
    /// The address that signed (recovered from the signature).
    pub signer: Address,
    /// r, s, v.
    pub signature: [u8; ATTESTATION_BYTES],
}

/// Signs `digest` as an Ethereum signed message.
///
/// # Errors
/// A message if the signer fails (it does not for a local key).
pub fn sign(signer: &PrivateKeySigner, digest: B256) -> Result<Attestation, String> {
    let sig = signer
        .sign_message_sync(digest.as_slice())
        .map_err(|e| format!("signing the attestation: {e}"))?;
    let signature: [u8; ATTESTATION_BYTES] = sig.as_bytes();
    Ok(Attestation {
        signer: signer.address(),
        signature,
    })
}

/// The address that signed `signature` over `digest` (as an Ethereum signed message).
///
/// # Errors
/// A message naming what is wrong: not 65 bytes of a signature, v not 27 or 28, s in the
/// upper half of the order (the contract refuses those), or nothing recoverable.
pub fn recover(digest: B256, signature: &[u8]) -> Result<Address, String> {
    let bytes: [u8; ATTESTATION_BYTES] = signature.try_into().map_err(|_| {
        format!(
            "an attestation is {ATTESTATION_BYTES} bytes (r, s, v), not {}",
            signature.len()
        )
    })?;
    if !matches!(bytes[64], 27 | 28) {
        return Err(format!("an attestation's v is 27 or 28, not {}", bytes[64]));
    }
    let sig = alloy::primitives::Signature::from_raw_array(&bytes)
        .map_err(|e| format!("not a signature: {e}"))?;
    if sig.normalize_s().is_some() {
        return Err("an attestation's s is in the upper half of the curve order".to_owned());
    }
    sig.recover_address_from_msg(digest.as_slice())
        .map_err(|e| format!("no address recovers from the attestation: {e}"))
}

/// Packs attestations for `commitBatch`: sorted by signer, one per signer.
pub fn pack(attestations: &[Attestation]) -> Bytes {
    let mut sorted = attestations.to_vec();
    sorted.sort_by_key(|a| a.signer);
    sorted.dedup_by_key(|a| a.signer);
    sorted
        .iter()
        .flat_map(|a| a.signature)
        .collect::<Vec<u8>>()
        .into()
}

/// The committee the contract holds: members and threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnchainCommittee {
    /// The members, in the order set.
    pub members: Vec<Address>,
    /// Attestations required per batch (0: none).
    pub threshold: u64,
    /// Committee changes so far (1 after deployment).
    pub epoch: u64,
}

/// Reads the committee of the rollup contract at `contract`.
///
/// # Errors
/// [`L1Error`] for a node that does not answer, no contract there, or an answer out of
/// range.
pub async fn read_committee(rpc_url: &str, contract: Address) -> Result<OnchainCommittee, L1Error> {
    let (provider, _) = connect_to_contract(rpc_url, contract).await?;
    let rollup = PulseRollup::new(contract, &provider);
    let c = rollup
        .committee()
        .call()
        .await
        .map_err(|e| L1Error::contract(rpc_url, e))?;
    let epoch = rollup
        .committeeEpoch()
        .call()
        .await
        .map_err(|e| L1Error::contract(rpc_url, e))?;
    let small = |v: U256, what: &str| {
        u64::try_from(v)
            .map_err(|_| L1Error::BadAnswer(format!("the committee's {what} is above 2^64")))
    };
    Ok(OnchainCommittee {
        members: c._0,
        threshold: small(c._1, "threshold")?,
        epoch: small(epoch, "epoch")?,
    })
}

/// The attestation addresses of a committee file's members, in its order.
///
/// # Errors
/// A message naming a member whose address does not parse (a checked committee has none).
pub fn member_addresses(committee: &pulse_dac::Committee) -> Result<Vec<Address>, String> {
    committee
        .members
        .iter()
        .map(|m| {
            m.address
                .parse()
                .map_err(|e| format!("member {}: address {:?}: {e}", m.name, m.address))
        })
        .collect()
}

impl OnchainCommittee {
    /// Whether the contract holds the members and threshold of `committee`; if not, a
    /// message saying what differs and what to do.
    ///
    /// # Errors
    /// The difference.
    pub fn check_matches(&self, committee: &pulse_dac::Committee) -> Result<(), String> {
        let mut file = member_addresses(committee)?;
        let mut chain = self.members.clone();
        file.sort();
        chain.sort();
        if file != chain || self.threshold != u64::from(committee.threshold) {
            return Err(format!(
                "the committee file has {} members with threshold {}, the contract {} members \
                 with threshold {} (committee epoch {}): use the committee file of this \
                 deployment, or have the owner call setCommittee with it",
                committee.members.len(),
                committee.threshold,
                self.members.len(),
                self.threshold,
                self.epoch
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_recovers_its_signer_and_only_over_its_digest() {
        let key = PrivateKeySigner::random();
        let d = attestation_digest(DeploymentId(Fr::from(7u64)), 3, "bafy", &[Fr::from(1u64)]);
        let a = sign(&key, d).expect("sign");
        assert_eq!(a.signer, key.address());
        assert_eq!(recover(d, &a.signature), Ok(key.address()));
        // Another batch, CID, commitment or deployment is another digest.
        for other in [
            attestation_digest(DeploymentId(Fr::from(7u64)), 4, "bafy", &[Fr::from(1u64)]),
            attestation_digest(DeploymentId(Fr::from(7u64)), 3, "bafz", &[Fr::from(1u64)]),
            attestation_digest(DeploymentId(Fr::from(7u64)), 3, "bafy", &[Fr::from(2u64)]),
            attestation_digest(DeploymentId(Fr::from(8u64)), 3, "bafy", &[Fr::from(1u64)]),
        ] {
            assert_ne!(other, d);
            assert_ne!(recover(other, &a.signature), Ok(key.address()));
        }
        let mut bad = a.signature;
        bad[64] = 29;
        assert!(recover(d, &bad).unwrap_err().contains("27 or 28"));
        assert!(
            recover(d, &a.signature[..64])
                .unwrap_err()
                .contains("65 bytes")
        );
    }

    #[test]
    fn packing_sorts_by_signer_and_drops_repeats() {
        let keys: Vec<_> = (0..3).map(|_| PrivateKeySigner::random()).collect();
        let d = B256::repeat_byte(1);
        let mut atts: Vec<_> = keys.iter().map(|k| sign(k, d).expect("sign")).collect();
        atts.push(atts[0]);
        let packed = pack(&atts);
        assert_eq!(packed.len(), 3 * ATTESTATION_BYTES);
        let signers: Vec<_> = packed
            .chunks(ATTESTATION_BYTES)
            .map(|s| recover(d, s).expect("recover"))
            .collect();
        let mut sorted = signers.clone();
        sorted.sort();
        assert_eq!(signers, sorted);
    }
}
