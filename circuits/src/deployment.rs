//! The deployment a transaction is signed for and a chunk proof is made for.
//!
//! A Pulse deployment is one rollup contract on one chain. Its id is the field element
//!
//! ```text
//! D = uint256(keccak256(abi.encode(uint256 chainId, address contract))) mod r
//! ```
//!
//! (the keccak256 of 64 bytes: the chain id as a 32-byte big-endian integer, then the
//! contract's 20-byte address left-padded with zeros to 32 bytes; the digest read as a
//! big-endian integer and reduced modulo the BN254 scalar field order r). The rollup
//! contract computes it in its constructor and returns it from `deploymentId()`;
//! `pulse_l1::deployment_id` computes it natively. This crate stays free of Ethereum code
//! and only carries the result.
//!
//! D is the last input of every signed message ([`crate::tx`]) and the fourth public input
//! of the chunk circuit ([`crate::circuit`]), which the contract fixes to its own D. So a
//! signature made for one deployment does not verify on another, and no proof over a
//! transaction signed for another deployment is accepted on chain.

use std::fmt;

use ark_bn254::Fr;
use serde::{Deserialize, Serialize};

use crate::field::fr_to_decimal;

/// A deployment id D, the field element that binds signatures and proofs to one rollup
/// contract on one chain. Written as a decimal string in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeploymentId(#[serde(with = "crate::field::fr_string")] pub Fr);

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fr_to_decimal(&self.0))
    }
}

/// A deployment: its id with the chain and contract it stands for, so that a refusal can
/// say which deployment a client must sign for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Deployment {
    /// D, as the contract computes it from `chain_id` and `contract`.
    pub id: DeploymentId,
    /// The L1 chain id.
    pub chain_id: u64,
    /// The rollup contract's address.
    pub contract: [u8; 20],
}

impl Deployment {
    /// A deployment whose id the caller computed from `chain_id` and `contract` (with
    /// `pulse_l1::deployment`, or read from the contract's `deploymentId()`). Nothing here
    /// checks that they agree: this crate has no keccak.
    pub fn new(id: DeploymentId, chain_id: u64, contract: [u8; 20]) -> Self {
        Self {
            id,
            chain_id,
            contract,
        }
    }

    /// The contract address as `0x` and 40 lowercase hex digits.
    pub fn contract_hex(&self) -> String {
        format!("0x{}", hex::encode(self.contract))
    }
}

impl fmt::Display for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chain {}, contract {} (deployment id {})",
            self.chain_id,
            self.contract_hex(),
            self.id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_decimal_strings_and_deployments_name_chain_and_contract() {
        let id = DeploymentId(Fr::from(1234u64));
        assert_eq!(serde_json::to_string(&id).ok().as_deref(), Some("\"1234\""));
        assert_eq!(
            serde_json::from_str::<DeploymentId>("\"1234\"").ok(),
            Some(id)
        );
        assert!(serde_json::from_str::<DeploymentId>("1234").is_err());
        let d = Deployment::new(id, 31337, [0xab; 20]);
        assert_eq!(
            d.to_string(),
            format!(
                "chain 31337, contract 0x{} (deployment id 1234)",
                "ab".repeat(20)
            )
        );
    }
}
