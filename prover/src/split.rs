//! Split proving: the five MSMs of one proof sharded by base range across machines, as DIZK
//! (Wu et al. 2018) runs them on Spark.
//!
//! The pieces, in the order a split proof uses them:
//! - [`KeyHeader`]: what a proving key file holds before its bases (the verifying key,
//!   `β·G₁`, `δ·G₁`) and where each query's bases start, read without loading any base;
//! - [`ShardRanges::plan`]: `N` shards, each a range of every query (A, B in G1 and G2
//!   share their range: they run over the same assignment);
//! - [`ShardScalars`]: the scalars one shard needs, cut from a [`QapWitness`] by the
//!   machine that made the witness, in a compact checked byte form to send;
//! - [`ShardProver`]: a shard's bases read from the key file (only its ranges: a shard
//!   machine's memory is about `1/N` of the key's bases) and prepared on a backend, and the
//!   partial [`MsmSums`] it returns;
//! - [`KeyHeader::assemble`]: the proof from the added sums and fresh `r`, `s`.
//!
//! The sums of every shard of a plan add up to the whole MSMs, so the assembled proof is
//! the proof [`crate::Prover`] makes with the same `r`, `s`.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use ark_bn254::{Bn254, Fr, G1Affine, G2Affine, g1, g2};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, PrimeField};
use ark_groth16::{Proof, VerifyingKey};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};

use crate::backend::{Backend, BackendError, MsmBackend};
use crate::groth16::{MsmSums, QapWitness, Query, assemble};

/// Why a split-proving step failed.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// The key file could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The key file is not a proving key of the expected layout.
    #[error("{path} is not a proving key this prover can split: {reason}")]
    Layout {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A shard's ranges do not fit the key, or its scalars do not fit its ranges.
    #[error("shard does not fit: {0}")]
    Mismatch(String),
    /// Shard scalars that do not decode.
    #[error("shard scalars are malformed: {0}")]
    Malformed(String),
    /// The backend failed.
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
}

/// Lengths of a key's queries: A, B in G1 and B in G2 run over the whole assignment; L over
/// its witness part; H over the quotient's coefficients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryLens {
    /// Bases of `a_query`, `b_g1_query` and `b_g2_query` each.
    pub assignment: usize,
    /// Bases of `l_query`.
    pub l: usize,
    /// Bases of `h_query`.
    pub h: usize,
}

/// Uncompressed sizes, as the key file stores its bases.
const G1_BYTES: u64 = 64;
const G2_BYTES: u64 = 128;

impl QueryLens {
    /// Bytes of all the key's bases (as stored: uncompressed affine points).
    pub fn base_bytes(&self) -> u64 {
        ShardRanges {
            assignment: 0..self.assignment,
            l: 0..self.l,
            h: 0..self.h,
        }
        .base_bytes()
    }
}

/// One shard: a range of every query's bases.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShardRanges {
    /// Range of `a_query`, `b_g1_query` and `b_g2_query` (and of the assignment).
    pub assignment: Range<usize>,
    /// Range of `l_query` (and of the witness part of the assignment).
    pub l: Range<usize>,
    /// Range of `h_query` (and of the quotient's coefficients).
    pub h: Range<usize>,
}

/// Part `k` of `n` nearly equal parts of `0..len`.
fn part(len: usize, k: usize, n: usize) -> Range<usize> {
    let at = |i: usize| ((len as u128 * i as u128) / n as u128) as usize;
    at(k)..at(k + 1)
}

impl ShardRanges {
    /// `shards` shards covering every query, each about `1/shards` of every query (so of
    /// every kind of work and of the key's bytes). `shards` is at least 1.
    pub fn plan(lens: QueryLens, shards: usize) -> Vec<ShardRanges> {
        let n = shards.max(1);
        (0..n)
            .map(|k| ShardRanges {
                assignment: part(lens.assignment, k, n),
                l: part(lens.l, k, n),
                h: part(lens.h, k, n),
            })
            .collect()
    }

