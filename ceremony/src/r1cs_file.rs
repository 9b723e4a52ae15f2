//! circom's `.r1cs` constraint files (version 1), read and written.
//!
//! Section 1 is the header (field size 32, the BN254 scalar modulus, wires, public outputs,
//! public inputs, private inputs, labels, constraints); section 2 the constraints, each as
//! the linear combinations `A`, `B`, `C` (a term count, then per term a wire and a canonical
//! little-endian coefficient); section 3 a label per wire. Wires are numbered as in Pulse's
//! own matrices: 0 the constant one, then the public values, then the rest. A Pulse circuit
//! is written with its public inputs as circom public inputs (no outputs).

use std::sync::Arc;

use ark_bn254::Fr;
use ark_ff::Zero;
use pulse_circuits::r1cs::{R1cs, Which};

use crate::FormatError;
use crate::binfile::{self, BinFile, Reader};
use crate::encoding::{fr_from_le, fr_to_le, modulus_le};

/// One linear combination: `(wire, coefficient)` terms.
pub type Lc = Vec<(u32, Fr)>;

/// A circom constraint system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircomR1cs {
    /// Wires, the constant one included (the witness length).
    pub wires: u32,
    /// Public outputs (wires `1..=outputs`).
    pub outputs: u32,
    /// Public inputs (the wires after the outputs).
    pub public_inputs: u32,
    /// Private inputs.
    pub private_inputs: u32,
    /// Labels (section 3 maps each wire to one).
    pub labels: u64,
    /// The constraints `A·w ∘ B·w = C·w`, one `[A, B, C]` each.
    pub constraints: Vec<[Lc; 3]>,
}

impl CircomR1cs {
    /// Public values (outputs and inputs), not counting the constant one.
    pub fn public(&self) -> u32 {
        self.outputs + self.public_inputs
    }

    /// The matrices of a Pulse circuit.
    pub fn from_pulse(r1cs: &R1cs) -> Self {
        let coeffs = r1cs.coefficients();
        let constraints = (0..r1cs.num_constraints())
            .map(|i| {
                [Which::A, Which::B, Which::C].map(|w| {
                    r1cs.row(w, i)
                        .iter()
                        .map(|e| (e.var, coeffs[e.coeff as usize]))
                        .filter(|(_, v)| !v.is_zero())
                        .collect()
                })
            })
            .collect();
        Self {
            wires: r1cs.num_variables() as u32,
            outputs: 0,
            public_inputs: r1cs.num_instance() as u32 - 1,
            private_inputs: 0,
            labels: u64::from(r1cs.num_variables() as u32),
            constraints,
        }
    }

    /// Pulse's compact matrices of this system.
    ///
    /// # Errors
    /// When the system does not fit them (a wire out of range, counts past 32 bits).
    pub fn to_pulse(&self) -> Result<Arc<R1cs>, FormatError> {
        let m = |k: usize| {
            self.constraints
                .iter()
                .map(|c| c[k].iter().map(|&(w, v)| (v, w as usize)).collect())
                .collect()
        };
        R1cs::from_matrices(
            self.public() as usize + 1,
            self.wires as usize,
            [m(0), m(1), m(2)],
        )
        .map(Arc::new)
        .map_err(|e| FormatError::new(format!("the constraint system does not fit: {e}")))
    }

    /// Parses a `.r1cs` file.
    ///
    /// # Errors
    /// [`FormatError`] naming what is wrong: another field, a wire past the wire count,
    /// a non-canonical coefficient, custom gates (Groth16 cannot use them).
    pub fn parse(bytes: Vec<u8>) -> Result<Self, FormatError> {
        let f = BinFile::parse(bytes, b"r1cs")?;
        if f.version() != 1 {
            return Err(FormatError::new(format!(
                "r1cs version {} (only version 1 is known)",
                f.version()
            )));
        }
        if f.section(4).is_some() || f.section(5).is_some() {
            return Err(FormatError::new(
                "the r1cs uses custom gates, which a Groth16 setup cannot take",
            ));
        }
        let mut h = Reader::new(f.required(1, "header")?, "the r1cs header");
        if h.u32()? != 32 || h.take(32)? != modulus_le::<Fr>() {
            return Err(FormatError::new(
                "the r1cs is not over BN254's scalar field (bn128)",
            ));
        }
        let wires = h.u32()?;
        let outputs = h.u32()?;
        let public_inputs = h.u32()?;
        let private_inputs = h.u32()?;
        let labels = h.u64()?;
        let count = h.u32()?;
        h.finish()?;
        if u64::from(outputs) + u64::from(public_inputs) + u64::from(private_inputs)
            >= u64::from(wires)
        {
            return Err(FormatError::new(format!(
                "the r1cs declares {wires} wires but more inputs and outputs than that"
            )));
        }
        // Circom writes a label for every wire: the map bounds the wire count by the file's
        // size (a tiny file declaring 2^32 wires would otherwise make keys of 2^32 points).
        let map = f.required(3, "wire-to-label map")?;
        if map.len() as u64 != u64::from(wires) * 8 {
            return Err(FormatError::new(format!(
                "the r1cs declares {wires} wires but its wire-to-label map holds {} bytes, not {}",
                map.len(),
                u64::from(wires) * 8
            )));
        }
        let mut c = Reader::new(f.required(2, "constraints")?, "the r1cs constraints");
        // Each constraint takes at least 12 bytes: no more are allocated than the file holds.
        let mut constraints = Vec::with_capacity((count as usize).min(c.remaining() / 12));
        for i in 0..count {
            let mut lcs: [Lc; 3] = Default::default();
            for lc in &mut lcs {
                let terms = c.u32()? as usize;
                if terms > c.remaining() / 36 {
                    return Err(FormatError::new(format!(
                        "constraint {i} declares {terms} terms, more than the file holds"
                    )));
                }
                lc.reserve(terms);
                for _ in 0..terms {
                    let wire = c.u32()?;
                    let v = fr_from_le(c.take(32)?).ok_or_else(|| {
                        FormatError::new(format!(
                            "constraint {i}: a coefficient is not below the field modulus"
                        ))
                    })?;
                    if wire >= wires {
                        return Err(FormatError::new(format!(
                            "constraint {i} names wire {wire} of {wires}"
                        )));
                    }
                    lc.push((wire, v));
                }
            }
            constraints.push(lcs);
        }
        c.finish()?;
        Ok(Self {
            wires,
            outputs,
            public_inputs,
            private_inputs,
            labels,
            constraints,
        })
    }

