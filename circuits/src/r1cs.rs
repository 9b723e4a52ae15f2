//! A circuit's R1CS matrices in a compact form, and their file format.
//!
//! A Groth16 prover needs the constraint matrices `A`, `B`, `C` for the QAP reduction.
//! `ark-groth16` rebuilds them on every proof by synthesizing the circuit with its linear
//! combinations kept (the largest part of its memory); provers fed by circom read them from
//! the key file instead (rapidsnark, snarkjs). [`R1cs`] is that form for Pulse: made once at
//! setup ([`R1cs::of_circuit`], or from `ark-relations` matrices), written beside the keys
//! as `constraints.r1cs`, and handed to the prover, which then synthesizes only the
//! assignment.
//!
//! In memory each matrix is in compressed-row form: a row start per constraint and, per
//! non-zero entry, the variable (`u32`) and the index (`u32`) of its coefficient in one table
//! of the circuit's distinct coefficients. Index 0 is always 1 and index 1 is always -1,
//! so a prover adds or subtracts those without a multiplication. Eight bytes an entry,
//! against the forty of an `ark-relations` entry (a field element and a `usize`) plus a
//! vector per row.
//!
//! ## File format, version 1 (all integers little-endian)
//!
//! | field | size |
//! |---|---|
//! | magic `pulse-r1cs\0\0` | 12 bytes |
//! | version (1) | u32 |
//! | instance variables `ni` (the constant 1 and the public inputs) | u32 |
//! | variables `nv` (instance and witness, `ni ≤ nv`) | u32 |
//! | constraints `m` | u32 |
//! | distinct coefficients `k` (≥ 2) | u32 |
//! | the coefficients, each canonical (below the BN254 scalar modulus), the first two 1 and -1 | `k` × 32 bytes |
//! | then for each of `A`, `B`, `C`: entries `e` | u32 |
//! | its row lengths, summing to `e` | `m` × u32 |
//! | its entries: variable (below `nv`), coefficient index (below `k`) | `e` × 8 bytes |
//!
//! Nothing follows. [`R1cs::from_bytes`] checks all of it and allocates only what the input's
//! length already accounts for, so a hostile file is an error, never a large allocation.

use std::collections::HashMap;

use ark_bn254::Fr;
use ark_ff::{BigInteger, Field, One, PrimeField, Zero};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, Matrix, OptimizationGoal, R1CS_PREDICATE_LABEL,
    SynthesisError, SynthesisMode,
};

/// The `ark-relations` R1CS matrices `[A, B, C]` of a finalised constraint system built with
/// matrices. A caller that drops the constraint system before compacting them
/// ([`R1cs::from_matrices`]) never holds its linear combinations, the `ark-relations` matrices
/// and the compact ones at once.
///
/// # Errors
/// A system without R1CS constraints, or matrices of the wrong row count.
pub fn matrices_of(
    cs: &ark_relations::gr1cs::ConstraintSystemRef<Fr>,
) -> Result<[Matrix<Fr>; 3], R1csError> {
    let num_constraints = cs.num_constraints();
    let mut by_predicate = cs.to_matrices()?;
    let r1cs = by_predicate
        .remove(R1CS_PREDICATE_LABEL)
        .ok_or_else(|| R1csError::Malformed("no R1CS constraints".into()))?;
    let Ok([a, b, c]) = <[Matrix<Fr>; 3]>::try_from(r1cs) else {
        return Err(R1csError::Malformed("R1CS needs three matrices".into()));
    };
    for m in [&a, &b, &c] {
        if m.len() != num_constraints {
            return Err(R1csError::Malformed(format!(
                "a matrix has {} rows for {num_constraints} constraints",
                m.len()
            )));
        }
    }
    Ok([a, b, c])
}

/// The magic bytes that start a `constraints.r1cs` file.
pub const MAGIC: &[u8; 12] = b"pulse-r1cs\0\0";
/// The file format version [`R1cs::to_bytes`] writes and [`R1cs::from_bytes`] reads.
pub const VERSION: u32 = 1;

