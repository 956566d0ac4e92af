//! The Helm chart in `deploy/helm/certkeeper`. Helm cannot be installed from the package
//! registries this project builds with, so the test renders the chart's templates the way
//! Helm does (Go text/template, with the few Helm functions the chart uses: `quote`, `add`,
//! `fail`), reads each result as Kubernetes YAML and checks the objects; then it starts the
//! real server with exactly the settings the rendered Deployment gives its container (on a
//! PostgreSQL database of its own) and checks the probes' endpoint answers. Where `helm` is
//! on the PATH, `helm lint` and `helm template` run as well.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, drop_database, free_port, pg_admin_url};
use gtmpl::{Context, FuncError, Template, Value};
use serde_yaml::Value as Yaml;

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/certkeeper")
}

/// YAML as a template value: mappings become maps, numbers keep their kind.
fn to_value(y: &Yaml) -> Value {
    match y {
        Yaml::Null => Value::Nil,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (_, Some(i)) => Value::from(i),
            _ => Value::from(n.as_f64().unwrap()),
        },
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(s) => Value::Array(s.iter().map(to_value).collect()),
        Yaml::Mapping(m) => Value::Map(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), to_value(v)))
                .collect(),
        ),
        Yaml::Tagged(t) => to_value(&t.value),
    }
}

/// Helm's `quote`: each argument as a double-quoted string.
fn quote(args: &[Value]) -> Result<Value, FuncError> {
    let parts: Vec<String> = args
        .iter()
        .map(|a| {
            let s = match a {
                Value::String(s) => s.clone(),
                Value::Nil | Value::NoValue => String::new(),
                other => other.to_string(),
            };
            serde_json::to_string(&s).unwrap()
        })
        .collect();
    Ok(Value::String(parts.join(" ")))
}

/// Helm's `add`: the sum of integer arguments.
fn add(args: &[Value]) -> Result<Value, FuncError> {
    let mut sum = 0i64;
    for a in args {
        match a {
            Value::Number(n) => sum += n.as_i64().ok_or(FuncError::UnableToConvertFromValue)?,
            _ => return Err(FuncError::UnableToConvertFromValue),
        }
    }
    Ok(Value::from(sum))
}

/// Helm's `fail`: stop rendering with a message.
fn fail(args: &[Value]) -> Result<Value, FuncError> {
    Err(FuncError::Generic(format!(
        "fail: {}",
        args.first().map(|a| a.to_string()).unwrap_or_default()
    )))
}

/// Deep-merge `over` into `base` (Helm's `--set`/`-f` over `values.yaml`).
fn merge(base: &mut Yaml, over: &Yaml) {
    match (base, over) {
        (Yaml::Mapping(b), Yaml::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Render every template with `values.yaml` and `overrides`; (template file, output) or
/// the first rendering error.
fn render(overrides: &str) -> Result<Vec<(String, String)>, String> {
    let dir = chart();
    let chart_yaml: Yaml =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("Chart.yaml")).unwrap()).unwrap();
    let mut values: Yaml =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("values.yaml")).unwrap()).unwrap();
    merge(&mut values, &serde_yaml::from_str(overrides).unwrap());
    let mut chart = HashMap::new();
    for (k, helm) in [
        ("name", "Name"),
        ("version", "Version"),
        ("appVersion", "AppVersion"),
    ] {
        chart.insert(helm.to_string(), to_value(&chart_yaml[k]));
    }
    let mut root = HashMap::new();
    root.insert("Values".to_string(), to_value(&values));
    root.insert("Chart".to_string(), Value::Map(chart));
    root.insert(
        "Release".to_string(),
        Value::Map(HashMap::from([
            ("Name".to_string(), Value::from("ck")),
            ("Namespace".to_string(), Value::from("pki")),
            ("Service".to_string(), Value::from("Helm")),
        ])),
    );
    let ctx = Context::from(Value::Map(root));
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.join("templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let mut t = Template::default();
        t.add_funcs(&[
            ("quote", quote as gtmpl::Func),
            ("add", add as gtmpl::Func),
            ("fail", fail as gtmpl::Func),
        ]);
        t.parse(std::fs::read_to_string(&f).unwrap())
            .map_err(|e| format!("{}: {e}", f.display()))?;
        let text = t
            .render(&ctx)
            .map_err(|e| format!("{}: {e}", f.display()))?;
        out.push((f.file_name().unwrap().to_string_lossy().into_owned(), text));
    }
    Ok(out)
}

/// The Kubernetes objects of a rendering, by kind.
fn objects(rendered: &[(String, String)]) -> HashMap<String, Yaml> {
    let mut by_kind = HashMap::new();
    for (file, text) in rendered {
        if text.trim().is_empty() {
            continue;
        }
        let doc: Yaml = serde_yaml::from_str(text)
            .unwrap_or_else(|e| panic!("{file} is not YAML: {e}\n{text}"));
        for field in ["apiVersion", "kind"] {
            assert!(
                doc[field].as_str().is_some(),
                "{file} has no {field}:\n{text}"
            );
        }
        assert!(doc["metadata"]["name"].as_str().is_some(), "{file}: {text}");
        by_kind.insert(doc["kind"].as_str().unwrap().to_string(), doc);
    }
    by_kind
}

const KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";

