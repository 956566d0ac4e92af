//! The server's threads run under Linux's `SCHED_BATCH` scheduling policy.
//!
//! The work of one request passes between threads: a tokio worker prepares a write and
//! queues it for the SQLite writer thread, a query goes to sqlx's connection thread and
//! its answer comes back. Under the default policy each of those wake-ups preempts the
//! thread that caused it whenever they share a core, so the writer commits a batch of
//! one or two writes and a query's hand-off costs two context switches at once.
//! `SCHED_BATCH` gives a thread the same share of the CPU
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
//! the policy the process was started with, and so does starting it under another policy
//! or nice value (`chrt`, `nice`, systemd's `Nice=`).

/// A thread's scheduling policy (0 `SCHED_OTHER`, 3 `SCHED_BATCH`, ...) and nice value, as
/// Linux shows them in `/proc/<pid>/task/<tid>/stat` (fields 41 and 19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduling {
    /// The policy's number.
    pub policy: u32,
    /// The nice value.
    pub nice: i32,
}

/// The policy number of `SCHED_BATCH`.
pub const SCHED_BATCH: u32 = 3;

impl Scheduling {
    /// Read from the text of a thread's `stat` file; `None` if it is not one.
    pub fn from_stat(stat: &str) -> Option<Scheduling> {
        // The command (field 2) is in parentheses and may hold spaces; the fields after
        // its closing parenthesis start at field 3.
        let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
        Some(Scheduling {
            nice: fields.get(19 - 3)?.parse().ok()?,
            policy: fields.get(41 - 3)?.parse().ok()?,
        })
    }

    /// Linux's default: `SCHED_OTHER` at nice 0.
    pub const DEFAULT: Scheduling = Scheduling { policy: 0, nice: 0 };

    /// What [`run_as_batch_work`] leaves a thread that ran under `self`.
    pub fn under_batch_work(self) -> Scheduling {
        if self == Scheduling::DEFAULT {
            Scheduling {
                policy: SCHED_BATCH,
                nice: 0,
            }
        } else {
            self
        }
    }

    /// The calling thread's, where `/proc` shows it.
    pub fn current() -> Option<Scheduling> {
        Scheduling::from_stat(&std::fs::read_to_string("/proc/thread-self/stat").ok()?)
    }
}

/// Put the calling thread, and the threads it starts from now on, under `SCHED_BATCH`. A
/// thread that does not run under the default policy at nice 0 (the process was started
/// with `chrt` or `nice`) is left as it is, and so is one where the change is refused or
/// the system is not Linux.
pub fn run_as_batch_work() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue,
            ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
        };
        // The crate sets the nice value with the policy; only 0 is kept by that.
        if Scheduling::current() != Some(Scheduling::DEFAULT) {
            return;
        }
        if let Err(e) = set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Os(ThreadPriorityOsValue::default()),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
        ) {
            tracing::debug!(error = ?e, "this thread keeps its scheduling policy");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_command() {
        // A command with a space and a parenthesis in it; nice 5, policy 3.
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 10 0 0 0 1 2 0 0 20 5 3 0 100 \
                    1000 50 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 3 0 0 0";
        assert_eq!(
            Scheduling::from_stat(stat),
            Some(Scheduling { policy: 3, nice: 5 })
        );
        assert_eq!(Scheduling::from_stat("42 (x) S 1"), None);
        let me = Scheduling::current().expect("/proc/thread-self/stat");
        assert!(me.nice >= -20 && me.nice <= 19, "{me:?}");
    }
}
