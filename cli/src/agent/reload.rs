//! Running a reload command: no shell, a time limit (the command is killed past it), and
//! only the first bytes of its output kept.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The most output kept from a reload command (the rest is read and dropped).
pub const MAX_OUTPUT: usize = 4096;

/// How a reload went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Whether it exited with status 0 in time.
    pub ok: bool,
    /// Its output (stdout, then stderr), at most [`MAX_OUTPUT`] bytes each, and why it
    /// failed.
    pub output: String,
}

/// Read `r` to its end, keeping the first [`MAX_OUTPUT`] bytes.
async fn bounded(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = MAX_OUTPUT.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

/// Run `argv` (program and arguments) with `timeout`.
pub async fn run(argv: &[String], timeout: Duration) -> Reloaded {
    let Some((program, args)) = argv.split_first() else {
        return Reloaded {
            ok: true,
            output: String::new(),
        };
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Reloaded {
                ok: false,
                output: format!("could not start {program:?}: {e}"),
            };
        }
    };
    let out = child.stdout.take().map(bounded);
    let err = child.stderr.take().map(bounded);
    let waited = tokio::time::timeout(timeout, async {
        let (o, e) = tokio::join!(
            async {
                match out {
                    Some(f) => f.await,
                    None => Vec::new(),
                }
            },
            async {
                match err {
                    Some(f) => f.await,
                    None => Vec::new(),
                }
            }
        );
        (child.wait().await, o, e)
    })
    .await;
    match waited {
        Ok((status, o, e)) => {
            let mut output = String::from_utf8_lossy(&o).into_owned();
            output.push_str(&String::from_utf8_lossy(&e));
            match status {
                Ok(s) if s.success() => Reloaded { ok: true, output },
                Ok(s) => Reloaded {
                    ok: false,
                    output: format!("{program:?} failed ({s}): {output}"),
                },
                Err(e) => Reloaded {
                    ok: false,
                    output: format!("waiting for {program:?}: {e}"),
                },
            }
        }
        // Dropping the future drops the child: kill_on_drop ends it.
        Err(_) => Reloaded {
            ok: false,
            output: format!("{program:?} did not finish within {timeout:?} and was killed"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn success_failure_timeout_and_bounded_output() {
        let ok = run(
            &argv(&["sh", "-c", "echo reloaded"]),
            Duration::from_secs(10),
        )
        .await;
        assert!(ok.ok);
        assert_eq!(ok.output.trim(), "reloaded");

        let bad = run(
            &argv(&["sh", "-c", "echo bad config >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .await;
        assert!(!bad.ok);
        assert!(bad.output.contains("bad config"), "{}", bad.output);

        let slow = run(&argv(&["sleep", "30"]), Duration::from_millis(200)).await;
        assert!(!slow.ok);
        assert!(slow.output.contains("killed"), "{}", slow.output);

        let loud = run(
            &argv(&["sh", "-c", "head -c 100000 /dev/zero | tr '\\\\0' x"]),
            Duration::from_secs(10),
        )
        .await;
        assert!(loud.ok);
        assert_eq!(loud.output.len(), MAX_OUTPUT);

        let missing = run(&argv(&["/no/such/program"]), Duration::from_secs(10)).await;
        assert!(!missing.ok);
        assert!(missing.output.contains("could not start"));
    }
}