#[test]
fn chart_renders_to_valid_kubernetes_objects() {
    let rendered = render(&format!(
        "masterKey: {KEY}\nreplicaCount: 4\nserverNames: [pki.example.com]"
    ))
    .unwrap();
    let objs = objects(&rendered);
    let mut kinds: Vec<_> = objs.keys().cloned().collect();
    kinds.sort();
    assert_eq!(kinds, ["Deployment", "Secret", "Service"]);

    let secret = &objs["Secret"];
    assert_eq!(secret["metadata"]["name"], "ck-certkeeper");
    assert_eq!(secret["stringData"]["master-key"], KEY);
    assert!(
        secret["stringData"]["database-url"]
            .as_str()
            .unwrap()
            .starts_with("postgres://")
    );

    let svc = &objs["Service"];
    let ports: Vec<_> = svc["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["port"].as_u64().unwrap()))
        .collect();
    assert_eq!(ports, [("https", 8443), ("http", 8080), ("est", 8444)]);

    let dep = &objs["Deployment"];
    assert_eq!(dep["apiVersion"], "apps/v1");
    assert_eq!(dep["spec"]["replicas"], 4);
    assert_eq!(
        dep["spec"]["selector"]["matchLabels"],
        dep["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(
        svc["spec"]["selector"],
        dep["spec"]["selector"]["matchLabels"]
    );
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(
        pod["terminationGracePeriodSeconds"], 30,
        "drain grace + 10 s"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "certkeeper:0.1.0");
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], "http", "{probe}");
    }
    let env = c["env"].as_sequence().unwrap();
    let secret_ref = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .map(|e| e["valueFrom"]["secretKeyRef"].clone())
            .unwrap_or_else(|| panic!("{name} in {env:?}"))
    };
    assert_eq!(
        secret_ref("CERTKEEPER_DATABASE__URL")["name"],
        "ck-certkeeper"
    );
    assert_eq!(secret_ref("CERTKEEPER_CA__MASTER_KEY")["key"], "master-key");
    let names = env
        .iter()
        .find(|e| e["name"] == "CERTKEEPER_SERVER__CERT_NAMES")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    let names: Vec<String> = serde_json::from_str(&names).unwrap();
    assert_eq!(
        names,
        ["pki.example.com", "ck-certkeeper", "ck-certkeeper.pki.svc"]
    );

    // Where Helm itself is installed, it agrees.
    if Command::new("helm").arg("version").output().is_ok() {
        let chart = chart();
        for cmd in [&["lint"][..], &["template", "ck"][..]] {
            let out = Command::new("helm")
                .args(cmd)
                .args([
                    chart.to_str().unwrap(),
                    "--set",
                    &format!("masterKey={KEY}"),
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "helm {cmd:?}: {out:?}");
        }
    }
}

#[test]
fn chart_refuses_without_a_master_key_and_uses_an_existing_secret() {
    let err = render("masterKey: \"\"").unwrap_err();
    let without_est =
        objects(&render(&format!("masterKey: {KEY}\nservice: {{estPort: 0}}")).unwrap());
    let ports = without_est["Service"]["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .len();
    assert_eq!(ports, 2, "no EST port when estPort is 0");
    assert!(
        !serde_yaml::to_string(&without_est["Deployment"])
            .unwrap()
            .contains("MTLS_LISTEN")
    );
    assert!(err.contains("masterKey is required"), "{err}");
    let rendered = render("existingSecret: vault-synced").unwrap();
    let objs = objects(&rendered);
    assert!(!objs.contains_key("Secret"), "no Secret of the chart's own");
    let env = objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let refs: Vec<_> = env
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|e| e["valueFrom"]["secretKeyRef"]["name"].as_str())
        .collect();
    assert_eq!(refs, ["vault-synced", "vault-synced"]);
}

/// The container's settings, as the rendered Deployment gives them (secrets resolved from
/// the rendered Secret), start a real server that answers the probes.
#[tokio::test]
async fn rendered_settings_start_a_server_that_answers_the_probes() {
    let db = format!("ck_helm_{}", std::process::id());
    let admin = pg_admin_url();
    let url = format!("{}/{db}", admin.rsplit_once('/').unwrap().0);
    let created = Command::new("psql")
        .args([&admin, "-q", "-c", &format!("CREATE DATABASE {db}")])
        .status()
        .unwrap();
    assert!(created.success());
    let rendered = render(&format!("masterKey: {KEY}\ndatabaseUrl: {url}")).unwrap();
    let objs = objects(&rendered);
    let secret = &objs["Secret"]["stringData"];
    let c = &objs["Deployment"]["spec"]["template"]["spec"]["containers"][0];
    let dir = tempfile::tempdir().unwrap();
    let (https, http, est) = (free_port(), free_port(), free_port());
    let mut cmd = Command::new(bin());
    cmd.args(
        c["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap()),
    );
    for e in c["env"].as_sequence().unwrap() {
        let name = e["name"].as_str().unwrap();
        let value = match e["value"].as_str() {
            Some(v) => v.to_string(),
            None => secret[e["valueFrom"]["secretKeyRef"]["key"].as_str().unwrap()]
                .as_str()
                .unwrap()
                .to_string(),
        };
        // The pod's own paths and ports become this machine's free ones.
        let value = match name {
            "CERTKEEPER_DATA_DIR" => dir.path().to_str().unwrap().to_string(),
            "CERTKEEPER_SERVER__HTTPS_LISTEN" => format!("127.0.0.1:{https}"),
            "CERTKEEPER_SERVER__HTTP_LISTEN" => format!("127.0.0.1:{http}"),
            "CERTKEEPER_EST__MTLS_LISTEN" => format!("127.0.0.1:{est}"),
            _ => value,
        };
        cmd.env(name, value);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let probe = format!("http://127.0.0.1:{http}/healthz");
    let deadline = Instant::now() + Duration::from_secs(60);
    let answered = loop {
        if let Ok(r) = reqwest::get(&probe).await
            && r.status() == 200
        {
            break true;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    drop_database(&db);
    assert!(answered, "{}", String::from_utf8_lossy(&out.stderr));
    // The master key came from the Secret, not a generated file.
    assert!(!dir.path().join("master.key").exists());
}
