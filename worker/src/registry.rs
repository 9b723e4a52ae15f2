//! The worker's entry in the registry (the KV bucket `WORKER_BUCKET`, key = worker id):
//! written at start, refreshed every `HEARTBEAT_INTERVAL` and whenever the worker starts or
//! finishes a job, deleted on clean shutdown. A worker that dies leaves an entry that
//! expires after `WORKER_TTL`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv;
use pulse_protocol::{HEARTBEAT_INTERVAL, WorkerInfo, encode};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::engine::Hardware;

/// What the worker is doing, as its registry entry shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Status {
    /// The job held now.
    pub current_job: Option<String>,
    /// Jobs proved (and published) since start.
    pub jobs_done: u64,
    /// Circuits whose keys are loaded.
    pub circuits: Vec<String>,
    /// Shards of keys whose bases are loaded.
    pub resident: Vec<pulse_protocol::ResidentShard>,
}

/// The device a backend proves on, in words, and the memory it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// For instance `AMD EPYC 7763 64-Core Processor, 16 threads`, or for a GPU its label,
    /// `cuda:0 (NVIDIA H100 80GB HBM3)`.
    pub description: String,
    /// Memory available for proving, in bytes (0 when unknown): the machine's available
    /// memory for the CPU, the device's memory (or the worker's limit on it) for a GPU.
    pub memory_bytes: u64,
}

impl Device {
    /// Describes what `hardware` proves on.
    pub fn detect(hardware: &Hardware) -> Self {
        match hardware {
            Hardware::Cpu => Self {
                description: cpu_description(),
                memory_bytes: available_memory(),
            },
            Hardware::Gpu {
                device,
                memory_limit,
            } => {
                let info = device.info();
                Self {
                    description: info.label(),
                    memory_bytes: memory_limit
                        .map_or(info.memory_bytes, |limit| limit.min(info.memory_bytes)),
                }
            }
        }
    }
}

fn cpu_description() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("{} CPU", std::env::consts::ARCH));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {threads} threads")
}

/// `MemAvailable` from `/proc/meminfo` (or `MemTotal` on old kernels), in bytes.
fn available_memory() -> u64 {
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else {
        return 0;
    };
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    field("MemAvailable:")
        .or_else(|| field("MemTotal:"))
        .unwrap_or(0)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes and refreshes the registry entry.
pub(crate) struct Registry {
    store: kv::Store,
    worker_id: String,
    hardware: Hardware,
    device: String,
    base_memory: Option<u64>,
}

impl Registry {
    pub(crate) fn new(
        store: kv::Store,
        worker_id: String,
        hardware: Hardware,
        base_memory: Option<u64>,
    ) -> Self {
        let device = Device::detect(&hardware).description;
        Self {
            store,
            worker_id,
            hardware,
            device,
            base_memory,
        }
    }

    fn info(&self, status: &Status) -> WorkerInfo {
        WorkerInfo {
            worker_id: self.worker_id.clone(),
            backend: self.hardware.name().to_owned(),
            device: self.device.clone(),
            memory_bytes: Device::detect(&self.hardware).memory_bytes,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            circuits: status.circuits.clone(),
            jobs_done: status.jobs_done,
            current_job: status.current_job.clone(),
            heartbeat_at: unix_now(),
            base_memory_bytes: self.base_memory,
            resident: status.resident.clone(),
        }
    }

    /// Writes the entry once.
    pub(crate) async fn put(&self, status: &Status) -> Result<(), String> {
        let bytes = encode(&self.info(status));
        self.store
            .put(&self.worker_id, bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Refreshes the entry every [`HEARTBEAT_INTERVAL`] and on every status change, until
    /// `stop`. Failures (NATS away) are logged and retried at the next beat.
    pub(crate) async fn heartbeat(
        &self,
        mut status: watch::Receiver<Status>,
        stop: CancellationToken,
    ) {
        let mut beat = tokio::time::interval(HEARTBEAT_INTERVAL);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = beat.tick() => {}
                changed = status.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            let now = status.borrow_and_update().clone();
            match tokio::time::timeout(HEARTBEAT_INTERVAL, self.put(&now)).await {
                Ok(Ok(())) => {
                    if failing {
                        tracing::info!(worker = %self.worker_id, "heartbeat restored");
                    }
                    failing = false;
                }
                Ok(Err(reason)) => {
                    if !failing {
                        tracing::warn!(worker = %self.worker_id, %reason, "heartbeat failed; retrying");
                    }
                    failing = true;
                }
                Err(_) => {
                    if !failing {
                        tracing::warn!(worker = %self.worker_id, "heartbeat timed out; retrying");
                    }
                    failing = true;
                }
            }
        }
    }

    /// Deletes the entry (clean shutdown), trying for at most `within`.
    pub(crate) async fn deregister(&self, within: Duration) {
        match tokio::time::timeout(within, self.store.delete(&self.worker_id)).await {
            Ok(Ok(())) => tracing::info!(worker = %self.worker_id, "deregistered"),
            Ok(Err(e)) => tracing::warn!(
                worker = %self.worker_id,
                reason = %e,
                "could not deregister; the entry expires by itself"
            ),
            Err(_) => tracing::warn!(
                worker = %self.worker_id,
                "deregistering timed out; the entry expires by itself"
            ),
        }
    }
}

/// A status shared by the stages that change it.
pub(crate) type SharedStatus = Arc<watch::Sender<Status>>;
