//! A worker's part in split proofs: making a chunk's witness cut into shard scalars (as
//! the assembler), and computing one shard's partial sums from the bases of that shard
//! alone, kept resident between proofs within the worker's base memory.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use pulse_circuits::artifacts::{
    self, CircuitParams, Hash32, MANIFEST_FILE, Manifest, PROVING_KEY_FILE,
};
use pulse_circuits::circuit::{ChunkCircuit, ChunkWitness};
use pulse_gpu::GpuBackend;
use pulse_protocol::{MAX_SHARDS, ResidentShard, ShardSpan};
use pulse_prover::split::{KeyHeader, ShardProver, ShardRanges, ShardScalars, encode_sums};
use pulse_prover::{BackendError, CpuBackend, QapWitness};

use crate::engine::Hardware;

/// The ranges a span names, checked to be ranges.
pub(crate) fn span_ranges(span: &ShardSpan) -> Result<ShardRanges, String> {
    let range = |what: &str, [start, end]: [u64; 2]| {
        let (s, e) = (
            usize::try_from(start).map_err(|e| e.to_string())?,
            usize::try_from(end).map_err(|e| e.to_string())?,
        );
        if s > e {
            return Err(format!("the {what} range {s}..{e} starts past its end"));
        }
        Ok(s..e)
    };
    Ok(ShardRanges {
        assignment: range("assignment", span.assignment)?,
        l: range("l", span.l)?,
        h: range("h", span.h)?,
    })
}

/// The span of `ranges`.
pub fn ranges_span(r: &ShardRanges) -> ShardSpan {
    let pair = |r: &std::ops::Range<usize>| [r.start as u64, r.end as u64];
    ShardSpan {
        assignment: pair(&r.assignment),
        l: pair(&r.l),
        h: pair(&r.h),
    }
}

pub(crate) fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The witness of a split proof, made.
pub(crate) struct Witnessed {
    /// Each shard's scalars, encoded, in the plan's order.
    pub(crate) scalars: Vec<Vec<u8>>,
    pub(crate) witness_seconds: f64,
    pub(crate) reduction_seconds: f64,
}

