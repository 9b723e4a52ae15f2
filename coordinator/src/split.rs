//! Split proofs: when to shard a chunk's MSMs across workers, and the state of each chunk
//! being proved that way.
//!
//! A split chunk goes through three steps: a **witness** job on the shared queue (any
//! worker, the assembler, makes the chunk's witness and stores one scalars object per
//! shard); one **shard** job per shard, each sent to one worker on its own subject (one
//! holding that range resident if any, else one whose base memory fits it); and the
//! **assembly** here: the sums added, the proof formed with fresh randomisers and checked
//! as every proof. A proof that fails its check sends every shard again to another worker
//! (a *check*); the shards whose two answers differ name the worker that lied, and the
//! proof from the checks is used. No step waits forever: a shard whose worker left the
//! registry or did not answer in time goes to another worker, and a split that has not
//! produced a proof by its deadline falls back to a whole proof where a worker can hold
//! the key (or starts over).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use pulse_protocol::{ResidentShard, ScalarsRef, WorkerInfo};
use pulse_prover::MsmSums;
use pulse_prover::split::{QueryLens, ShardRanges};

/// When chunks are proved split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitMode {
    /// Never: every chunk is proved whole.
    Never,
    /// When no live worker can hold the whole proving key (and, with latency mode, when
    /// more workers are idle than chunks wait).
    #[default]
    Auto,
    /// Every chunk (for tests, demos and measurements).
    Always,
}

impl SplitMode {
    /// The mode's name, as in flags.
    pub fn name(self) -> &'static str {
        match self {
            SplitMode::Never => "never",
            SplitMode::Auto => "auto",
            SplitMode::Always => "always",
        }
    }
}

impl fmt::Display for SplitMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SplitMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "never" => Ok(SplitMode::Never),
            "auto" => Ok(SplitMode::Auto),
            "always" => Ok(SplitMode::Always),
            other => Err(format!(
                "`{other}` is not a split mode: use auto, never or always"
            )),
        }
    }
}

/// How the coordinator proves chunks split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitConfig {
    /// When.
    pub mode: SplitMode,
    /// The most shards of one proof (2 to `pulse_protocol::MAX_SHARDS`).
    pub max_shards: usize,
    /// Latency mode: in `auto`, also split when more workers are idle than chunks wait.
    pub latency: bool,
    /// A shard unanswered this long goes to another worker, even if its worker still
    /// sends heartbeats.
    pub shard_timeout: Duration,
    /// A split chunk without a proof this long after its plan falls back to a whole proof
    /// (where a worker can hold the key) or starts over.
    pub deadline: Duration,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            mode: SplitMode::Auto,
            max_shards: 4,
            latency: false,
            shard_timeout: Duration::from_secs(120),
            deadline: Duration::from_secs(600),
        }
    }
}

/// A worker whose last heartbeat is older than this is taken for gone when its shard is
/// waited for (three missed heartbeats).
pub const SHARD_WORKER_SILENCE: Duration =
    Duration::from_secs(3 * pulse_protocol::HEARTBEAT_INTERVAL.as_secs());

/// How a chunk is to be proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Whole, on one worker.
    Whole,
    /// Split into this many shards.
    Split(usize),
    /// Neither is possible with the live workers: why, for the operator.
    NoWorker(String),
}

