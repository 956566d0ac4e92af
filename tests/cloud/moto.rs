//! `moto` in server mode, standing in for AWS Certificate Manager, Secrets Manager, Elastic
//! Load Balancing and IAM. `.ci/test` installs it into a virtual environment under
//! `target/moto-venv`; `CERTKEEPER_TEST_MOTO` may name another `moto_server` executable.
//! Fixtures (load balancers, IAM users) are made with boto3 from that venv
//! (`moto_fixtures.py`).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`, stopped on drop.
pub struct Moto {
    pub url: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn executable() -> String {
    std::env::var("CERTKEEPER_TEST_MOTO").unwrap_or_else(|_| {
        format!(
            "{}/target/moto-venv/bin/moto_server",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// A server that enforces IAM: after the first `free_calls` requests (used to create
    /// users with [`Moto::user`]), every request must be signed by a user whose policy
    /// allows it.
    pub fn start_enforcing_iam(free_calls: u32) -> Moto {
        Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", &free_calls.to_string())])
    }

    fn start_with(env: &[(&str, &str)]) -> Moto {
        let exe = executable();
        assert!(
            std::path::Path::new(&exe).exists(),
            "{exe} is missing: run .ci/run, or create the venv with \
             `python3 -m venv target/moto-venv && target/moto-venv/bin/pip install 'moto[server]'`"
        );
        let port = super::super::common::free_port();
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            url: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    /// The destination configuration pointing at this server.
    pub fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "region": "us-east-1",
            "endpoint_url": self.url,
            "tags": {"owner": "certkeeper-tests", "env": "test"},
        })
    }

    /// Static test credentials (moto accepts any).
    pub fn credentials() -> serde_json::Value {
        serde_json::json!({"access_key_id": "AKIDTESTTESTTEST", "secret_access_key": "test-secret"})
    }

    /// Run a fixture of `moto_fixtures.py` with the venv's Python; its JSON output.
    fn fixture(&self, args: &[&str]) -> serde_json::Value {
        let exe = executable();
        let python = std::path::Path::new(&exe).with_file_name("python");
        let script = format!(
            "{}/tests/cloud/moto_fixtures.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let out = Command::new(python)
            .arg(script)
            .arg(&self.url)
            .args(args)
            .output()
            .expect("the fixture script runs");
        assert!(
            out.status.success(),
            "moto_fixtures.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A load balancer with two HTTPS listeners serving a placeholder certificate:
    /// `{"placeholder": ARN, "listeners": {"443": ARN, "8443": ARN}}`.
    pub fn load_balancer(&self) -> serde_json::Value {
        self.fixture(&["elb"])
    }

    /// An IAM user allowed only `actions` (4 requests): its credentials, as a destination
    /// takes them.
    pub fn user(&self, actions: &[&str]) -> serde_json::Value {
        let mut args = vec!["user"];
        args.extend_from_slice(actions);
        self.fixture(&args)
    }
}