    /// Bytes of the shard's bases as stored (what a shard machine reads and holds);
    /// `u64::MAX` for ranges too large to count (they come from outside: a job's).
    pub fn base_bytes(&self) -> u64 {
        let n = |r: &Range<usize>| r.len() as u64;
        n(&self.assignment)
            .saturating_mul(2 * G1_BYTES + G2_BYTES)
            .saturating_add(
                n(&self.l)
                    .saturating_add(n(&self.h))
                    .saturating_mul(G1_BYTES),
            )
    }

    /// Scalars in the shard (what its machine is sent); `usize::MAX` for ranges too large
    /// to count.
    pub fn scalar_count(&self) -> usize {
        self.assignment
            .len()
            .saturating_add(self.l.len())
            .saturating_add(self.h.len())
    }

    fn check(&self, lens: QueryLens) -> Result<(), SplitError> {
        for (what, r, len) in [
            ("assignment", &self.assignment, lens.assignment),
            ("l", &self.l, lens.l),
            ("h", &self.h, lens.h),
        ] {
            if r.start > r.end || r.end > len {
                return Err(SplitError::Mismatch(format!(
                    "the {what} range {}..{} is not within the key's {len} bases",
                    r.start, r.end
                )));
            }
        }
        Ok(())
    }
}

/// The start of a proving key file (arkworks' uncompressed `ProvingKey<Bn254>`, as
/// `pulse setup` writes it), read without its bases.
#[derive(Clone, Debug)]
pub struct KeyHeader {
    /// The verifying key.
    pub vk: VerifyingKey<Bn254>,
    /// `β·G₁`.
    pub beta_g1: G1Affine,
    /// `δ·G₁`.
    pub delta_g1: G1Affine,
    /// The queries' lengths.
    pub lens: QueryLens,
    /// File offset of the first base of A, B₁, B₂, H, L (the file's order).
    offsets: [u64; 5],
}

impl KeyHeader {
    /// Reads the header of the key file at `path` and finds its queries (seeking past their
    /// bases). Checks that the queries' lengths agree with each other and with the file's
    /// size.
    ///
    /// # Errors
    /// [`SplitError::Read`], [`SplitError::Layout`].
    pub fn read(path: &Path) -> Result<Self, SplitError> {
        let shown = path.display().to_string();
        let read_err = |e: std::io::Error| SplitError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        };
        let layout = |reason: String| SplitError::Layout {
            path: shown.clone(),
            reason,
        };
        let file = File::open(path).map_err(read_err)?;
        let size = file.metadata().map_err(read_err)?.len();
        let mut r = BufReader::with_capacity(1 << 16, file);
        let de = |e: ark_serialize::SerializationError| layout(e.to_string());
        let vk = VerifyingKey::<Bn254>::deserialize_with_mode(&mut r, Compress::No, Validate::Yes)
            .map_err(de)?;
        let beta_g1 =
            G1Affine::deserialize_with_mode(&mut r, Compress::No, Validate::Yes).map_err(de)?;
        let delta_g1 =
            G1Affine::deserialize_with_mode(&mut r, Compress::No, Validate::Yes).map_err(de)?;
        let mut offsets = [0u64; 5];
        let mut lens = [0usize; 5];
        for (i, point) in [G1_BYTES, G1_BYTES, G2_BYTES, G1_BYTES, G1_BYTES]
            .into_iter()
            .enumerate()
        {
            let mut len = [0u8; 8];
            r.read_exact(&mut len).map_err(read_err)?;
            let len = u64::from_le_bytes(len);
            let at = r.stream_position().map_err(read_err)?;
            let end = len
                .checked_mul(point)
                .and_then(|b| b.checked_add(at))
                .filter(|&end| end <= size)
                .ok_or_else(|| {
                    layout(format!(
                        "query {i} declares {len} bases, more than the file's {size} bytes hold"
                    ))
                })?;
            offsets[i] = at;
            lens[i] = usize::try_from(len).map_err(|e| layout(e.to_string()))?;
            r.seek(SeekFrom::Start(end)).map_err(read_err)?;
        }
        if r.stream_position().map_err(read_err)? != size {
            return Err(layout("bytes follow the last query".to_owned()));
        }
        let [a, b1, b2, h, l] = lens;
        if a != b1 || a != b2 {
            return Err(layout(format!(
                "a_query has {a} bases, b_g1_query {b1}, b_g2_query {b2}"
            )));
        }
        if l + vk.gamma_abc_g1.len() != a {
            return Err(layout(format!(
                "l_query has {l} bases and the verifying key {} inputs, for {a} variables",
                vk.gamma_abc_g1.len()
            )));
        }
        Ok(Self {
            vk,
            beta_g1,
            delta_g1,
            lens: QueryLens {
                assignment: a,
                l,
                h,
            },
            offsets,
        })
    }

    /// The proof from the whole MSM sums (added up from every shard of a plan) and the
    /// randomisers `r`, `s`.
    pub fn assemble(&self, sums: &MsmSums, r: Fr, s: Fr) -> Proof<Bn254> {
        assemble(&self.vk, self.beta_g1, self.delta_g1, sums, r, s)
    }
}

