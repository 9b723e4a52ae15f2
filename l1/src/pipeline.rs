//! One ordered pipeline of batch commits over an [`L1Sender`]: batches are committed in the
//! order they are submitted, one at a time; node failures are retried with backoff (never
//! dropped); refusals come back to the submitter.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{BatchCommit, Committed, L1Error, L1Sender};

type Job = (BatchCommit, oneshot::Sender<Result<Committed, L1Error>>);

/// The handle to a running pipeline.
#[derive(Clone, Debug)]
pub struct SenderPipeline {
    jobs: mpsc::Sender<Job>,
}

/// The pipeline has stopped (cancelled, or its task ended).
#[derive(Debug, thiserror::Error)]
#[error("the L1 sender pipeline has stopped")]
pub struct PipelineStopped;

impl SenderPipeline {
    /// Starts the pipeline on the current runtime; it stops when `cancel` is cancelled
    /// (a commit in flight is abandoned: the next run finds it on chain or sends it again).
    pub fn spawn(
        sender: L1Sender,
        capacity: usize,
        cancel: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (jobs, mut rx) = mpsc::channel::<Job>(capacity.max(1));
        let task = tokio::spawn(async move {
            loop {
                let job = tokio::select! {
                    () = cancel.cancelled() => return,
                    job = rx.recv() => job,
                };
                let Some((batch, reply)) = job else { return };
                let mut backoff = Duration::from_millis(500);
                let result = loop {
                    let attempt = tokio::select! {
                        () = cancel.cancelled() => return,
                        r = sender.commit(&batch) => r,
                    };
                    match attempt {
                        Err(e) if e.is_transient() => {
                            warn!(batch = batch.number, error = %e, retry_in = ?backoff, "L1 commit failed; retrying");
                            tokio::select! {
                                () = cancel.cancelled() => return,
                                () = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                        }
                        other => break other,
                    }
                };
                // The submitter may have gone away; the batch is committed regardless.
                let _ = reply.send(result);
            }
        });
        (Self { jobs }, task)
    }

    /// Queues `batch`; the receiver yields when it is final (or refused).
    ///
    /// # Errors
    /// [`PipelineStopped`] when the pipeline no longer runs.
    pub async fn submit(
        &self,
        batch: BatchCommit,
    ) -> Result<oneshot::Receiver<Result<Committed, L1Error>>, PipelineStopped> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((batch, tx))
            .await
            .map_err(|_| PipelineStopped)?;
        Ok(rx)
    }
}
