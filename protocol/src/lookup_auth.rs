//! Signed lookups: the coordinator's (and a follower's) lookups answer only requests signed
//! with the key of an account that may read the answer.
//!
//! A request carries
//!
//! ```text
//! Authorization: Pulse-EdDSA account=<id>, ts=<unix ms>, nonce=<16 hex digits>,
//!                r8x=<decimal>, r8y=<decimal>, s=<decimal>
//! ```
//!
//! an EdDSA-Poseidon signature (the transactions' scheme, circomlib's) by account `<id>`'s
//! key over
//!
//! ```text
//! Poseidon(LOOKUP_TAG, deploymentId, account, ts, Fr(SHA-256(nonce ‖ " " ‖ method ‖ " " ‖ path?query)))
//! ```
//!
//! Five inputs, where a transaction's message has six: the Poseidon instances differ, so no
//! lookup signature is a transaction signature or the reverse. The deployment id binds it
//! to one rollup, the method and path to one request; the server refuses a timestamp more
//! than [`MAX_SKEW`] from its clock (stale) and a nonce it has seen from the account within
//! that window (replayed).

use std::time::Duration;

use ark_ff::PrimeField;
use pulse_circuits::Fr;
use pulse_circuits::babyjubjub::Point;
use pulse_circuits::deployment::DeploymentId;
use pulse_circuits::eddsa::{PrivateKey, Signature};
use pulse_circuits::field::{fr_from_decimal, fr_to_decimal};
use pulse_circuits::poseidon;
use sha2::{Digest, Sha256};

/// The scheme name in the `Authorization` header.
pub const SCHEME: &str = "Pulse-EdDSA";

/// How far a request's timestamp may be from the server's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(60);

/// The domain tag, the first input of the message: the field element of the ASCII bytes
/// `pulse.lookup.v1`.
pub fn lookup_tag() -> Fr {
    Fr::from_be_bytes_mod_order(b"pulse.lookup.v1")
}

/// A signed lookup's authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupAuth {
    /// The signing account.
    pub account: u64,
    /// When it was signed (unix milliseconds).
    pub ts_ms: u64,
    /// A random number, once per request.
    pub nonce: u64,
    /// The signature.
    pub signature: Signature,
}

/// The field element a request's method, path and nonce hash to.
fn request_hash(nonce: u64, method: &str, path_and_query: &str) -> Fr {
    let digest = Sha256::digest(format!("{nonce:016x} {method} {path_and_query}").as_bytes());
    Fr::from_be_bytes_mod_order(&digest)
}

/// The message an account signs for one request.
pub fn message(
    deployment: DeploymentId,
    account: u64,
    ts_ms: u64,
    nonce: u64,
    method: &str,
    path_and_query: &str,
) -> Fr {
    poseidon::hash_n([
        lookup_tag(),
        deployment.0,
        Fr::from(account),
        Fr::from(ts_ms),
        request_hash(nonce, method, path_and_query),
    ])
}

impl LookupAuth {
    /// Signs a request as `account` with `key`.
    pub fn sign(
        key: &PrivateKey,
        account: u64,
        deployment: DeploymentId,
        ts_ms: u64,
        nonce: u64,
        method: &str,
        path_and_query: &str,
    ) -> Self {
        let msg = message(deployment, account, ts_ms, nonce, method, path_and_query);
        Self {
            account,
            ts_ms,
            nonce,
            signature: key.sign(msg),
        }
    }

    /// The message this authorization's signature must be over, for this request.
    pub fn message(&self, deployment: DeploymentId, method: &str, path_and_query: &str) -> Fr {
        message(
            deployment,
            self.account,
            self.ts_ms,
            self.nonce,
            method,
            path_and_query,
        )
    }

    /// The `Authorization` header's value.
    pub fn header(&self) -> String {
        format!(
            "{SCHEME} account={}, ts={}, nonce={:016x}, r8x={}, r8y={}, s={}",
            self.account,
            self.ts_ms,
            self.nonce,
            fr_to_decimal(&self.signature.r8.x),
            fr_to_decimal(&self.signature.r8.y),
            self.signature.s
        )
    }

