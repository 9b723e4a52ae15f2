//! ECIES over BabyJubJub: a 32-byte file key wrapped for one account's public key.
//!
//! Pulse has no separate encryption-key directory: the key a record is wrapped for is the
//! BabyJubJub EdDSA key in the recipient's account leaf, which anyone can check by Merkle
//! proof against the state root held by the L1 contract. The recipient's secret is the
//! scalar its public key is derived from (circomlib: `A = Base8 · (s >> 3)` with `s` the
//! pruned BLAKE-512 half of the key, see [`pulse_circuits::eddsa`]), exposed by
//! [`PrivateKey::secret_scalar`].
//!
//! The construction is ECIES / DHIES (Abdalla, Bellare, Rogaway, "The Oracle Diffie-Hellman
//! Assumptions and an Analysis of DHIES", CT-RSA 2001), with HKDF (RFC 5869) and
//! ChaCha20-Poly1305 (RFC 8439):
//!
//! ```text
//! e  ← uniform in [1, l)           ephemeral scalar, used once
//! E  = Base8 · e                   sent as `ephemeral`
//! S  = e · PK                      PK checked: on the curve, in the subgroup, not O
//! k  = HKDF-SHA256(salt = none, ikm = enc(S) ‖ enc(E) ‖ enc(PK), info = "pulse/wrap/v1")
//! ct = ChaCha20-Poly1305(k, nonce, file key, aad = "pulse/wrap/v1")
//! ```
//!
//! where `enc(P)` is `x ‖ y`, each coordinate as 32 canonical little-endian bytes (as in the
//! transaction encoding). The recipient computes `S = a · E` with its scalar `a`, after
//! checking that `E` is in the prime-order subgroup and not the identity (so a crafted `E`
//! with a small-order component learns nothing about `a`).
//!
//! Binding `E` and `PK` into the key derivation makes the wrap non-malleable in the usual
//! ECIES sense. Scalar multiplication in `pulse-circuits` is variable-time; unwrapping is
//! done on the key owner's machine, where that timing is not observable by an attacker who
//! does not already run code there.

use ark_ff::{BigInteger, PrimeField, Zero};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use pulse_circuits::babyjubjub::Point;
use pulse_circuits::eddsa::{EddsaError, PrivateKey, PublicKey};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

/// The domain label of the key derivation and the associated data of the wrap.
pub const WRAP_LABEL: &[u8] = b"pulse/wrap/v1";
/// Bytes of a wrapped 32-byte key: the key and the 16-byte Poly1305 tag.
pub const WRAPPED_LEN: usize = 32 + 16;

/// A file key wrapped for one public key. Safe to publish: only the holder of the
/// recipient's private key can unwrap it.
///
/// JSON: `{ "ephemeral": ["x", "y"], "nonce": "<base64, 12 bytes>", "ciphertext": "<base64,
/// 48 bytes>" }` (the point as decimal strings, as circomlibjs prints points).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedKey {
    /// The ephemeral public point `E = Base8 · e`.
    pub ephemeral: Point,
    /// The ChaCha20-Poly1305 nonce.
    #[serde(with = "crate::b64::array")]
    pub nonce: [u8; 12],
    /// The encrypted file key and its tag.
    #[serde(with = "crate::b64::array")]
    pub ciphertext: [u8; WRAPPED_LEN],
}

/// Why a key could not be wrapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrapError {
    /// The recipient's public key is not a valid key (off the curve, outside the
    /// prime-order subgroup, or the identity).
    #[error(
        "the recipient's public key is not usable for encryption: {0}; take it from the \
         recipient's account leaf"
    )]
    InvalidRecipientKey(#[source] EddsaError),
}

/// Why a wrapped key could not be unwrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnwrapError {
    /// The ephemeral point is not a point of the prime-order subgroup other than the
    /// identity: the wrapped key was not produced by [`wrap_key`].
    #[error(
        "the wrapped key's ephemeral point is not a valid BabyJubJub subgroup point: the \
         wrapped key is corrupt"
    )]
    InvalidEphemeral,
    /// Authentication failed: the key was wrapped for another public key, or tampered with.
    #[error(
        "the wrapped key does not open with this private key: it was wrapped for another \
         key, or altered"
    )]
    Decrypt,
}