/// Whether `w` can hold `bytes` of bases.
fn holds(w: &WorkerInfo, bytes: u64) -> bool {
    w.base_memory_bytes.is_none_or(|m| bytes <= m)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// Whether `n` shards of a key with `lens` go to as many live workers, one each.
fn fits_on(lens: QueryLens, workers: &[WorkerInfo], n: usize) -> bool {
    let largest = ShardRanges::plan(lens, n)
        .iter()
        .map(ShardRanges::base_bytes)
        .max()
        .unwrap_or(0);
    workers.iter().filter(|w| holds(w, largest)).count() >= n
}

/// The fewest shards (2 up to `max`) such that as many live workers each hold one, or
/// `None`.
fn fewest_shards(lens: QueryLens, workers: &[WorkerInfo], max: usize) -> Option<usize> {
    (2..=max).find(|&n| fits_on(lens, workers, n))
}

/// How to prove a chunk of a key with `lens`, given the live `workers` and how many chunks
/// wait for a proof (this one included).
pub fn decide(
    config: &SplitConfig,
    lens: QueryLens,
    workers: &[WorkerInfo],
    waiting_chunks: usize,
) -> Decision {
    let key_bytes = lens.base_bytes();
    let max = config.max_shards.clamp(2, pulse_protocol::MAX_SHARDS);
    let no_worker = || {
        let largest = workers
            .iter()
            .filter_map(|w| w.base_memory_bytes)
            .max()
            .unwrap_or(0);
        Decision::NoWorker(format!(
            "no live worker can take this chunk: its proving key has {} of bases; the {} live worker(s) give at most {} each (--base-memory), too little for the whole key or for one of {max} shards on as many workers (--max-shards {max}); start workers with more base memory, or more of them",
            mib(key_bytes),
            workers.len(),
            mib(largest),
        ))
    };
    match config.mode {
        SplitMode::Never => Decision::Whole,
        SplitMode::Always => {
            if workers.is_empty() {
                return Decision::NoWorker(
                    "no worker has registered yet: the chunk is proved split once workers register"
                        .to_owned(),
                );
            }
            let want = workers.len().clamp(2, max);
            if fits_on(lens, workers, want) {
                Decision::Split(want)
            } else {
                fewest_shards(lens, workers, max).map_or_else(no_worker, Decision::Split)
            }
        }
        SplitMode::Auto => {
            // No worker registered yet: the whole job waits on the queue for the first.
            if workers.is_empty() {
                return Decision::Whole;
            }
            if workers.iter().any(|w| holds(w, key_bytes)) {
                if config.latency {
                    let idle = workers.iter().filter(|w| w.current_job.is_none()).count();
                    let n = (idle / waiting_chunks.max(1)).min(max);
                    if n >= 2 && fewest_shards(lens, workers, n).is_some() {
                        return Decision::Split(n);
                    }
                }
                return Decision::Whole;
            }
            fewest_shards(lens, workers, max).map_or_else(no_worker, Decision::Split)
        }
    }
}

/// One shard of a split chunk.
#[derive(Clone, Debug)]
pub struct Shard {
    /// Its ranges.
    pub ranges: ShardRanges,
    /// The worker it was last sent to.
    pub worker: Option<String>,
    /// How many times it was sent (its job id names the latest).
    pub lease: u32,
    /// When it was last sent.
    pub sent_at: Option<Instant>,
    /// The first answer, and who sent it.
    pub sums: Option<(MsmSums, String)>,
    /// After the proof failed its check: another worker's answer.
    pub check: Option<(MsmSums, String)>,
}

impl Shard {
    /// Whether the current round waits for this shard.
    pub fn waiting(&self, checking: bool) -> bool {
        if checking {
            self.check.is_none()
        } else {
            self.sums.is_none()
        }
    }
}

/// A chunk being proved split.
#[derive(Clone, Debug)]
pub struct SplitChunk {
    /// The batch generation whose witness job planned it (results of others are stale).
    pub generation: u32,
    /// When it was planned.
    pub started: Instant,
    /// The shards, in plan order.
    pub shards: Vec<Shard>,
    /// The stored scalars (one per shard), once the witness is made.
    pub scalars: Option<Vec<ScalarsRef>>,
    /// The worker that made the witness.
    pub assembler: Option<String>,
    /// Whether the first round's proof failed and the shards are being checked.
    pub checking: bool,
}

impl SplitChunk {
    /// A chunk planned as `plan` under `generation`.
    pub fn new(generation: u32, plan: Vec<ShardRanges>) -> Self {
        Self {
            generation,
            started: Instant::now(),
            shards: plan
                .into_iter()
                .map(|ranges| Shard {
                    ranges,
                    worker: None,
                    lease: 0,
                    sent_at: None,
                    sums: None,
                    check: None,
                })
                .collect(),
            scalars: None,
            assembler: None,
            checking: false,
        }
    }

    /// Whether every shard of the current round has answered.
    pub fn round_done(&self) -> bool {
        self.shards.iter().all(|s| !s.waiting(self.checking))
    }

    /// The sums of the current round, added up (when it is done).
    pub fn total(&self, checked: bool) -> Option<MsmSums> {
        let mut total = MsmSums::default();
        for s in &self.shards {
            let part = if checked { &s.check } else { &s.sums };
            total += &part.as_ref()?.0;
        }
        Some(total)
    }

    /// The workers of the shards whose first answer differs from the check's.
    pub fn liars(&self) -> Vec<String> {
        self.shards
            .iter()
            .filter_map(|s| match (&s.sums, &s.check) {
                (Some((first, by)), Some((check, _))) if first != check => Some(by.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every worker that answered a shard, without repeats, in shard order.
    pub fn provers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.shards {
            let by = if self.checking { &s.check } else { &s.sums };
            if let Some((_, w)) = by
                && !out.contains(w)
            {
                out.push(w.clone());
            }
        }
        out
    }
}

/// Picks the worker for shard `ranges` of key `pk_hash`: among live workers whose base
/// memory holds it and that are not `excluded`, one that holds it resident, else one with
/// the fewest shards of this chunk already (`load` counts them), ties by id.
pub fn pick_worker(
    workers: &[WorkerInfo],
    pk_hash: &str,
    ranges: &ShardRanges,
    excluded: &[String],
    load: &dyn Fn(&str) -> usize,
) -> Option<String> {
    let span = span_of(ranges);
    let bytes = ranges.base_bytes();
    workers
        .iter()
        .filter(|w| holds(w, bytes) && !excluded.contains(&w.worker_id))
        .min_by_key(|w| {
            let resident = w
                .resident
                .iter()
                .any(|r: &ResidentShard| r.pk_hash == pk_hash && r.span == span);
            (!resident, load(&w.worker_id), w.worker_id.clone())
        })
        .map(|w| w.worker_id.clone())
}

/// The wire form of `ranges`.
pub fn span_of(r: &ShardRanges) -> pulse_protocol::ShardSpan {
    let pair = |r: &std::ops::Range<usize>| [r.start as u64, r.end as u64];
    pulse_protocol::ShardSpan {
        assignment: pair(&r.assignment),
        l: pair(&r.l),
        h: pair(&r.h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: &str, base: Option<u64>, busy: bool) -> WorkerInfo {
        WorkerInfo {
            worker_id: id.to_owned(),
            backend: "cpu".to_owned(),
            device: "test".to_owned(),
            memory_bytes: 0,
            version: "0".to_owned(),
            circuits: Vec::new(),
            jobs_done: 0,
            current_job: busy.then(|| "b1-c0-g1".to_owned()),
            heartbeat_at: 0,
            base_memory_bytes: base,
            resident: Vec::new(),
        }
    }

    const LENS: QueryLens = QueryLens {
        assignment: 1000,
        l: 990,
        h: 1023,
    };

    #[test]
    fn auto_splits_only_when_no_worker_holds_the_key() {
        let key = LENS.base_bytes();
        let config = SplitConfig::default();
        let big = [worker("a", None, false), worker("b", Some(key / 2), false)];
        assert_eq!(decide(&config, LENS, &big, 1), Decision::Whole);
        let halves = [
            worker("a", Some(key * 6 / 10), false),
            worker("b", Some(key * 6 / 10), false),
        ];
        assert_eq!(decide(&config, LENS, &halves, 1), Decision::Split(2));
        let thirds = [
            worker("a", Some(key * 4 / 10), false),
            worker("b", Some(key * 4 / 10), false),
            worker("c", Some(key * 4 / 10), false),
        ];
        assert_eq!(decide(&config, LENS, &thirds, 1), Decision::Split(3));
        // One worker alone, below the key: said clearly, with the sizes.
        let alone = [worker("a", Some(key * 6 / 10), false)];
        match decide(&config, LENS, &alone, 1) {
            Decision::NoWorker(why) => {
                assert!(why.contains("no live worker can take this chunk"), "{why}");
                assert!(why.contains("--base-memory"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // Nobody registered yet: the whole job waits for the first worker.
        assert_eq!(decide(&config, LENS, &[], 1), Decision::Whole);
        let never = SplitConfig {
            mode: SplitMode::Never,
            ..config
        };
        assert_eq!(decide(&never, LENS, &halves, 1), Decision::Whole);
    }

    #[test]
    fn always_uses_the_live_workers_and_latency_mode_uses_idle_ones() {
        let always = SplitConfig {
            mode: SplitMode::Always,
            ..SplitConfig::default()
        };
        let two = [worker("a", None, false), worker("b", None, true)];
        assert_eq!(decide(&always, LENS, &two, 1), Decision::Split(2));
        let many: Vec<_> = (0..9)
            .map(|i| worker(&format!("w{i}"), None, false))
            .collect();
        assert_eq!(decide(&always, LENS, &many, 1), Decision::Split(4));
        assert!(matches!(
            decide(&always, LENS, &two[..1], 1),
            Decision::NoWorker(_)
        ));
        let latency = SplitConfig {
            latency: true,
            ..SplitConfig::default()
        };
        assert_eq!(decide(&latency, LENS, &many, 2), Decision::Split(4));
        assert_eq!(decide(&latency, LENS, &many, 5), Decision::Whole);
    }

    #[test]
    fn shards_go_to_resident_then_least_loaded_workers() {
        let plan = ShardRanges::plan(LENS, 2);
        let largest = plan.iter().map(ShardRanges::base_bytes).max();
        let mut a = worker("a", largest, false);
        let b = worker("b", None, false);
        let small = worker("c", Some(10), false);
        a.resident.push(ResidentShard {
            pk_hash: "k".to_owned(),
            span: span_of(&plan[1]),
        });
        let workers = [a.clone(), b.clone(), small];
        let none = |_: &str| 0;
        // b holds shard 0's bytes and nobody has it resident: ties by id → a.
        assert_eq!(
            pick_worker(&workers, "k", &plan[0], &[], &none).as_deref(),
            Some("a")
        );
        assert_eq!(
            pick_worker(&workers, "k", &plan[1], &[], &none).as_deref(),
            Some("a")
        );
        let a_busy = |w: &str| usize::from(w == "a");
        assert_eq!(
            pick_worker(&workers, "k", &plan[0], &[], &a_busy).as_deref(),
            Some("b")
        );
        assert_eq!(
            pick_worker(&workers, "k", &plan[1], &["a".to_owned()], &none).as_deref(),
            Some("b")
        );
        assert_eq!(
            pick_worker(
                &workers,
                "k",
                &plan[1],
                &["a".to_owned(), "b".to_owned()],
                &none
            ),
            None
        );
    }

    #[test]
    fn modes_parse() {
        for m in [SplitMode::Never, SplitMode::Auto, SplitMode::Always] {
            assert_eq!(m.name().parse::<SplitMode>(), Ok(m));
        }
        assert!("sometimes".parse::<SplitMode>().is_err());
    }
}
