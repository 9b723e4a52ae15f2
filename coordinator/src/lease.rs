//! The active coordinator's lease: one key in a JetStream key-value bucket whose entries
//! expire after the lease's time to live. The active coordinator renews it (a
//! compare-and-set on the revision it last wrote); a standby waits until the key is gone
//! (the active one stopped renewing: killed, its machine or network gone) and creates it.
//!
//! Two coordinators can never both believe they hold it for longer than one renewal
//! interval, and L1 is the final fence: the contract takes batch N once, on top of the root
//! of batch N - 1, so a coordinator that lost its lease without noticing cannot commit a
//! batch twice.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use pulse_protocol::LEASE_BUCKET;
/// The key the active coordinator holds.
pub const LEASE_KEY: &str = "active";

/// Why the lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// JetStream refused or did not answer.
    #[error(
        "the coordinator lease on NATS JetStream ({what}): {reason}; check that JetStream runs and this coordinator's user may use the {LEASE_BUCKET} bucket"
    )]
    Nats {
        /// What was being done.
        what: &'static str,
        /// The server's answer.
        reason: String,
    },
    /// Another coordinator holds it now.
    #[error("the coordinator lease was taken over by `{0}`: this coordinator stops")]
    Lost(String),
    /// Asked to stop while waiting.
    #[error("stopped while waiting for the coordinator lease")]
    Cancelled,
}

fn nats(what: &'static str, e: impl std::fmt::Display) -> LeaseError {
    LeaseError::Nats {
        what,
        reason: e.to_string(),
    }
}

/// The pause before another try after a failed read or create of the lease.
const RETRY: Duration = Duration::from_millis(250);

/// Failures of the lease bucket while taking the lease, forgiven for one time to live.
///
/// A bucket just created on a JetStream cluster answers "no responders" to reads until
/// its replicas are up, and a stream leader's election makes requests time out for a few
/// seconds: both pass. A failure that lasts a whole time to live does not.
#[derive(Default)]
struct Transient {
    since: Option<std::time::Instant>,
}

impl Transient {
    /// Records `error`: `Ok` while failures have lasted less than `ttl`, else the error.
    fn note(&mut self, error: LeaseError, ttl: Duration) -> Result<(), LeaseError> {
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() >= ttl {
            return Err(error);
        }
        warn!(%error, "the coordinator lease bucket did not answer; trying again");
        Ok(())
    }
}

/// Sleeps for `d`, or returns [`LeaseError::Cancelled`] as soon as `cancel` fires.
async fn pause(cancel: &CancellationToken, d: Duration) -> Result<(), LeaseError> {
    tokio::select! {
        () = cancel.cancelled() => Err(LeaseError::Cancelled),
        () = tokio::time::sleep(d) => Ok(()),
    }
}

/// A held lease.
pub struct Lease {
    kv: kv::Store,
    holder: String,
    revision: u64,
    ttl: Duration,
}

async fn bucket(
    js: &jetstream::Context,
    ttl: Duration,
    replicas: usize,
) -> Result<kv::Store, LeaseError> {
    js.create_or_update_key_value(kv::Config {
        bucket: LEASE_BUCKET.to_owned(),
        description: "which coordinator is active (expires unless renewed)".to_owned(),
        history: 1,
        max_age: ttl,
        storage: jetstream::stream::StorageType::File,
        num_replicas: replicas.clamp(1, pulse_protocol::nats::MAX_REPLICAS),
        ..Default::default()
    })
    .await
    .map_err(|e| nats("opening the bucket", e))
}

