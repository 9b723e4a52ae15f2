//! Reaching NATS and finding the coordinator's JetStream layout.
//!
//! The worker never creates streams, consumers or buckets: the coordinator owns the layout
//! (`pulse_protocol::nats::ensure_layout`). A worker started before its coordinator waits
//! for the layout, saying so.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::PullConsumer, kv};
use async_nats::{ConnectErrorKind, ConnectOptions};
use pulse_protocol::{JOB_CONSUMER, JOB_STREAM, WORKER_BUCKET};
use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;

/// How long one connection attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the worker could not reach NATS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The server refused the credentials: retrying cannot help.
    #[error(
        "NATS at {url} refused this worker's credentials ({reason}); check --nats-credentials (the file `pulse nats worker add` wrote for this worker) or ask the operator whether it was revoked"
    )]
    Unauthorized {
        /// The server.
        url: String,
        /// The client's message.
        reason: String,
    },
    /// The credentials file or the CA cannot be used.
    #[error("{0}")]
    Setup(String),
    /// TLS failed: the server is not the one the CA vouches for, or the CA is missing.
    #[error(
        "TLS with NATS at {url} failed ({reason}); pass the cluster's CA certificate with --nats-ca and check the URL's host is the one in the server's certificate"
    )]
    Tls {
        /// The server.
        url: String,
        /// The client's message.
        reason: String,
    },
    /// The URL cannot be used.
    #[error("`{url}` is not a NATS URL ({reason}); use nats://host:4222")]
    BadUrl {
        /// The URL.
        url: String,
        /// The client's message.
        reason: String,
    },
    /// The server did not answer within the connect timeout.
    #[error(
        "could not reach NATS at {url} in {attempts} attempts over {waited:?}: {reason}; check the URL, the network, and that nats-server runs"
    )]
    Unreachable {
        /// The server.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        waited: Duration,
        /// The last failure.
        reason: String,
    },
}

/// Exponential backoff between retries, capped.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    first: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Self {
            next: first,
            first,
            max,
        }
    }

    /// The delay to wait now; doubles the next one.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }

    /// Sleeps for the next delay; `false` if `shutdown` came first.
    pub(crate) async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let d = self.next_delay();
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(d) => true,
        }
    }
}

fn options(config: &WorkerConfig) -> Result<ConnectOptions, ConnectError> {
    let worker = config.worker_id.clone();
    let options = ConnectOptions::new()
        .name(format!("pulse-worker {}", config.worker_id))
        .connection_timeout(ATTEMPT_TIMEOUT)
        .event_callback(move |event| {
            let worker = worker.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!(%worker, "connected to NATS")
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!(%worker, "disconnected from NATS; reconnecting")
                    }
                    async_nats::Event::Closed => tracing::debug!(%worker, "NATS connection closed"),
                    // Every failed reconnection attempt reports one; the disconnection
                    // was already logged.
                    async_nats::Event::ClientError(e) => {
                        tracing::debug!(%worker, reason = %e, "NATS client error")
                    }
                    other => tracing::warn!(%worker, event = %other, "NATS event"),
                }
            }
        });
    config
        .nats
        .apply(options)
        .map_err(|e| ConnectError::Setup(e.to_string()))
}

/// Connects to NATS, retrying with backoff for up to `config.connect_timeout`. After this,
/// the client reconnects by itself whenever the connection drops. `Ok(None)` when shutdown
/// is asked meanwhile.
///
/// # Errors
/// [`ConnectError`]: bad credentials or URL at once, an unreachable server after the
/// timeout.
pub async fn connect(
    config: &WorkerConfig,
    shutdown: &CancellationToken,
) -> Result<Option<async_nats::Client>, ConnectError> {
    let url = config.nats.url.clone();
    let servers = config.nats.servers();
    let start = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    let mut attempts = 0;
    loop {
        attempts += 1;
        let reason = match options(config)?.connect(servers.as_slice()).await {
            Ok(client) => return Ok(Some(client)),
            Err(e) => match e.kind() {
                ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                    return Err(ConnectError::Unauthorized {
                        url,
                        reason: e.to_string(),
                    });
                }
                ConnectErrorKind::Tls => {
                    return Err(ConnectError::Tls {
                        url,
                        reason: e.to_string(),
                    });
                }
                ConnectErrorKind::ServerParse => {
                    return Err(ConnectError::BadUrl {
                        url,
                        reason: e.to_string(),
                    });
                }
                _ => e.to_string(),
            },
        };
        let waited = start.elapsed();
        if waited >= config.connect_timeout {
            return Err(ConnectError::Unreachable {
                url,
                attempts,
                waited,
                reason,
            });
        }
        tracing::warn!(%url, attempt = attempts, %reason, "cannot reach NATS yet; retrying");
        if !backoff.wait(shutdown).await {
            return Ok(None);
        }
    }
}

/// The parts of the coordinator's layout the worker uses.
pub struct Layout {
    /// The shared durable consumer of jobs.
    pub consumer: PullConsumer,
    /// The worker registry.
    pub registry: kv::Store,
    /// The consumer's ack wait: a job's lease.
    pub lease: Duration,
}

/// Opens the job consumer, or says what is missing.
pub(crate) async fn open_consumer(js: &jetstream::Context) -> Result<PullConsumer, String> {
    let stream = js
        .get_stream(JOB_STREAM)
        .await
        .map_err(|e| format!("job stream {JOB_STREAM}: {e}"))?;
    stream
        .get_consumer(JOB_CONSUMER)
        .await
        .map_err(|e| format!("consumer {JOB_CONSUMER} on {JOB_STREAM}: {e}"))
}

/// Opens this worker's consumer of shard jobs, which the coordinator creates when it first
/// sends the worker a shard.
pub(crate) async fn open_shard_consumer(
    js: &jetstream::Context,
    worker_id: &str,
) -> Result<PullConsumer, String> {
    let name = pulse_protocol::shard_consumer(worker_id);
    let stream = js
        .get_stream(pulse_protocol::SHARD_STREAM)
        .await
        .map_err(|e| format!("shard stream {}: {e}", pulse_protocol::SHARD_STREAM))?;
    stream
        .get_consumer(&name)
        .await
        .map_err(|e| format!("consumer {name}: {e}"))
}

async fn open_layout(js: &jetstream::Context) -> Result<Layout, String> {
    let mut consumer = open_consumer(js).await?;
    let lease = consumer
        .info()
        .await
        .map_err(|e| format!("consumer {JOB_CONSUMER} on {JOB_STREAM}: {e}"))?
        .config
        .ack_wait;
    let registry = js
        .get_key_value(WORKER_BUCKET)
        .await
        .map_err(|e| format!("key-value bucket {WORKER_BUCKET}: {e}"))?;
    Ok(Layout {
        consumer,
        registry,
        lease,
    })
}

/// Waits until the job stream, its consumer and the worker registry exist. `None` when
/// shutdown is asked meanwhile.
pub async fn wait_for_layout(
    js: &jetstream::Context,
    shutdown: &CancellationToken,
) -> Option<Layout> {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    loop {
        match open_layout(js).await {
            Ok(layout) => return Some(layout),
            Err(missing) => tracing::info!(
                %missing,
                "the coordinator has not set up NATS yet (it creates the streams when it starts); waiting"
            ),
        }
        if !backoff.wait(shutdown).await {
            return None;
        }
    }
}
