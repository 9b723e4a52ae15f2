//! Field elements as text. Every JSON document of Pulse (transactions, proofs, Merkle proofs,
//! test vectors) writes BN254 scalar field elements in canonical decimal, as circomlibjs
//! prints them; this module is the one place that reads and writes that form.

use ark_bn254::Fr;
use ark_ff::PrimeField;
use num_bigint::BigUint;
use serde::Deserialize;

/// Why a string is not a canonical field element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Empty, or something other than the digits 0-9.
    #[error("`{0}` is not a decimal number (digits 0-9 only, no sign)")]
    NotDecimal(String),
    /// A number written with leading zeros.
    #[error("`{0}` has leading zeros; write field elements in canonical decimal")]
    LeadingZeros(String),
    /// Not below the modulus (Pulse never reduces silently).
    #[error("`{0}` is not below the BN254 scalar field modulus")]
    OutOfRange(String),
}

fn shown(s: &str) -> String {
    if s.len() <= 80 {
        s.to_string()
    } else {
        format!("{}…", &s[..s.floor_char_boundary(80)])
    }
}

/// Parse a canonical decimal (digits only, no sign, no leading zeros except `"0"`) below the
/// BN254 scalar field modulus.
///
/// # Errors
/// [`DecimalError`] naming the rule the string breaks.
pub fn fr_from_decimal(s: &str) -> Result<Fr, DecimalError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::NotDecimal(shown(s)));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(DecimalError::LeadingZeros(shown(s)));
    }
    // The modulus has 77 digits: anything longer is out of range without parsing.
    if s.len() > 77 {
        return Err(DecimalError::OutOfRange(shown(s)));
    }
    let n =
        BigUint::parse_bytes(s.as_bytes(), 10).ok_or_else(|| DecimalError::NotDecimal(shown(s)))?;
    if n >= BigUint::from(Fr::MODULUS) {
        return Err(DecimalError::OutOfRange(shown(s)));
    }
    Ok(Fr::from(n))
}

/// The canonical decimal form of a field element.
pub fn fr_to_decimal(x: &Fr) -> String {
    BigUint::from(x.into_bigint()).to_string()
}

/// Serde for a field element as a decimal string.
pub mod fr_string {
    use super::*;

    /// Serialize as a decimal string.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: serde::Serializer>(x: &Fr, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fr_to_decimal(x))
    }

    /// Deserialize from a canonical decimal string.
    ///
    /// # Errors
    /// A [`DecimalError`] message.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Fr, D::Error> {
        let s = String::deserialize(d)?;
        fr_from_decimal(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde for a list of field elements as decimal strings.
pub mod fr_string_vec {
    use super::*;
    use serde::ser::SerializeSeq;

    /// Serialize as a list of decimal strings.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: serde::Serializer>(v: &[Fr], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&fr_to_decimal(x))?;
        }
        seq.end()
    }

    /// Deserialize from a list of canonical decimal strings.
    ///
    /// # Errors
    /// A [`DecimalError`] message for the first bad element.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Fr>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| fr_from_decimal(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Serde for a fixed-size array of field elements as decimal strings.
pub mod fr_string_array {
    use super::*;

    /// Serialize as a list of decimal strings.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: serde::Serializer, const N: usize>(
        v: &[Fr; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        super::fr_string_vec::serialize(v, s)
    }

    /// Deserialize from exactly `N` canonical decimal strings.
    ///
    /// # Errors
    /// A [`DecimalError`] message, or a length message.
    pub fn deserialize<'de, D: serde::Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[Fr; N], D::Error> {
        let v = super::fr_string_vec::deserialize(d)?;
        let len = v.len();
        v.try_into().map_err(|_| {
            serde::de::Error::custom(format!("expected {N} field elements, found {len}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_decimals_only() {
        assert_eq!(fr_from_decimal("0"), Ok(Fr::from(0u64)));
        assert_eq!(fr_from_decimal("42"), Ok(Fr::from(42u64)));
        let r_minus_1 = fr_to_decimal(&-Fr::from(1u64));
        assert_eq!(fr_from_decimal(&r_minus_1), Ok(-Fr::from(1u64)));
        let r = "21888242871839275222246405745257275088548364400416034343698204186575808495617";
        assert!(matches!(
            fr_from_decimal(r),
            Err(DecimalError::OutOfRange(_))
        ));
        assert!(matches!(
            fr_from_decimal(&"9".repeat(200)),
            Err(DecimalError::OutOfRange(_))
        ));
        assert!(matches!(
            fr_from_decimal("042"),
            Err(DecimalError::LeadingZeros(_))
        ));
        for bad in ["", "-1", "+1", "0x10", "1 ", "1e3", "١"] {
            assert!(
                matches!(fr_from_decimal(bad), Err(DecimalError::NotDecimal(_))),
                "{bad:?}"
            );
        }
        let long = "x".repeat(10_000);
        assert!(fr_from_decimal(&long).unwrap_err().to_string().len() < 200);
    }
}
