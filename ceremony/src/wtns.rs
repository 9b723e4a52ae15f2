//! circom's `.wtns` witness files (version 2): section 1 the field (size 32, the BN254
//! scalar modulus) and the value count, section 2 the values, canonical little-endian, in
//! wire order (the first is the constant 1).

use ark_bn254::Fr;

use crate::FormatError;
use crate::binfile::{self, BinFile, Reader};
use crate::encoding::{fr_from_le, fr_to_le, modulus_le};

/// Parses a `.wtns` file into its values.
///
/// # Errors
/// [`FormatError`]: another field, a count that disagrees with the values, a value not below
/// the modulus, a first value other than 1.
pub fn parse(bytes: Vec<u8>) -> Result<Vec<Fr>, FormatError> {
    let f = BinFile::parse(bytes, b"wtns")?;
    if f.version() > 2 {
        return Err(FormatError::new(format!(
            "wtns version {} (versions up to 2 are known)",
            f.version()
        )));
    }
    let mut h = Reader::new(f.required(1, "header")?, "the wtns header");
    if h.u32()? != 32 || h.take(32)? != modulus_le::<Fr>() {
        return Err(FormatError::new(
            "the witness is not over BN254's scalar field (bn128)",
        ));
    }
    let count = h.u32()? as usize;
    h.finish()?;
    let data = f.required(2, "values")?;
    if data.len() != count.saturating_mul(32) {
        return Err(FormatError::new(format!(
            "the witness declares {count} values but holds {} bytes",
            data.len()
        )));
    }
    let values = data
        .chunks_exact(32)
        .enumerate()
        .map(|(i, c)| {
            fr_from_le(c).ok_or_else(|| {
                FormatError::new(format!("witness value {i} is not below the field modulus"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if values.first() != Some(&Fr::from(1u64)) {
        return Err(FormatError::new(
            "the witness does not start with the constant 1",
        ));
    }
    Ok(values)
}

/// The `.wtns` bytes of `values`.
pub fn to_bytes(values: &[Fr]) -> Vec<u8> {
    let mut header = Vec::with_capacity(40);
    header.extend_from_slice(&32u32.to_le_bytes());
    header.extend_from_slice(&modulus_le::<Fr>());
    header.extend_from_slice(&(values.len() as u32).to_le_bytes());
    let data: Vec<u8> = values.iter().flat_map(fr_to_le).collect();
    let mut out = Vec::with_capacity(data.len() + 64);
    binfile::write(&mut out, b"wtns", 2, &[(1, &header), (2, &data)]).expect("writing to memory");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let v = vec![Fr::from(1u64), Fr::from(33u64), -Fr::from(2u64)];
        assert_eq!(parse(to_bytes(&v)).unwrap(), v);
        let bad = vec![Fr::from(2u64)];
        assert!(
            parse(to_bytes(&bad))
                .unwrap_err()
                .to_string()
                .contains("constant 1")
        );
        let mut b = to_bytes(&v);
        let n = b.len();
        b[n - 1] = 0xff;
        assert!(parse(b).unwrap_err().to_string().contains("value 2"));
    }
}
