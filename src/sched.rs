//! The server's threads run under Linux's `SCHED_BATCH` scheduling policy.
//!
//! The work of one request passes between threads: a tokio worker prepares a write and
//! queues it for the SQLite writer thread, a query goes to sqlx's connection thread and
//! its answer comes back. Under the default policy each of those wake-ups preempts the
//! thread that caused it whenever they share a core, so the writer commits a batch of
//! one or two writes and a query's hand-off costs two context switches at once.
//! `SCHED_BATCH` gives a thread the same share of the CPU (the nice value is kept at 0)
//! but a wake-up never preempts the running thread: the woken thread runs when the
//! running one waits or its time slice ends, and by then more work has queued for it.
//! On one pinned core this doubled the writer's batches and cut the CPU per REST
//! certificate by 15 % and per ACME issuance by about 10 % (BENCHMARKS.md). Where threads
//! have cores of their own nothing changes; against other processes on a busy core the
//! server's wake-ups wait for the end of their time slice (a few milliseconds at most).
//!
//! `certkeeper serve` sets it on its main thread before it starts any other, so every
//! thread of the process (tokio's workers, sqlx's connection threads, the writer)
//! inherits it; the SQLite writer sets it on its own threads too, for servers started
//! inside another program. `server.batch_scheduling = false` leaves every thread under
//! the policy the process was started with.

/// Put the calling thread, and the threads it starts from now on, under `SCHED_BATCH` at
/// nice 0. Where that is refused, or on other systems, the thread keeps its policy.
pub fn run_as_batch_work() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue,
            ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
        };
        if let Err(e) = set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Os(ThreadPriorityOsValue::default()),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
        ) {
            tracing::debug!(error = ?e, "this thread keeps its scheduling policy");
        }
    }
}
