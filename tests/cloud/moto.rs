//! `moto` in server mode, standing in for AWS Certificate Manager. `.ci/run` installs it
//! into a virtual environment under `target/moto-venv`; `CERTKEEPER_TEST_MOTO` may name
//! another `moto_server` executable.

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
        let exe = executable();
        assert!(
            std::path::Path::new(&exe).exists(),
            "{exe} is missing: run .ci/run, or create the venv with \
             `python3 -m venv target/moto-venv && target/moto-venv/bin/pip install 'moto[server]'`"
        );
        let port = super::super::common::free_port();
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
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
}