/// Why R1CS matrices or a `constraints.r1cs` file were refused.
#[derive(Debug, thiserror::Error)]
pub enum R1csError {
    /// The input is not a version-1 `constraints.r1cs` file, or is damaged.
    #[error("not a valid constraints.r1cs file: {0}")]
    Format(String),
    /// The circuit is larger than the format holds (counts are 32-bit).
    #[error("the constraint system is too large for the r1cs format: {0}")]
    TooLarge(&'static str),
    /// The matrices are not an R1CS of the declared shape.
    #[error("malformed constraint matrices: {0}")]
    Malformed(String),
    /// The circuit failed to synthesize.
    #[error("circuit synthesis failed: {0}")]
    Synthesis(#[from] SynthesisError),
}

/// One non-zero entry of a matrix row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The variable: `0` is the constant 1, then the public inputs, then the witness.
    pub var: u32,
    /// Index into [`R1cs::coefficients`]: 0 is 1, 1 is -1.
    pub coeff: u32,
}

/// One matrix in compressed-row form.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rows {
    /// Row `i` is `entries[starts[i]..starts[i + 1]]`; `starts.len()` is rows + 1.
    starts: Vec<u32>,
    entries: Vec<Entry>,
}

impl Rows {
    fn row(&self, i: usize) -> &[Entry] {
        &self.entries[self.starts[i] as usize..self.starts[i + 1] as usize]
    }
}

/// Which matrix of `A·z ∘ B·z = C·z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `A`.
    A = 0,
    /// `B`.
    B = 1,
    /// `C`.
    C = 2,
}

/// The R1CS matrices of a circuit, compact (see the module documentation). Its `Debug`
/// form gives the sizes only (the matrices run to millions of entries).
#[derive(Clone, PartialEq, Eq)]
pub struct R1cs {
    num_instance: u32,
    num_variables: u32,
    coefficients: Vec<Fr>,
    matrices: [Rows; 3],
}

impl std::fmt::Debug for R1cs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("R1cs")
            .field("num_instance", &self.num_instance)
            .field("num_variables", &self.num_variables)
            .field("num_constraints", &self.num_constraints())
            .field("coefficients", &self.coefficients.len())
            .field(
                "entries",
                &[Which::A, Which::B, Which::C].map(|w| self.entries(w)),
            )
            .finish()
    }
}

impl R1cs {
    /// The matrices of `circuit` (values need not be assigned), synthesized exactly as
    /// `ark-groth16`'s setup and prover do: optimised for constraints, linear combinations
    /// inlined.
    ///
    /// # Errors
    /// Synthesis failures, or a circuit too large for the format.
    pub fn of_circuit<C: ConstraintSynthesizer<Fr>>(circuit: C) -> Result<Self, R1csError> {
        let cs = ConstraintSystem::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        circuit.generate_constraints(cs.clone())?;
        cs.finalize();
        Self::of_finalized(&cs)
    }

    /// The matrices of a finalised constraint system that was built with matrices (setup
    /// mode, or prove mode with `construct_matrices`).
    ///
    /// # Errors
    /// A system without R1CS constraints, or one too large for the format.
    pub fn of_finalized(
        cs: &ark_relations::gr1cs::ConstraintSystemRef<Fr>,
    ) -> Result<Self, R1csError> {
        let num_instance = cs.num_instance_variables();
        let num_variables = num_instance + cs.num_witness_variables();
        Self::from_matrices(num_instance, num_variables, matrices_of(cs)?)
    }