/// Makes the witness of `witness` (a chunk of the key in `dir`) and cuts it into the
/// scalars of each shard of `plan`. Needs the key's manifest, header and constraint
/// matrices, never its bases. Blocking and slow.
pub(crate) fn make_witness(
    dir: &Path,
    params: CircuitParams,
    witness: ChunkWitness,
    plan: &[ShardSpan],
) -> Result<Witnessed, String> {
    if plan.is_empty() || plan.len() > MAX_SHARDS {
        return Err(format!(
            "a split plan has 1 to {MAX_SHARDS} shards, this one {}",
            plan.len()
        ));
    }
    let ranges = plan
        .iter()
        .map(span_ranges)
        .collect::<Result<Vec<_>, _>>()?;
    let manifest = read_manifest(dir)?;
    let header = KeyHeader::read(&dir.join(PROVING_KEY_FILE)).map_err(|e| e.to_string())?;
    let circuit = ChunkCircuit { params, witness };
    let backend = CpuBackend::new();
    let (qap, synthesis, reduction) = match manifest.constraints_hash {
        Some(expected) => {
            let r1cs =
                artifacts::read_constraints(dir, expected, &manifest, header.lens.assignment)
                    .map_err(|e| e.to_string())?;
            let (qap, t) =
                QapWitness::with_constraints(&backend, circuit, &Arc::new(r1cs), header.lens.h)
                    .map_err(|e| format!("making the witness: {e}"))?;
            (qap, t.synthesis.as_secs_f64(), t.reduction.as_secs_f64())
        }
        None => {
            // A key written without its matrices: synthesis builds them.
            let t = Instant::now();
            let qap = QapWitness::compute(&backend, circuit)
                .map_err(|e| format!("making the witness: {e}"))?;
            if qap.scalars(pulse_prover::Query::H).len() != header.lens.h {
                return Err(format!(
                    "the witness has {} quotient coefficients, the key's h_query {}",
                    qap.scalars(pulse_prover::Query::H).len(),
                    header.lens.h
                ));
            }
            (qap, t.elapsed().as_secs_f64(), 0.0)
        }
    };
    if qap.scalars(pulse_prover::Query::A).len() != header.lens.assignment {
        return Err(format!(
            "the witness has {} variables, the key {}",
            qap.scalars(pulse_prover::Query::A).len(),
            header.lens.assignment
        ));
    }
    let scalars = ranges
        .iter()
        .map(|r| ShardScalars::of(&qap, r).map(|s| s.encode()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok(Witnessed {
        scalars,
        witness_seconds: synthesis,
        reduction_seconds: reduction,
    })
}

/// A shard's bases on the worker's hardware.
pub(crate) enum ShardEngine {
    Cpu(ShardProver<CpuBackend>),
    Gpu(ShardProver<GpuBackend>, &'static str),
}

impl ShardEngine {
    /// Reads and prepares the bases of `ranges` of the key in `dir`: on the worker's GPU
    /// when it has one and they fit, else on the CPU. Blocking.
    pub(crate) fn load(
        dir: &Path,
        ranges: ShardRanges,
        hardware: &Hardware,
    ) -> Result<Self, String> {
        let path = dir.join(PROVING_KEY_FILE);
        let header = KeyHeader::read(&path).map_err(|e| e.to_string())?;
        if let Hardware::Gpu {
            device,
            memory_limit,
        } = hardware
        {
            let api = device.info().api.name();
            let backend = GpuBackend::on(device.clone(), *memory_limit);
            match ShardProver::load(backend, &path, &header, ranges.clone()) {
                Ok(p) => return Ok(Self::Gpu(p, api)),
                Err(pulse_prover::split::SplitError::Backend(BackendError::OutOfMemory(why))) => {
                    tracing::warn!(reason = %why, "the shard's bases do not fit the GPU; it is computed on the CPU");
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        ShardProver::load(CpuBackend::new(), &path, &header, ranges)
            .map(Self::Cpu)
            .map_err(|e| e.to_string())
    }

    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Self::Cpu(_) => "cpu",
            Self::Gpu(_, api) => api,
        }
    }

    /// The shard's sums from its encoded scalars, encoded. Blocking.
    pub(crate) fn sums(&self, scalars: &[u8]) -> Result<Vec<u8>, String> {
        let scalars = ShardScalars::decode(scalars).map_err(|e| e.to_string())?;
        let sums = match self {
            Self::Cpu(p) => p.sums(&scalars),
            Self::Gpu(p, _) => p.sums(&scalars),
        }
        .map_err(|e| e.to_string())?;
        Ok(encode_sums(&sums))
    }
}

struct Held {
    pk_hash: Hash32,
    ranges: ShardRanges,
    bytes: u64,
    engine: Arc<ShardEngine>,
}

/// The shards a worker holds resident, most recently used last, within its base memory:
/// loading one that does not fit beside the others drops the least recently used.
pub(crate) struct ShardCache {
    limit: Option<u64>,
    held: Vec<Held>,
}

impl ShardCache {
    pub(crate) fn new(limit: Option<u64>) -> Self {
        Self {
            limit,
            held: Vec::new(),
        }
    }

    /// Whether a shard of `bytes` fits this worker's base memory at all.
    pub(crate) fn fits(&self, bytes: u64) -> bool {
        self.limit.is_none_or(|l| bytes <= l)
    }

    pub(crate) fn get(
        &mut self,
        pk_hash: &Hash32,
        ranges: &ShardRanges,
    ) -> Option<Arc<ShardEngine>> {
        let i = self
            .held
            .iter()
            .position(|h| h.pk_hash == *pk_hash && h.ranges == *ranges)?;
        let held = self.held.remove(i);
        let engine = held.engine.clone();
        self.held.push(held);
        Some(engine)
    }

    /// Drops resident shards, least recently used first, until `bytes` more fit.
    pub(crate) fn make_room(&mut self, bytes: u64) {
        let Some(limit) = self.limit else { return };
        while !self.held.is_empty()
            && self.held.iter().map(|h| h.bytes).sum::<u64>() + bytes > limit
        {
            let gone = self.held.remove(0);
            tracing::info!(
                pk_hash = %gone.pk_hash,
                bytes = gone.bytes,
                "dropping a resident shard to make room for another"
            );
        }
    }

    pub(crate) fn insert(
        &mut self,
        pk_hash: Hash32,
        ranges: ShardRanges,
        engine: Arc<ShardEngine>,
    ) {
        let bytes = ranges.base_bytes();
        self.make_room(bytes);
        self.held.push(Held {
            pk_hash,
            ranges,
            bytes,
            engine,
        });
    }

    /// What the registry announces.
    pub(crate) fn resident(&self) -> Vec<ResidentShard> {
        self.held
            .iter()
            .map(|h| ResidentShard {
                pk_hash: h.pk_hash.to_hex(),
                span: ranges_span(&h.ranges),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_checked_and_round_trip() {
        let span = ShardSpan {
            assignment: [0, 10],
            l: [3, 3],
            h: [4, 9],
        };
        let r = span_ranges(&span).expect("ranges");
        assert_eq!(ranges_span(&r), span);
        let backwards = ShardSpan { h: [9, 4], ..span };
        assert!(
            span_ranges(&backwards)
                .err()
                .unwrap_or_default()
                .contains("starts past its end")
        );
    }
}