/// Reads `range` of the query whose bases start at `offset`.
fn read_points<A: CanonicalDeserialize>(
    r: &mut BufReader<File>,
    offset: u64,
    point: u64,
    range: &Range<usize>,
) -> Result<Vec<A>, String> {
    r.seek(SeekFrom::Start(offset + range.start as u64 * point))
        .map_err(|e| e.to_string())?;
    (0..range.len())
        .map(|_| {
            A::deserialize_with_mode(&mut *r, Compress::No, Validate::No).map_err(|e| e.to_string())
        })
        .collect()
}

type G1Bases<B> = <B as MsmBackend<g1::Config>>::Bases;
type G2Bases<B> = <B as MsmBackend<g2::Config>>::Bases;

/// One shard's bases, prepared on a backend: the MSMs of a split proof over its ranges.
pub struct ShardProver<B: Backend> {
    backend: B,
    ranges: ShardRanges,
    lens: QueryLens,
    a: G1Bases<B>,
    b_g1: G1Bases<B>,
    b_g2: G2Bases<B>,
    l: G1Bases<B>,
    h: G1Bases<B>,
}

impl<B: Backend> ShardProver<B> {
    /// Reads the bases of `ranges` from the key file at `path` (whose header is `header`)
    /// and prepares them on `backend`. The rest of the key is never read into memory. The
    /// points are not validated: the file is the one whose SHA-256 the caller checked.
    ///
    /// # Errors
    /// [`SplitError`].
    pub fn load(
        backend: B,
        path: &Path,
        header: &KeyHeader,
        ranges: ShardRanges,
    ) -> Result<Self, SplitError> {
        ranges.check(header.lens)?;
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|e| SplitError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let mut r = BufReader::with_capacity(1 << 20, file);
        let layout = |reason: String| SplitError::Layout {
            path: shown.clone(),
            reason,
        };
        let [oa, ob1, ob2, oh, ol] = header.offsets;
        let g1 = |r: &mut BufReader<File>, at, range| {
            read_points::<G1Affine>(r, at, G1_BYTES, range).map_err(layout)
        };
        let a = g1(&mut r, oa, &ranges.assignment)?;
        let a = MsmBackend::<g1::Config>::prepare(&backend, a)?;
        let b1 = g1(&mut r, ob1, &ranges.assignment)?;
        let b_g1 = MsmBackend::<g1::Config>::prepare(&backend, b1)?;
        let b2 =
            read_points::<G2Affine>(&mut r, ob2, G2_BYTES, &ranges.assignment).map_err(layout)?;
        let b_g2 = MsmBackend::<g2::Config>::prepare(&backend, b2)?;
        let l = g1(&mut r, ol, &ranges.l)?;
        let l = MsmBackend::<g1::Config>::prepare(&backend, l)?;
        let h = g1(&mut r, oh, &ranges.h)?;
        let h = MsmBackend::<g1::Config>::prepare(&backend, h)?;
        Ok(Self {
            backend,
            ranges,
            lens: header.lens,
            a,
            b_g1,
            b_g2,
            l,
            h,
        })
    }

    /// The ranges this shard holds.
    pub fn ranges(&self) -> &ShardRanges {
        &self.ranges
    }