    /// The compact form of `ark-relations` matrices (consumed row by row, so the two forms
    /// are not both whole in memory). Zero coefficients are dropped; a row may name a
    /// variable more than once (its coefficients add).
    ///
    /// # Errors
    /// Matrices of different row counts, a variable at or past `num_variables`, or counts
    /// past 32 bits.
    pub fn from_matrices(
        num_instance: usize,
        num_variables: usize,
        matrices: [Matrix<Fr>; 3],
    ) -> Result<Self, R1csError> {
        let num_instance =
            u32::try_from(num_instance).map_err(|_| R1csError::TooLarge("instance variables"))?;
        let num_variables =
            u32::try_from(num_variables).map_err(|_| R1csError::TooLarge("variables"))?;
        if num_instance == 0 || num_instance > num_variables {
            return Err(R1csError::Malformed(format!(
                "{num_instance} instance variables of {num_variables}: the constant 1 is one, and they are part of all variables"
            )));
        }
        let rows = matrices[0].len();
        if matrices.iter().any(|m| m.len() != rows) {
            return Err(R1csError::Malformed(
                "the three matrices differ in row count".into(),
            ));
        }
        u32::try_from(rows).map_err(|_| R1csError::TooLarge("constraints"))?;
        let mut coefficients = vec![Fr::one(), -Fr::one()];
        let mut index: HashMap<Fr, u32> = HashMap::from([(Fr::one(), 0), (-Fr::one(), 1)]);
        let mut out = Vec::with_capacity(3);
        for m in matrices {
            let mut starts = Vec::with_capacity(rows + 1);
            let mut entries = Vec::new();
            starts.push(0u32);
            for row in m {
                for (coeff, var) in row {
                    if coeff.is_zero() {
                        continue;
                    }
                    if var >= num_variables as usize {
                        return Err(R1csError::Malformed(format!(
                            "a row names variable {var} of {num_variables}"
                        )));
                    }
                    let next = u32::try_from(coefficients.len())
                        .map_err(|_| R1csError::TooLarge("distinct coefficients"))?;
                    let coeff = *index.entry(coeff).or_insert_with(|| {
                        coefficients.push(coeff);
                        next
                    });
                    entries.push(Entry {
                        var: var as u32,
                        coeff,
                    });
                }
                starts.push(
                    u32::try_from(entries.len())
                        .map_err(|_| R1csError::TooLarge("entries of one matrix"))?,
                );
            }
            entries.shrink_to_fit();
            out.push(Rows { starts, entries });
        }
        let Ok(matrices) = <[Rows; 3]>::try_from(out) else {
            unreachable!("three matrices in, three out");
        };
        Ok(Self {
            num_instance,
            num_variables,
            coefficients,
            matrices,
        })
    }

    /// Constraints (rows of each matrix).
    pub fn num_constraints(&self) -> usize {
        self.matrices[0].starts.len() - 1
    }

    /// Instance variables: the constant 1 and the public inputs.
    pub fn num_instance(&self) -> usize {
        self.num_instance as usize
    }

    /// All variables, instance and witness.
    pub fn num_variables(&self) -> usize {
        self.num_variables as usize
    }

    /// The distinct coefficients; 0 is 1, 1 is -1.
    pub fn coefficients(&self) -> &[Fr] {
        &self.coefficients
    }

    /// Non-zero entries of `which`.
    pub fn entries(&self, which: Which) -> usize {
        self.matrices[which as usize].entries.len()
    }

    /// Row `i` of `which` (`i` below [`Self::num_constraints`]).
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn row(&self, which: Which, i: usize) -> &[Entry] {
        self.matrices[which as usize].row(i)
    }

    /// `⟨row i of which, z⟩`, or `None` when `z` is shorter than the variables it names.
    pub fn evaluate_row(&self, which: Which, i: usize, z: &[Fr]) -> Option<Fr> {
        let mut acc = Fr::zero();
        for e in self.row(which, i) {
            let v = *z.get(e.var as usize)?;
            match e.coeff {
                0 => acc += v,
                1 => acc -= v,
                k => acc += v * self.coefficients[k as usize],
            }
        }
        Some(acc)
    }

    /// Bytes held in memory (the tables; not the struct itself).
    pub fn memory_bytes(&self) -> usize {
        self.coefficients.len() * size_of::<Fr>()
            + self
                .matrices
                .iter()
                .map(|m| m.starts.len() * 4 + m.entries.len() * size_of::<Entry>())
                .sum::<usize>()
    }