impl Lease {
    /// Takes the lease for `holder`, waiting (as a standby) while another coordinator holds
    /// it. A coordinator restarted under the same name takes its own lease back at once.
    ///
    /// # Errors
    /// [`LeaseError::Nats`] when the bucket cannot be made, or fails to answer for a whole
    /// time to live (shorter failures are retried); [`LeaseError::Cancelled`] when `cancel`
    /// fires first.
    pub async fn acquire(
        js: &jetstream::Context,
        holder: &str,
        ttl: Duration,
        replicas: usize,
        cancel: &CancellationToken,
    ) -> Result<Self, LeaseError> {
        let kv = bucket(js, ttl, replicas).await?;
        let mut waiting_for: Option<String> = None;
        let mut failing = Transient::default();
        loop {
            let entry = match kv.entry(LEASE_KEY).await {
                Ok(entry) => {
                    failing = Transient::default();
                    entry
                }
                Err(e) => {
                    failing.note(nats("reading", e), ttl)?;
                    pause(cancel, RETRY).await?;
                    continue;
                }
            };
            match entry {
                Some(e) if e.operation == kv::Operation::Put => {
                    let current = String::from_utf8_lossy(&e.value).into_owned();
                    if current == holder {
                        let revision = kv
                            .update(LEASE_KEY, holder.to_owned().into(), e.revision)
                            .await
                            .map_err(|e| nats("taking back its own lease", e))?;
                        info!(holder, "coordinator lease taken back");
                        return Ok(Self {
                            kv,
                            holder: holder.to_owned(),
                            revision,
                            ttl,
                        });
                    }
                    if waiting_for.as_deref() != Some(current.as_str()) {
                        info!(active = %current, "standing by: another coordinator holds the lease");
                        waiting_for = Some(current);
                    }
                }
                _ => match kv.create(LEASE_KEY, holder.to_owned().into()).await {
                    Ok(revision) => {
                        info!(
                            holder,
                            "coordinator lease taken: this coordinator is active"
                        );
                        return Ok(Self {
                            kv,
                            holder: holder.to_owned(),
                            revision,
                            ttl,
                        });
                    }
                    // Another standby was quicker.
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                    Err(e) => {
                        failing.note(nats("taking the lease", e), ttl)?;
                        pause(cancel, RETRY).await?;
                        continue;
                    }
                },
            }
            pause(cancel, ttl / 5).await?;
        }
    }

    /// Renews the lease.
    ///
    /// # Errors
    /// [`LeaseError::Lost`] when another coordinator holds it now (or it expired and was
    /// taken); [`LeaseError::Nats`] when JetStream does not answer (the caller retries
    /// until the time to live runs out).
    pub async fn renew(&mut self) -> Result<(), LeaseError> {
        match self
            .kv
            .update(LEASE_KEY, self.holder.clone().into(), self.revision)
            .await
        {
            Ok(r) => {
                self.revision = r;
                Ok(())
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                let now = self
                    .kv
                    .get(LEASE_KEY)
                    .await
                    .ok()
                    .flatten()
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
                    .unwrap_or_else(|| "nobody".to_owned());
                Err(LeaseError::Lost(now))
            }
            Err(e) => Err(nats("renewing", e)),
        }
    }

    /// Keeps the lease, renewing it every third of its time to live, until `release`
    /// fires (it is released), `abandon` fires (renewals stop; it expires) or it is lost
    /// (`lost` is cancelled).
    pub async fn keep(
        mut self,
        release: CancellationToken,
        abandon: CancellationToken,
        lost: CancellationToken,
    ) {
        let every = self.ttl / 3;
        let mut failing_since: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                biased;
                () = release.cancelled() => {
                    self.release().await;
                    return;
                }
                () = abandon.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            match self.renew().await {
                Ok(()) => failing_since = None,
                Err(e @ LeaseError::Lost(_)) => {
                    warn!(error = %e, "coordinator lease lost");
                    lost.cancel();
                    return;
                }
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                    warn!(error = %e, "coordinator lease not renewed; retrying");
                    // Past the time to live a standby may hold it: stop being active.
                    if since.elapsed() + every >= self.ttl {
                        warn!("coordinator lease could not be renewed within its time to live");
                        lost.cancel();
                        return;
                    }
                }
            }
        }
    }

    /// Gives the lease up, so that a standby takes over at once.
    pub async fn release(self) {
        if let Err(e) = self
            .kv
            .delete_expect_revision(LEASE_KEY, Some(self.revision))
            .await
        {
            warn!(error = %e, "the coordinator lease was not released; it expires by itself");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_forgiven_for_one_time_to_live_only() {
        let ttl = Duration::from_millis(300);
        let failure = || nats("reading", "no responders");
        let mut failing = Transient::default();
        assert!(failing.note(failure(), ttl).is_ok());
        std::thread::sleep(Duration::from_millis(100));
        assert!(failing.note(failure(), ttl).is_ok());
        std::thread::sleep(ttl);
        let e = failing
            .note(failure(), ttl)
            .expect_err("a failure lasting the ttl");
        assert!(e.to_string().contains("no responders"), "{e}");
        // A success in between starts the count again.
        let mut failing = Transient::default();
        assert!(failing.note(failure(), ttl).is_ok());
    }
}