    /// Parses an `Authorization` header's value.
    ///
    /// # Errors
    /// What is missing or malformed, and the form expected.
    pub fn parse(header: &str) -> Result<Self, String> {
        let form = format!(
            "expected `{SCHEME} account=ID, ts=UNIX_MS, nonce=16HEX, r8x=DEC, r8y=DEC, s=DEC`"
        );
        if header.len() > 1024 {
            return Err(format!("the authorization is too long; {form}"));
        }
        let rest = header
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| format!("not a {SCHEME} authorization; {form}"))?;
        let mut fields = std::collections::BTreeMap::new();
        for part in rest.split(',') {
            let (k, v) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not key=value; {form}"))?;
            if fields.insert(k.to_owned(), v.to_owned()).is_some() {
                return Err(format!("{k} given twice; {form}"));
            }
        }
        let get = |k: &str| {
            fields
                .get(k)
                .map(String::as_str)
                .ok_or_else(|| format!("no {k}; {form}"))
        };
        let int = |k: &str| -> Result<u64, String> {
            get(k)?
                .parse()
                .map_err(|_| format!("{k} is not a whole number; {form}"))
        };
        let fr = |k: &str| -> Result<Fr, String> {
            fr_from_decimal(get(k)?).map_err(|e| format!("{k}: {e}; {form}"))
        };
        if fields.len() != 6 {
            return Err(format!("unknown fields; {form}"));
        }
        let nonce_text = get("nonce")?;
        if nonce_text.len() != 16 {
            return Err(format!("nonce is not 16 hex digits; {form}"));
        }
        let nonce = u64::from_str_radix(nonce_text, 16)
            .map_err(|_| format!("nonce is not 16 hex digits; {form}"))?;
        let s_text = get("s")?;
        if s_text.is_empty() || s_text.len() > 80 || !s_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("s is not a decimal number; {form}"));
        }
        let s = num_bigint::BigUint::parse_bytes(s_text.as_bytes(), 10)
            .ok_or_else(|| format!("s is not a decimal number; {form}"))?;
        Ok(Self {
            account: int("account")?,
            ts_ms: int("ts")?,
            nonce,
            signature: Signature {
                r8: Point {
                    x: fr("r8x")?,
                    y: fr("r8y")?,
                },
                s,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_binds_the_request() {
        let key = PrivateKey::from_bytes([7; 32]);
        let d = DeploymentId(Fr::from(99u64));
        let a = LookupAuth::sign(&key, 4, d, 1_700_000_000_000, 0xabc, "GET", "/records/3");
        let back = LookupAuth::parse(&a.header()).expect("parse");
        assert_eq!(back, a);
        let pk = key.public_key();
        pk.verify(back.message(d, "GET", "/records/3"), &back.signature)
            .expect("verifies");
        // Another path, method, deployment, account or time is another message.
        for (dd, m, p) in [
            (d, "GET", "/records/4"),
            (d, "POST", "/records/3"),
            (DeploymentId(Fr::from(98u64)), "GET", "/records/3"),
        ] {
            assert!(pk.verify(back.message(dd, m, p), &back.signature).is_err());
        }
        let other = LookupAuth {
            account: 5,
            ..back.clone()
        };
        assert!(
            pk.verify(other.message(d, "GET", "/records/3"), &other.signature)
                .is_err()
        );
        // Not a transaction message: six Poseidon inputs there, five here.
        assert_ne!(lookup_tag(), Fr::from(0u64));
    }

    #[test]
    fn malformed_headers_say_what_is_expected() {
        for bad in [
            "",
            "Bearer abc",
            "Pulse-EdDSA account=1",
            "Pulse-EdDSA account=x, ts=1, nonce=0000000000000001, r8x=1, r8y=1, s=1",
            "Pulse-EdDSA account=1, ts=1, nonce=1, r8x=1, r8y=1, s=1",
            "Pulse-EdDSA account=1, account=1, ts=1, nonce=0000000000000001, r8x=1, r8y=1, s=1",
            "Pulse-EdDSA account=1, ts=1, nonce=0000000000000001, r8x=1, r8y=1, s=1, extra=2",
            "Pulse-EdDSA account=1, ts=1, nonce=0000000000000001, r8x=1, r8y=1, s=-1",
        ] {
            let e = LookupAuth::parse(bad).expect_err(bad);
            assert!(e.contains("expected `Pulse-EdDSA"), "{bad}: {e}");
        }
    }
}