    /// The lengths of the whole key's queries.
    pub fn lens(&self) -> QueryLens {
        self.lens
    }

    /// The shard's partial sums of the five MSMs.
    ///
    /// # Errors
    /// [`SplitError::Mismatch`] when the scalars are for other ranges; backend errors.
    pub fn sums(&self, scalars: &ShardScalars) -> Result<MsmSums, SplitError> {
        if scalars.ranges != self.ranges {
            return Err(SplitError::Mismatch(format!(
                "the scalars are for ranges {:?}, this shard holds {:?}",
                scalars.ranges, self.ranges
            )));
        }
        let b = &self.backend;
        let z = &scalars.assignment;
        let ab = b.msm_assignment(&self.a, &self.b_g1, &self.b_g2, 0..z.len(), z)?;
        let l = MsmBackend::<g1::Config>::msm(b, &self.l, 0..scalars.l.len(), &scalars.l)?;
        let h = MsmBackend::<g1::Config>::msm(b, &self.h, 0..scalars.h.len(), &scalars.h)?;
        Ok(MsmSums {
            a: ab.a,
            b_g1: ab.b_g1,
            b_g2: ab.b_g2,
            l,
            h,
        })
    }
}

/// The scalars of one shard: the assignment over its A/B range, the witness over its L
/// range, the quotient's coefficients over its H range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardScalars {
    /// The ranges they are for.
    pub ranges: ShardRanges,
    /// `z[assignment]`.
    pub assignment: Vec<Fr>,
    /// `z[num_inputs..][l]`.
    pub l: Vec<Fr>,
    /// `h[h]`.
    pub h: Vec<Fr>,
}

/// The first bytes of encoded shard scalars.
const SCALARS_MAGIC: &[u8; 8] = b"PLSSHRD1";
/// Bytes of the encoding before the scalars: magic and six u64 range ends.
const SCALARS_HEADER: usize = 8 + 6 * 8;

impl ShardScalars {
    /// Cuts the scalars of `ranges` out of `witness`.
    ///
    /// # Errors
    /// [`SplitError::Mismatch`] when the ranges are outside the witness.
    pub fn of(witness: &QapWitness, ranges: &ShardRanges) -> Result<Self, SplitError> {
        let cut = |what: &str, v: &[Fr], r: &Range<usize>| {
            v.get(r.clone()).map(<[Fr]>::to_vec).ok_or_else(|| {
                SplitError::Mismatch(format!(
                    "the {what} range {}..{} is outside the witness's {} scalars",
                    r.start,
                    r.end,
                    v.len()
                ))
            })
        };
        Ok(Self {
            ranges: ranges.clone(),
            assignment: cut("assignment", witness.scalars(Query::A), &ranges.assignment)?,
            l: cut("l", witness.scalars(Query::L), &ranges.l)?,
            h: cut("h", witness.scalars(Query::H), &ranges.h)?,
        })
    }

    /// Bytes of the encoding of a shard with `ranges` (`usize::MAX` when too large).
    pub fn encoded_len(ranges: &ShardRanges) -> usize {
        ranges
            .scalar_count()
            .saturating_mul(32)
            .saturating_add(SCALARS_HEADER)
    }