/// Wraps `file_key` for `recipient`.
///
/// # Errors
/// [`WrapError::InvalidRecipientKey`] when `recipient` fails [`PublicKey::validate`].
pub fn wrap_key<R: RngCore + CryptoRng>(
    file_key: &[u8; 32],
    recipient: &PublicKey,
    rng: &mut R,
) -> Result<WrappedKey, WrapError> {
    recipient
        .validate()
        .map_err(WrapError::InvalidRecipientKey)?;
    let mut e = random_scalar(rng);
    let ephemeral = Point::base8().mul_scalar_fr(&e);
    let shared = recipient.0.mul_scalar_fr(&e);
    e.zeroize();
    // PK has order l and 0 < e < l, so S is never the identity.
    let key = derive_key(&shared, &ephemeral, &recipient.0);
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    // ChaCha20-Poly1305 fails only for messages over 256 GiB; this one is 32 bytes and its
    // ciphertext 32 bytes plus the tag.
    #[allow(clippy::expect_used)]
    let ciphertext: [u8; WRAPPED_LEN] = ChaCha20Poly1305::new(Key::from_slice(key.as_slice()))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: file_key,
                aad: WRAP_LABEL,
            },
        )
        .expect("a 32-byte message always encrypts")
        .try_into()
        .expect("a 32-byte message encrypts to 48 bytes");
    Ok(WrappedKey {
        ephemeral,
        nonce,
        ciphertext,
    })
}

/// Unwraps a file key with the recipient's private key.
///
/// # Errors
/// [`UnwrapError::InvalidEphemeral`] for an ephemeral point outside the prime-order subgroup
/// or the identity; [`UnwrapError::Decrypt`] when the key was wrapped for another key or
/// altered.
pub fn unwrap_key(
    wrapped: &WrappedKey,
    key: &PrivateKey,
) -> Result<Zeroizing<[u8; 32]>, UnwrapError> {
    let e = &wrapped.ephemeral;
    if e.is_identity() || !e.is_in_subgroup() {
        return Err(UnwrapError::InvalidEphemeral);
    }
    let mut a = key.secret_scalar();
    let recipient = Point::base8().mul_scalar_fr(&a);
    let shared = e.mul_scalar_fr(&a);
    a.zeroize();
    if shared.is_identity() {
        return Err(UnwrapError::InvalidEphemeral);
    }
    let k = derive_key(&shared, e, &recipient);
    let opened = Zeroizing::new(
        ChaCha20Poly1305::new(Key::from_slice(k.as_slice()))
            .decrypt(
                Nonce::from_slice(&wrapped.nonce),
                Payload {
                    msg: &wrapped.ciphertext,
                    aad: WRAP_LABEL,
                },
            )
            .map_err(|_| UnwrapError::Decrypt)?,
    );
    let mut file_key = Zeroizing::new([0u8; 32]);
    if opened.len() != file_key.len() {
        return Err(UnwrapError::Decrypt);
    }
    file_key.copy_from_slice(&opened);
    Ok(file_key)
}

/// A uniform scalar in `[1, l)`: 64 random bytes reduced mod `l` (bias below 2^-260).
fn random_scalar<R: RngCore + CryptoRng>(rng: &mut R) -> ark_ed_on_bn254::Fr {
    let mut wide = Zeroizing::new([0u8; 64]);
    loop {
        rng.fill_bytes(wide.as_mut_slice());
        let e = ark_ed_on_bn254::Fr::from_le_bytes_mod_order(wide.as_slice());
        if !e.is_zero() {
            return e;
        }
    }
}

