//! Job leases: before each run of a task that must not run on two replicas at once, the
//! runner takes the task's lease for an interval and a half. The holder renews it on its
//! next tick and gives it up when it stops; another replica takes it over then, or once it
//! has expired (its holder died).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::Error;
use crate::services::pki::Pki;

/// Where job leases are kept.
pub trait Leases: Send + Sync {
    /// Take or renew the lease of job `job` for `owner`, to hold for `hold`: true if
    /// `owner` holds it now, false if another owner's lease has not expired.
    fn take<'a>(
        &'a self,
        job: &'a str,
        owner: &'a str,
        hold: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Give up `owner`'s lease of job `job`, if it holds it (when its runner stops).
    fn release<'a>(&'a self, job: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), Error>>;
}

/// Leases in the database (`job_leases`), shared by every replica on it; expiry is
/// judged by the injected clock, in whole seconds.
#[derive(Debug, Clone)]
pub struct StoreLeases(Arc<Pki>);

impl StoreLeases {
    /// Leases in `pki`'s store.
    pub fn new(pki: Arc<Pki>) -> StoreLeases {
        StoreLeases(pki)
    }
}

impl Leases for StoreLeases {
    fn take<'a>(
        &'a self,
        job: &'a str,
        owner: &'a str,
        hold: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let now = self.0.now().unix_timestamp();
            let secs = i64::try_from(hold.as_secs_f64().ceil() as u64)
                .unwrap_or(i64::MAX)
                .max(1);
            Ok(self
                .0
                .store()
                .take_job_lease(job, owner, now, now.saturating_add(secs))
                .await?)
        })
    }

    fn release<'a>(&'a self, job: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.0.store().release_job_lease(job, owner).await?;
            Ok(())
        })
    }
}
