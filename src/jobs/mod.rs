//! The one runner of background work: periodic tasks and work handed over by the
//! services (a challenge to validate, a scan to run). Nothing else spawns tasks that
//! outlive a request; everything here stops on shutdown.

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A handle to the runner: cheap to clone, shared by the services and the server.
#[derive(Clone, Debug, Default)]
pub struct Jobs {
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Jobs {
    /// A runner with nothing running.
    pub fn new() -> Jobs {
        Jobs::default()
    }

    /// Run `task` in the background until it ends or the runner stops, whichever is first.
    /// `name` says what it is in the logs.
    pub fn submit<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.stop.is_cancelled() {
            tracing::debug!(job = name, "not started: shutting down");
            return;
        }
        let stop = self.stop.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = task => {}
                _ = stop.cancelled() => tracing::debug!(job = name, "stopped by shutdown"),
            }
        });
    }

    /// A token that is cancelled when the runner stops.
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stop every task and wait until all have ended.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}
