//! The runner on real time with short intervals, and job leases on SQLite.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

use super::*;
use crate::error::Error;

fn counter(jobs: &Jobs, every: Every) -> Arc<AtomicUsize> {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    jobs.every(every, move || {
        let r = r.clone();
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(())
        }
    });
    runs
}

#[tokio::test]
async fn runs_at_once_then_on_its_interval_until_shutdown() {
    let jobs = Jobs::new();
    let runs = counter(&jobs, Every::new("tick", Duration::from_millis(200)));
    // The first run comes at once: long before the first interval ends (waited for in
    // steps, so a loaded machine that is slow to schedule it still sees it).
    let started = std::time::Instant::now();
    while runs.load(Ordering::SeqCst) == 0 && started.elapsed() < Duration::from_millis(150) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the first run is at once");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(runs.load(Ordering::SeqCst) >= 3, "runs on its interval");
    jobs.shutdown().await;
    let after = runs.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(runs.load(Ordering::SeqCst), after, "no run after shutdown");
    // Nothing starts on a stopped runner.
    let late = counter(&jobs, Every::new("late", Duration::from_millis(1)));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(late.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn first_run_can_wait_one_interval() {
    let jobs = Jobs::new();
    let runs = counter(
        &jobs,
        Every::new("later", Duration::from_millis(300)).after_first_interval(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(runs.load(Ordering::SeqCst) >= 1);
    jobs.shutdown().await;
}

#[tokio::test]
async fn a_failed_run_is_logged_and_the_next_one_runs() {
    let jobs = Jobs::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    jobs.every(Every::new("fails", Duration::from_millis(10)), move || {
        let r = r.clone();
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Error::Internal("boom".into()))
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(runs.load(Ordering::SeqCst) >= 2);
    jobs.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_a_run_finish_within_its_grace_and_drops_it_after() {
    let jobs = Jobs::new();
    let finished = Arc::new(AtomicUsize::new(0));
    let f = finished.clone();
    jobs.every(
        Every::new("short", Duration::from_secs(3600)).grace(Duration::from_secs(5)),
        move || {
            let f = f.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                f.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Error>(())
            }
        },
    );
    jobs.every(
        Every::new("endless", Duration::from_secs(3600)).grace(Duration::ZERO),
        || async {
            std::future::pending::<()>().await;
            Ok::<_, Error>(())
        },
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    tokio::time::timeout(Duration::from_secs(3), jobs.shutdown())
        .await
        .expect("shutdown waits for the short run only");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the run under way finished"
    );
}

/// Submitted work under way at shutdown gets the grace to finish (a validation a
/// draining replica started); work that does not finish by then is dropped.
#[tokio::test]
async fn submitted_work_finishes_within_the_grace_on_shutdown() {
    let jobs = Jobs::new();
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    jobs.submit("quick", async move {
        d.fetch_add(1, Ordering::SeqCst);
    });
    let d = done.clone();
    jobs.submit("under way", async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        d.fetch_add(1, Ordering::SeqCst);
    });
    jobs.submit("endless", std::future::pending());
    tokio::time::sleep(Duration::from_millis(20)).await;
    tokio::time::timeout(SHUTDOWN_GRACE * 3, jobs.shutdown())
        .await
        .expect("shutdown stops endless work after the grace");
    assert_eq!(
        done.load(Ordering::SeqCst),
        2,
        "the work under way finished"
    );
}

/// Leases in memory, expiring on tokio's clock.
#[derive(Default)]
struct MemoryLeases(Mutex<HashMap<String, (String, tokio::time::Instant)>>);

impl Leases for MemoryLeases {
    fn take<'a>(
        &'a self,
        job: &'a str,
        owner: &'a str,
        hold: Duration,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let now = tokio::time::Instant::now();
            let mut map = self.0.lock().unwrap();
            let free = match map.get(job) {
                None => true,
                Some((o, until)) => o == owner || *until <= now,
            };
            if free {
                map.insert(job.to_owned(), (owner.to_owned(), now + hold));
            }
            Ok(free)
        })
    }

    fn release<'a>(&'a self, job: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut map = self.0.lock().unwrap();
            if map.get(job).is_some_and(|(o, _)| o == owner) {
                map.remove(job);
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_leased_task_runs_on_one_of_two_runners() {
    let leases: Arc<dyn Leases> = Arc::new(MemoryLeases::default());
    let ran: Arc<Mutex<Vec<String>>> = Arc::default();
    let (a, b) = (Jobs::new(), Jobs::new());
    for jobs in [&a, &b] {
        let ran = ran.clone();
        let owner = jobs.owner().to_owned();
        jobs.every(
            Every::new("once", Duration::from_millis(30)).leased(leases.clone()),
            move || {
                let (ran, owner) = (ran.clone(), owner.clone());
                async move {
                    ran.lock().unwrap().push(owner);
                    Ok::<_, Error>(())
                }
            },
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let owners: Vec<String> = ran.lock().unwrap().clone();
    assert!(owners.len() >= 3, "the holder keeps running it: {owners:?}");
    assert!(
        owners.iter().all(|o| *o == owners[0]),
        "only one runner ran it: {owners:?}"
    );
    // The holder stops and gives the lease up: the other takes it over on its next tick.
    let holder = if owners[0] == a.owner() { &a } else { &b };
    holder.shutdown().await;
    let before = ran.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let taken: Vec<String> = ran.lock().unwrap()[before..].to_vec();
    assert!(!taken.is_empty(), "taken over");
    assert!(taken.iter().all(|o| *o != owners[0]));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn store_leases_are_a_compare_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::config::Settings::load(dir.path(), None).unwrap();
    let store = crate::store::Store::connect(&settings).await.unwrap();
    assert!(store.take_job_lease("crl", "a", 100, 160).await.unwrap());
    assert!(!store.take_job_lease("crl", "b", 120, 180).await.unwrap());
    assert!(store.take_job_lease("other", "b", 120, 180).await.unwrap());
    assert!(
        store.take_job_lease("crl", "a", 159, 219).await.unwrap(),
        "renewed"
    );
    assert!(!store.take_job_lease("crl", "b", 200, 260).await.unwrap());
    assert!(
        store.take_job_lease("crl", "b", 219, 279).await.unwrap(),
        "expired"
    );
    assert!(!store.take_job_lease("crl", "a", 220, 280).await.unwrap());
    assert!(
        !store.release_job_lease("crl", "a").await.unwrap(),
        "not a's"
    );
    assert!(store.release_job_lease("crl", "b").await.unwrap());
    assert!(
        store.take_job_lease("crl", "a", 221, 281).await.unwrap(),
        "released"
    );
    store.close().await;
}