    /// The version-1 file (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let m = self.num_constraints();
        let entries: usize = self.matrices.iter().map(|r| r.entries.len()).sum();
        let mut out =
            Vec::with_capacity(32 + self.coefficients.len() * 32 + 3 * (4 + m * 4) + entries * 8);
        out.extend_from_slice(MAGIC);
        for v in [
            VERSION,
            self.num_instance,
            self.num_variables,
            m as u32,
            self.coefficients.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for c in &self.coefficients {
            out.extend_from_slice(&c.into_bigint().to_bytes_le());
        }
        for rows in &self.matrices {
            out.extend_from_slice(&(rows.entries.len() as u32).to_le_bytes());
            for w in rows.starts.windows(2) {
                out.extend_from_slice(&(w[1] - w[0]).to_le_bytes());
            }
            for e in &rows.entries {
                out.extend_from_slice(&e.var.to_le_bytes());
                out.extend_from_slice(&e.coeff.to_le_bytes());
            }
        }
        out
    }

    /// Reads a version-1 file, checking all of it.
    ///
    /// # Errors
    /// [`R1csError::Format`], naming what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, R1csError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(MAGIC.len(), "the magic bytes")? != MAGIC {
            return Err(R1csError::Format(
                "it does not start with the pulse-r1cs magic bytes".into(),
            ));
        }
        let version = r.u32("the version")?;
        if version != VERSION {
            return Err(R1csError::Format(format!(
                "version {version}; this build reads version {VERSION}"
            )));
        }
        let num_instance = r.u32("the instance variable count")?;
        let num_variables = r.u32("the variable count")?;
        let m = r.u32("the constraint count")? as usize;
        let k = r.u32("the coefficient count")? as usize;
        if num_instance == 0 || num_instance > num_variables {
            return Err(R1csError::Format(format!(
                "{num_instance} instance variables of {num_variables}"
            )));
        }
        if k < 2 {
            return Err(R1csError::Format(format!(
                "{k} coefficients; the table starts with 1 and -1"
            )));
        }
        r.need(k, 32, "the coefficients")?;
        let mut coefficients = Vec::with_capacity(k);
        for i in 0..k {
            let raw = r.take(32, "a coefficient")?;
            let c = Fr::from_random_bytes(raw)
                .filter(|c| c.into_bigint().to_bytes_le() == raw)
                .ok_or_else(|| {
                    R1csError::Format(format!("coefficient {i} is not a canonical BN254 scalar"))
                })?;
            coefficients.push(c);
        }
        if coefficients[0] != Fr::one() || coefficients[1] != -Fr::one() {
            return Err(R1csError::Format(
                "the coefficient table does not start with 1 and -1".into(),
            ));
        }
        let mut matrices = Vec::with_capacity(3);
        for name in ["A", "B", "C"] {
            let e = r.u32("an entry count")? as usize;
            r.need(m, 4, "the row lengths")?;
            let mut starts = Vec::with_capacity(m + 1);
            starts.push(0u32);
            let mut total: u64 = 0;
            for _ in 0..m {
                total += u64::from(r.u32("a row length")?);
                if total > e as u64 {
                    return Err(R1csError::Format(format!(
                        "matrix {name}'s row lengths add up past its {e} entries"
                    )));
                }
                starts.push(total as u32);
            }
            if total != e as u64 {
                return Err(R1csError::Format(format!(
                    "matrix {name}'s row lengths add up to {total}, not its {e} entries"
                )));
            }
            r.need(e, 8, "the entries")?;
            let mut entries = Vec::with_capacity(e);
            for _ in 0..e {
                let var = r.u32("a variable")?;
                let coeff = r.u32("a coefficient index")?;
                if var >= num_variables || coeff as usize >= k {
                    return Err(R1csError::Format(format!(
                        "matrix {name} names variable {var} of {num_variables} or coefficient {coeff} of {k}"
                    )));
                }
                entries.push(Entry { var, coeff });
            }
            matrices.push(Rows { starts, entries });
        }
        if r.at != bytes.len() {
            return Err(R1csError::Format(format!(
                "{} bytes follow the last matrix",
                bytes.len() - r.at
            )));
        }
        let Ok(matrices) = <[Rows; 3]>::try_from(matrices) else {
            unreachable!("three matrices read");
        };
        Ok(Self {
            num_instance,
            num_variables,
            coefficients,
            matrices,
        })
    }
}

