//! The deployment id `D` that binds signatures and chunk proofs to one rollup contract on one
//! chain:
//!
//! ```text
//! D = uint256(keccak256(abi.encode(uint256 chainId, address contract))) mod r
//! ```
//!
//! The contract computes it in its constructor (`deploymentId()`) and fixes the chunk
//! circuit's fourth public input to it; [`deployment_id`] is the same function natively.
//! Clients sign for the `D` of the cluster they talk to ([`read_deployment`]), and the
//! coordinator refuses to start when the contract's `D` is not the native one.

use alloy::primitives::{Address, U256, keccak256};
use ark_bn254::Fr;
use ark_ff::PrimeField;
use pulse_circuits::deployment::{Deployment, DeploymentId};

use crate::contract::{PulseRollup, word};
use crate::{L1Error, connect_to_contract};

/// `D` for the rollup contract at `contract` on chain `chain_id`.
pub fn deployment_id(chain_id: u64, contract: Address) -> DeploymentId {
    // abi.encode(uint256, address): two 32-byte words, both right-aligned.
    let mut encoded = [0u8; 64];
    encoded[24..32].copy_from_slice(&chain_id.to_be_bytes());
    encoded[44..64].copy_from_slice(contract.as_slice());
    DeploymentId(Fr::from_be_bytes_mod_order(keccak256(encoded).as_slice()))
}

/// The deployment of the rollup contract at `contract` on chain `chain_id`, with its id.
pub fn deployment(chain_id: u64, contract: Address) -> Deployment {
    Deployment::new(
        deployment_id(chain_id, contract),
        chain_id,
        contract.into_array(),
    )
}

/// Reads the chain id from the node and `deploymentId()` from the contract, and checks that
/// the contract's id is the one Pulse computes from them.
///
/// # Errors
/// [`L1Error::NoContract`] when there is no contract at `contract`;
/// [`L1Error::DeploymentMismatch`] when its id is not the native one (not a Pulse rollup
/// contract of this version); [`L1Error::Rpc`] when the node does not answer.
pub async fn read_deployment(rpc_url: &str, contract: Address) -> Result<Deployment, L1Error> {
    let (provider, chain_id) = connect_to_contract(rpc_url, contract).await?;
    let onchain: U256 = PulseRollup::new(contract, &provider)
        .deploymentId()
        .call()
        .await
        .map_err(|e| L1Error::contract(rpc_url, e))?;
    let expected = deployment(chain_id, contract);
    if onchain != word(expected.id.0) {
        return Err(L1Error::DeploymentMismatch {
            address: contract,
            chain_id,
            onchain,
            expected: word(expected.id.0),
        });
    }
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_keccak_of_the_abi_encoding_mod_r() {
        use alloy::sol_types::SolValue;
        use ark_ff::BigInteger;
        let contract: Address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
            .parse()
            .unwrap_or_default();
        let chain_id = 31337u64;
        let encoded = (U256::from(chain_id), contract).abi_encode();
        assert_eq!(encoded.len(), 64);
        let digest = U256::from_be_bytes(keccak256(&encoded).0);
        let r = U256::from_be_slice(&Fr::MODULUS.to_bytes_be());
        let id = deployment_id(chain_id, contract);
        assert_eq!(word(id.0), digest % r);
        // Chain and contract both count.
        assert_ne!(deployment_id(1, contract), id);
        assert_ne!(deployment_id(chain_id, Address::ZERO), id);
        let d = deployment(chain_id, contract);
        assert_eq!(d.id, id);
        assert_eq!(
            d.contract_hex(),
            "0x5fbdb2315678afecb367f032d93f642f64180aa3"
        );
    }
}
