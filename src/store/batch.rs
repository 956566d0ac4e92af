//! Group commit: jobs that arrive while the database is busy are written together.
//!
//! Every write that must be durable before its caller is answered costs a commit, and on
//! SQLite commits happen one at a time. Under load a queue forms anyway; this module turns
//! that queue into batches: the first job is taken, then whatever else is already waiting
//! (up to a limit), and one [`BatchWrite::write`] handles them all. Each caller is answered
//! only after the batch is committed. If a batch fails, its jobs are written one by one so
//! that one bad job cannot fail the others.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// How a kind of job is written in batches.
pub(crate) trait BatchWrite: Send + Sync + 'static {
    /// One caller's request.
    type Job: Send + 'static;
    /// What each caller gets back.
    type Out: Send + 'static;
    /// The most jobs in one batch (bound values must stay under the engines' limits).
    const MAX_BATCH: usize;

    /// Write `jobs` durably; one answer per job, in order.
    fn write(
        &self,
        jobs: &[Self::Job],
    ) -> impl Future<Output = Result<Vec<Self::Out>, StoreError>> + Send;
}

type Queued<W> = (
    <W as BatchWrite>::Job,
    oneshot::Sender<Result<<W as BatchWrite>::Out, StoreError>>,
);

/// The handle that queues jobs for one writer task.
pub(crate) struct Batcher<W: BatchWrite> {
    tx: mpsc::Sender<Queued<W>>,
}

impl<W: BatchWrite> Clone for Batcher<W> {
    fn clone(&self) -> Self {
        Batcher {
            tx: self.tx.clone(),
        }
    }
}

impl<W: BatchWrite> std::fmt::Debug for Batcher<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batcher")
    }
}

impl<W: BatchWrite> Batcher<W> {
    /// Start the writer task.
    pub(crate) fn start(writer: W) -> Batcher<W> {
        let (tx, rx) = mpsc::channel(4 * W::MAX_BATCH);
        tokio::spawn(run(writer, rx));
        Batcher { tx }
    }

    /// Queue one job and wait until it is committed.
    pub(crate) async fn submit(&self, job: W::Job) -> Result<W::Out, StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((job, done))
            .await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?;
        wait.await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?
    }
}

async fn run<W: BatchWrite>(writer: W, mut rx: mpsc::Receiver<Queued<W>>) {
    let mut jobs = Vec::with_capacity(W::MAX_BATCH);
    let mut waiting = Vec::with_capacity(W::MAX_BATCH);
    while let Some((job, done)) = rx.recv().await {
        jobs.push(job);
        waiting.push(done);
        while jobs.len() < W::MAX_BATCH {
            match rx.try_recv() {
                Ok((job, done)) => {
                    jobs.push(job);
                    waiting.push(done);
                }
                Err(_) => break,
            }
        }
        match writer.write(&jobs).await {
            Ok(outs) if outs.len() == jobs.len() => {
                for (done, out) in waiting.drain(..).zip(outs) {
                    let _ = done.send(Ok(out));
                }
            }
            Ok(_) => {
                for done in waiting.drain(..) {
                    let _ = done.send(Err(StoreError::Db(sqlx::Error::Protocol(
                        "a batch write answered the wrong number of jobs".into(),
                    ))));
                }
            }
            Err(e) if jobs.len() == 1 => {
                if let Some(done) = waiting.pop() {
                    let _ = done.send(Err(e));
                }
            }
            Err(_) => {
                // One bad job must not fail the others: write each on its own.
                for (job, done) in jobs.drain(..).zip(waiting.drain(..)) {
                    let r = writer
                        .write(std::slice::from_ref(&job))
                        .await
                        .and_then(|mut outs| {
                            outs.pop().ok_or_else(|| {
                                StoreError::Db(sqlx::Error::Protocol(
                                    "a batch write answered nothing".into(),
                                ))
                            })
                        });
                    let _ = done.send(r);
                }
            }
        }
        jobs.clear();
        waiting.clear();
    }
}