/// A cursor over a file's bytes that names what it ran out on.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], R1csError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| R1csError::Format(format!("it ends inside {what}")))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32, R1csError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Checks that `count` items of `size` bytes remain, before anything is allocated for
    /// them.
    fn need(&self, count: usize, size: usize, what: &str) -> Result<(), R1csError> {
        let left = self.bytes.len() - self.at;
        if count.checked_mul(size).is_none_or(|n| n > left) {
            return Err(R1csError::Format(format!(
                "it declares {count} items in {what} but ends first"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::UniformRand;
    use ark_r1cs_std::fields::fp::FpVar;
    use ark_r1cs_std::prelude::*;
    use ark_relations::gr1cs::ConstraintSystemRef;
    use ark_std::rand::SeedableRng;

    /// x³ + x + 5 = y with y public, plus a constant-coefficient sum.
    #[derive(Clone)]
    struct Cubic {
        x: Option<Fr>,
    }

    impl ConstraintSynthesizer<Fr> for Cubic {
        fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
            let x_val = self.x;
            let y_val = x_val.map(|x| x * x * x + x + Fr::from(5u64));
            let y = FpVar::new_input(cs.clone(), || {
                y_val.ok_or(SynthesisError::AssignmentMissing)
            })?;
            let x = FpVar::new_witness(cs.clone(), || {
                x_val.ok_or(SynthesisError::AssignmentMissing)
            })?;
            let x3 = &x * &x * &x;
            (x3 + &x + Fr::from(5u64)).enforce_equal(&y)?;
            let w = &x * Fr::from(7u64) - &x * Fr::from(3u64);
            w.enforce_equal(&(&x * Fr::from(4u64)))?;
            Ok(())
        }
    }

    fn prove_mode_matrices(x: Fr) -> (Vec<Fr>, [Matrix<Fr>; 3], usize) {
        let cs = ConstraintSystem::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Prove {
            construct_matrices: true,
            generate_lc_assignments: false,
        });
        Cubic { x: Some(x) }
            .generate_constraints(cs.clone())
            .unwrap();
        cs.finalize();
        let inner = cs.borrow().unwrap();
        let z = [
            inner.instance_assignment().unwrap(),
            inner.witness_assignment().unwrap(),
        ]
        .concat();
        let ni = inner.num_instance_variables;
        drop(inner);
        let mut m = cs.to_matrices().unwrap();
        let [a, b, c] =
            <[Matrix<Fr>; 3]>::try_from(m.remove(R1CS_PREDICATE_LABEL).unwrap()).unwrap();
        (z, [a, b, c], ni)
    }

    #[test]
    fn compact_rows_evaluate_as_the_ark_matrices() {
        let x = Fr::from(3u64);
        let (z, [a, b, c], ni) = prove_mode_matrices(x);
        let r = R1cs::of_circuit(Cubic { x: None }).unwrap();
        assert_eq!(r.num_instance(), ni);
        assert_eq!(r.num_variables(), z.len());
        assert_eq!(r.num_constraints(), a.len());
        for (which, m) in [(Which::A, &a), (Which::B, &b), (Which::C, &c)] {
            for (i, row) in m.iter().enumerate() {
                let want: Fr = row.iter().map(|(k, v)| *k * z[*v]).sum();
                assert_eq!(
                    r.evaluate_row(which, i, &z),
                    Some(want),
                    "{which:?} row {i}"
                );
            }
        }
        for i in 0..r.num_constraints() {
            let [ea, eb, ec] =
                [Which::A, Which::B, Which::C].map(|w| r.evaluate_row(w, i, &z).unwrap());
            assert_eq!(ea * eb, ec, "row {i} holds");
        }
        // A wrong witness breaks a row.
        let mut bad = z.clone();
        bad[ni] += Fr::one();
        assert!((0..r.num_constraints()).any(|i| {
            let [ea, eb, ec] =
                [Which::A, Which::B, Which::C].map(|w| r.evaluate_row(w, i, &bad).unwrap());
            ea * eb != ec
        }));
        assert_eq!(r.evaluate_row(Which::A, 0, &z[..0]), None);
    }

    #[test]
    fn the_file_round_trips_and_every_cut_is_refused() {
        let r = R1cs::of_circuit(Cubic { x: None }).unwrap();
        let bytes = r.to_bytes();
        assert_eq!(R1cs::from_bytes(&bytes).unwrap(), r);
        let shown = format!("{r:?}");
        let count = format!("num_constraints: {}", r.num_constraints());
        assert!(
            shown.contains(&count) && !shown.contains("Entry"),
            "{shown}"
        );
        for cut in 0..bytes.len() {
            assert!(
                matches!(R1cs::from_bytes(&bytes[..cut]), Err(R1csError::Format(_))),
                "a file cut at {cut} bytes"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(
            R1cs::from_bytes(&long)
                .unwrap_err()
                .to_string()
                .contains("follow")
        );
    }

    #[test]
    fn damaged_fields_are_named() {
        let r = R1cs::of_circuit(Cubic { x: None }).unwrap();
        let bytes = r.to_bytes();
        let k = r.coefficients().len();
        let at_matrix = 12 + 20 + 32 * k;
        let set = |at: usize, v: &[u8]| {
            let mut b = bytes.clone();
            b[at..at + v.len()].copy_from_slice(v);
            R1cs::from_bytes(&b).unwrap_err().to_string()
        };
        assert!(set(0, b"x").contains("magic"));
        assert!(set(12, &2u32.to_le_bytes()).contains("version 2"));
        assert!(set(16, &0u32.to_le_bytes()).contains("instance variables"));
        assert!(set(28, &1u32.to_le_bytes()).contains("starts with 1 and -1"));
        // A coefficient at the modulus is not canonical.
        let modulus = Fr::MODULUS.to_bytes_le();
        assert!(set(32, &modulus).contains("canonical"));
        // 1 and -1 swapped.
        let mut swapped = bytes.clone();
        swapped.copy_within(32..64, 64);
        swapped[32..64].copy_from_slice(&bytes[64..96]);
        assert!(
            R1cs::from_bytes(&swapped)
                .unwrap_err()
                .to_string()
                .contains("1 and -1")
        );
        // An entry count larger than the rows hold.
        assert!(set(at_matrix, &u32::MAX.to_le_bytes()).contains("add up to"));
        // A variable past the end.
        let first_entry = at_matrix + 4 + 4 * r.num_constraints();
        assert!(set(first_entry, &u32::MAX.to_le_bytes()).contains("names variable"));
        // A row longer than the matrix.
        assert!(set(at_matrix + 4, &u32::MAX.to_le_bytes()).contains("past its"));
    }

    #[test]
    fn random_coefficients_are_interned_once() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let c = Fr::rand(&mut rng);
        let rows: Matrix<Fr> = vec![vec![(c, 0), (Fr::one(), 1)], vec![(c, 1), (Fr::zero(), 0)]];
        let r = R1cs::from_matrices(1, 2, [rows.clone(), rows.clone(), rows]).unwrap();
        assert_eq!(r.coefficients().len(), 3);
        assert_eq!(r.entries(Which::A), 3, "the zero entry is dropped");
        assert_eq!(
            r.evaluate_row(Which::B, 0, &[Fr::from(2u64), Fr::from(5u64)]),
            Some(c * Fr::from(2u64) + Fr::from(5u64))
        );
        let err = R1cs::from_matrices(1, 1, [vec![vec![(c, 1)]], vec![vec![]], vec![vec![]]])
            .unwrap_err();
        assert!(err.to_string().contains("variable 1 of 1"), "{err}");
        let err = R1cs::from_matrices(1, 2, [vec![vec![]], vec![], vec![vec![]]]).unwrap_err();
        assert!(err.to_string().contains("row count"), "{err}");
    }
}