/// `HKDF-SHA256(ikm = enc(S) ‖ enc(E) ‖ enc(PK), info = WRAP_LABEL)`, 32 bytes.
fn derive_key(shared: &Point, ephemeral: &Point, recipient: &Point) -> Zeroizing<[u8; 32]> {
    let mut ikm = Zeroizing::new([0u8; 6 * 32]);
    for (i, coordinate) in [
        shared.x,
        shared.y,
        ephemeral.x,
        ephemeral.y,
        recipient.x,
        recipient.y,
    ]
    .iter()
    .enumerate()
    {
        let bytes = Zeroizing::new(coordinate.into_bigint().to_bytes_le());
        ikm[i * 32..(i + 1) * 32].copy_from_slice(&bytes);
    }
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte output limit.
    #[allow(clippy::expect_used)]
    Hkdf::<Sha256>::new(None, ikm.as_slice())
        .expand(WRAP_LABEL, okm.as_mut_slice())
        .expect("HKDF-SHA256 expands to 32 bytes");
    okm
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(0x5EA1)
    }

    #[test]
    fn the_scalar_times_base8_is_the_public_key() {
        let mut rng = rng();
        for _ in 0..8 {
            let key = PrivateKey::random(&mut rng);
            let a = key.secret_scalar();
            assert!(!a.is_zero());
            assert_eq!(Point::base8().mul_scalar_fr(&a), key.public_key().0);
        }
    }

    #[test]
    fn wrap_and_unwrap_round_trip() {
        let mut rng = rng();
        for _ in 0..4 {
            let key = PrivateKey::random(&mut rng);
            let mut file_key = [0u8; 32];
            rng.fill_bytes(&mut file_key);
            let wrapped = wrap_key(&file_key, &key.public_key(), &mut rng).unwrap();
            assert_eq!(*unwrap_key(&wrapped, &key).unwrap(), file_key);
            // Fresh randomness every time: two wraps of one key share nothing visible.
            let again = wrap_key(&file_key, &key.public_key(), &mut rng).unwrap();
            assert_ne!(again.ephemeral, wrapped.ephemeral);
            assert_ne!(again.ciphertext, wrapped.ciphertext);
            let json = serde_json::to_string(&wrapped).unwrap();
            assert_eq!(serde_json::from_str::<WrappedKey>(&json).unwrap(), wrapped);
        }
    }

    #[test]
    fn another_key_cannot_unwrap() {
        let mut rng = rng();
        let key = PrivateKey::random(&mut rng);
        let other = PrivateKey::random(&mut rng);
        let wrapped = wrap_key(&[7; 32], &key.public_key(), &mut rng).unwrap();
        assert_eq!(unwrap_key(&wrapped, &other), Err(UnwrapError::Decrypt));
    }

    #[test]
    fn tampering_is_detected() {
        let mut rng = rng();
        let key = PrivateKey::random(&mut rng);
        let wrapped = wrap_key(&[7; 32], &key.public_key(), &mut rng).unwrap();

        for i in [0, 31, 32, 47] {
            let mut bad = wrapped.clone();
            bad.ciphertext[i] ^= 1;
            assert_eq!(
                unwrap_key(&bad, &key),
                Err(UnwrapError::Decrypt),
                "byte {i}"
            );
        }
        let mut bad = wrapped.clone();
        bad.nonce[0] ^= 1;
        assert_eq!(unwrap_key(&bad, &key), Err(UnwrapError::Decrypt));

        // Another subgroup point as E: a different shared secret, so the tag fails.
        let mut bad = wrapped.clone();
        bad.ephemeral = wrapped.ephemeral.add(&Point::base8());
        assert_eq!(unwrap_key(&bad, &key), Err(UnwrapError::Decrypt));

        // Points that must never reach the scalar multiplication.
        let order2 = Point::new(ark_bn254::Fr::zero(), -ark_bn254::Fr::from(1u8));
        for e in [
            Point::identity(),
            order2,
            wrapped.ephemeral.add(&order2),
            Point::new(
                wrapped.ephemeral.x,
                wrapped.ephemeral.y + ark_bn254::Fr::from(1u8),
            ),
        ] {
            let mut bad = wrapped.clone();
            bad.ephemeral = e;
            assert_eq!(unwrap_key(&bad, &key), Err(UnwrapError::InvalidEphemeral));
        }
    }

    #[test]
    fn invalid_recipient_keys_are_refused() {
        let mut rng = rng();
        let order2 = Point::new(ark_bn254::Fr::zero(), -ark_bn254::Fr::from(1u8));
        let pk = PrivateKey::random(&mut rng).public_key();
        for bad in [
            Point::identity(),
            order2,
            pk.0.add(&order2),
            Point::new(pk.0.x, pk.0.y + ark_bn254::Fr::from(1u8)),
        ] {
            let err = wrap_key(&[1; 32], &PublicKey(bad), &mut rng).unwrap_err();
            assert!(matches!(err, WrapError::InvalidRecipientKey(_)), "{err}");
        }
    }

    #[test]
    fn malformed_json_is_refused() {
        let mut rng = rng();
        let key = PrivateKey::random(&mut rng);
        let wrapped = wrap_key(&[7; 32], &key.public_key(), &mut rng).unwrap();
        let mut v = serde_json::to_value(&wrapped).unwrap();
        v["extra"] = 1.into();
        assert!(serde_json::from_value::<WrappedKey>(v).is_err());
        let mut v = serde_json::to_value(&wrapped).unwrap();
        v["ciphertext"] = crate::b64::encode(&[0; 47]).into();
        let err = serde_json::from_value::<WrappedKey>(v).unwrap_err();
        assert!(err.to_string().contains("expected 48 bytes"), "{err}");
        let mut v = serde_json::to_value(&wrapped).unwrap();
        v["nonce"] = "not base64!".into();
        assert!(serde_json::from_value::<WrappedKey>(v).is_err());
    }
}