    /// The byte form: a magic, the three ranges (u64 little-endian starts and ends), then
    /// every scalar as 32 little-endian bytes, canonical (below the field's modulus).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::encoded_len(&self.ranges));
        out.extend_from_slice(SCALARS_MAGIC);
        for r in [&self.ranges.assignment, &self.ranges.l, &self.ranges.h] {
            out.extend_from_slice(&(r.start as u64).to_le_bytes());
            out.extend_from_slice(&(r.end as u64).to_le_bytes());
        }
        for x in self.assignment.iter().chain(&self.l).chain(&self.h) {
            out.extend_from_slice(&x.into_bigint().to_bytes_le());
        }
        out
    }

    /// Reads [`Self::encode`]'s form, refusing anything else: another magic, ranges whose
    /// start is past their end, a length that disagrees with the ranges, a scalar not below
    /// the modulus.
    ///
    /// # Errors
    /// [`SplitError::Malformed`] naming the problem.
    pub fn decode(bytes: &[u8]) -> Result<Self, SplitError> {
        let bad = |s: String| SplitError::Malformed(s);
        if bytes.len() < SCALARS_HEADER || &bytes[..8] != SCALARS_MAGIC {
            return Err(bad("they do not start with the shard-scalars magic".into()));
        }
        let mut ends = [0usize; 6];
        for (i, e) in ends.iter_mut().enumerate() {
            let at = 8 + 8 * i;
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            *e = usize::try_from(u64::from_le_bytes(w)).map_err(|e| bad(e.to_string()))?;
        }
        let range = |i: usize| {
            let (s, e) = (ends[2 * i], ends[2 * i + 1]);
            if s > e {
                Err(bad(format!("range {s}..{e} starts past its end")))
            } else {
                Ok(s..e)
            }
        };
        let ranges = ShardRanges {
            assignment: range(0)?,
            l: range(1)?,
            h: range(2)?,
        };
        let count = ranges.scalar_count();
        let body = &bytes[SCALARS_HEADER..];
        if count.checked_mul(32) != Some(body.len()) {
            return Err(bad(format!(
                "{} bytes of scalars for ranges holding {count}",
                body.len()
            )));
        }
        let mut scalars = body.chunks_exact(32).enumerate().map(|(i, c)| {
            let mut limbs = [0u64; 4];
            for (l, w) in limbs.iter_mut().zip(c.chunks_exact(8)) {
                let mut b = [0u8; 8];
                b.copy_from_slice(w);
                *l = u64::from_le_bytes(b);
            }
            Fr::from_bigint(ark_ff::BigInt(limbs))
                .ok_or_else(|| bad(format!("scalar {i} is not below the field's modulus")))
        });
        let mut take = |n: usize| (&mut scalars).take(n).collect::<Result<Vec<Fr>, _>>();
        let assignment = take(ranges.assignment.len())?;
        let l = take(ranges.l.len())?;
        let h = take(ranges.h.len())?;
        Ok(Self {
            ranges,
            assignment,
            l,
            h,
        })
    }
}

/// Bytes of [`MsmSums`] in [`encode_sums`]'s form.
pub const SUMS_BYTES: usize = 4 * 32 + 64;

/// The five sums, compressed (arkworks' form: four G1 points, then the G2 point), as a
/// shard machine sends them back.
pub fn encode_sums(sums: &MsmSums) -> Vec<u8> {
    use ark_ec::CurveGroup;
    let mut out = Vec::with_capacity(SUMS_BYTES);
    let g1 = [sums.a, sums.b_g1, sums.l, sums.h];
    let g1 = ark_bn254::G1Projective::normalize_batch(&g1);
    for p in &g1 {
        // Writing to a Vec cannot fail.
        let _ = p.serialize_compressed(&mut out);
    }
    let _ = sums.b_g2.into_affine().serialize_compressed(&mut out);
    out
}

/// Reads [`encode_sums`]'s form, checking every point is on its curve and in its subgroup
/// (a shard machine is not trusted to send points at all).
///
/// # Errors
/// [`SplitError::Malformed`].
pub fn decode_sums(bytes: &[u8]) -> Result<MsmSums, SplitError> {
    if bytes.len() != SUMS_BYTES {
        return Err(SplitError::Malformed(format!(
            "sums are {SUMS_BYTES} bytes, these are {}",
            bytes.len()
        )));
    }
    let mut r = bytes;
    let mut g1 = || {
        G1Affine::deserialize_compressed(&mut r)
            .map(|p| p.into_group())
            .map_err(|e| SplitError::Malformed(format!("a G1 sum: {e}")))
    };
    let (a, b_g1, l, h) = (g1()?, g1()?, g1()?, g1()?);
    let b_g2 = G2Affine::deserialize_compressed(&mut r)
        .map_err(|e| SplitError::Malformed(format!("the G2 sum: {e}")))?
        .into_group();
    Ok(MsmSums {
        a,
        b_g1,
        b_g2,
        l,
        h,
    })
}