    /// The `.r1cs` bytes (wire `i` labelled `i`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut header = Vec::with_capacity(64);
        header.extend_from_slice(&32u32.to_le_bytes());
        header.extend_from_slice(&modulus_le::<Fr>());
        for v in [
            self.wires,
            self.outputs,
            self.public_inputs,
            self.private_inputs,
        ] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        header.extend_from_slice(&self.labels.to_le_bytes());
        header.extend_from_slice(&(self.constraints.len() as u32).to_le_bytes());
        let mut body = Vec::new();
        for c in &self.constraints {
            for lc in c {
                // Every term as it is, zero coefficients included (circom writes none, but
                // a file that has them reads back the same).
                body.extend_from_slice(&(lc.len() as u32).to_le_bytes());
                for (w, v) in lc {
                    body.extend_from_slice(&w.to_le_bytes());
                    body.extend_from_slice(&fr_to_le(v));
                }
            }
        }
        let labels: Vec<u8> = (0..u64::from(self.wires))
            .flat_map(u64::to_le_bytes)
            .collect();
        let mut out = Vec::with_capacity(body.len() + labels.len() + 128);
        binfile::write(
            &mut out,
            b"r1cs",
            1,
            &[(1, &header), (2, &body), (3, &labels)],
        )
        .expect("writing to memory");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> CircomR1cs {
        // a·b = out; b·b = c - 2 (wires: 1 out, 2 a(pub), 3 b, 4 c)
        let one = Fr::from(1u64);
        CircomR1cs {
            wires: 5,
            outputs: 1,
            public_inputs: 1,
            private_inputs: 1,
            labels: 5,
            constraints: vec![
                [vec![(2, one)], vec![(3, one)], vec![(1, one)]],
                [
                    vec![(3, one)],
                    vec![(3, one)],
                    vec![(4, one), (0, -Fr::from(2u64))],
                ],
            ],
        }
    }

    #[test]
    fn round_trips_through_bytes_and_pulse_matrices() {
        let t = toy();
        let back = CircomR1cs::parse(t.to_bytes()).unwrap();
        assert_eq!(back, t);
        let pulse = t.to_pulse().unwrap();
        assert_eq!(pulse.num_constraints(), 2);
        assert_eq!(pulse.num_instance(), 3);
        let again = CircomR1cs::from_pulse(&pulse);
        assert_eq!(again.constraints, t.constraints);
    }

    #[test]
    fn refuses_out_of_range_wires_and_truncation() {
        let mut t = toy();
        t.constraints[0][0][0].0 = 9;
        let err = CircomR1cs::parse(t.to_bytes()).unwrap_err().to_string();
        assert!(err.contains("names wire 9 of 5"), "{err}");
        let mut b = toy().to_bytes();
        b.truncate(b.len() - 3);
        assert!(CircomR1cs::parse(b).is_err());
    }

    /// Found by `ceremony_file`: a term with a zero coefficient was dropped when written.
    #[test]
    fn zero_coefficients_read_back_as_written() {
        let mut t = toy();
        t.constraints[1][2].push((2, Fr::from(0u64)));
        assert_eq!(CircomR1cs::parse(t.to_bytes()).unwrap(), t);
    }

    /// The fuzz target `ceremony_file` found it: a 256-byte file declaring 167M wires parsed,
    /// and writing it back took 1.3 GB. The wire count is now bounded by the label map.
    #[test]
    fn refuses_a_wire_count_the_file_does_not_hold() {
        let mut b = toy().to_bytes();
        // The header's wire count: after the container's 12 bytes, the section's 12, the
        // field size and the 32-byte modulus.
        assert_eq!(b[60..64], 5u32.to_le_bytes());
        b[60..64].copy_from_slice(&0x0a00_0003u32.to_le_bytes());
        let err = CircomR1cs::parse(b).unwrap_err().to_string();
        assert!(
            err.contains("declares 167772163 wires but its wire-to-label map holds 40 bytes"),
            "{err}"
        );
    }
}
