//! Real Spring Cloud Stream configurations, kept unchanged under `tests/fixtures/spring/<name>/`
//! (provenance in `SOURCES`), through `cloud-stream validate` and `plan --format json`.
//!
//! `EXPECTED` says, per fixture, what must happen, one line each:
//! `<name> accept|unsupported|reject [env:K=V]... [profile:P]... [expect:TEXT]...`
//! - `accept`: both commands exit 0 and the plan is JSON with bindings;
//! - `unsupported`: exit 2, and every problem names a Spring feature cloud-stream lacks
//!   (`not supported by cloud-stream: ...`) or contains one of the `expect:` texts;
//! - `reject`: exit 2, and every problem contains one of the `expect:` texts (real mistakes in
//!   the file that Spring silently ignores, e.g. `required-group` for `required-groups`).
//!
//! `env:` sets what the sample's own test harness sets (placeholders without defaults). In
//! every case `validate` and `plan` agree, nothing panics, and every fixture is listed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spring")
}

/// One line of `EXPECTED`.
struct Expected {
    name: String,
    outcome: String,
    env: Vec<(String, String)>,
    profiles: Vec<String>,
    expect: Vec<String>,
}

fn expectations() -> Vec<Expected> {
    let text = std::fs::read_to_string(root().join("EXPECTED")).expect("read EXPECTED");
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(outcome)) = (words.next(), words.next()) else {
            panic!("EXPECTED: bad line `{line}`");
        };
        let mut e = Expected {
            name: name.to_owned(),
            outcome: outcome.to_owned(),
            env: Vec::new(),
            profiles: Vec::new(),
            expect: Vec::new(),
        };
        for w in words {
            if let Some(kv) = w.strip_prefix("env:") {
                let (k, v) = kv.split_once('=').expect("env:K=V");
                e.env.push((k.to_owned(), v.to_owned()));
            } else if let Some(p) = w.strip_prefix("profile:") {
                e.profiles.push(p.to_owned());
            } else if let Some(t) = w.strip_prefix("expect:") {
                e.expect.push(t.replace('~', " "));
            } else {
                panic!("EXPECTED: unknown word `{w}` in `{line}`");
            }
        }
        out.push(e);
    }
    out
}

fn main_file(dir: &Path) -> PathBuf {
    ["application.yml", "application.yaml"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no application.yml in {}", dir.display()))
}

fn run(e: &Expected, args: &[&str]) -> Output {
    let file = main_file(&root().join(&e.name));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloud-stream"));
    cmd.arg(args[0]).arg(&file).args(&args[1..]);
    for p in &e.profiles {
        cmd.args(["--profile", p]);
    }
    for var in ["SPRING_PROFILES_ACTIVE", "CLOUD_STREAM_PROFILES"] {
        cmd.env_remove(var);
    }
    cmd.envs(e.env.iter().map(|(k, v)| (k, v)));
    cmd.output().expect("run cloud-stream")
}

/// The problems a failed run lists (`  - <problem>` lines).
fn problems(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .map(str::to_owned)
        .collect()
}

/// What is wrong with one fixture's outcome, if anything.
fn check(e: &Expected) -> Option<String> {
    let validate = run(e, &["validate"]);
    let plan = run(e, &["plan", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&validate.stderr).into_owned();
    if stderr.contains("panicked") || validate.status.code() != plan.status.code() {
        return Some(format!(
            "validate {:?} and plan {:?} disagree or panic: {stderr}",
            validate.status.code(),
            plan.status.code()
        ));
    }
    if problems(&validate) != problems(&plan) {
        return Some("validate and plan list different problems".to_owned());
    }
    match e.outcome.as_str() {
        "accept" => {
            let json: serde_json::Value = match serde_json::from_slice(&plan.stdout) {
                Ok(j) if validate.status.success() => j,
                _ => return Some(format!("expected acceptance, got: {stderr}")),
            };
            json["bindings"]
                .as_array()
                .is_none()
                .then(|| "plan JSON has no bindings".to_owned())
        }
        "unsupported" | "reject" => {
            if validate.status.code() != Some(2) {
                return Some(format!("expected exit 2, got {:?}", validate.status.code()));
            }
            let feature = e.outcome == "unsupported";
            let unexplained: Vec<String> = problems(&validate)
                .into_iter()
                .filter(|p| {
                    let named = feature && p.contains("not supported by cloud-stream");
                    !named && !e.expect.iter().any(|t| p.contains(t.as_str()))
                })
                .collect();
            let named = !feature || stderr.contains("not supported by cloud-stream");
            (!unexplained.is_empty() || !named)
                .then(|| format!("unexpected problems: {unexplained:#?}\n{stderr}"))
        }
        other => Some(format!("unknown outcome `{other}`")),
    }
}

#[test]
fn every_real_spring_config_is_accepted_or_rejected_for_a_named_reason() {
    let expected = expectations();
    let listed: BTreeSet<&str> = expected.iter().map(|e| e.name.as_str()).collect();
    let dirs: BTreeSet<String> = std::fs::read_dir(root())
        .expect("fixtures")
        .filter_map(Result::ok)
        .filter(|d| d.path().is_dir())
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    let unlisted: Vec<&String> = dirs
        .iter()
        .filter(|d| !listed.contains(d.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "fixtures missing from EXPECTED: {unlisted:?}"
    );
    assert!(dirs.len() >= 30, "at least 30 real configurations");
    let failures: Vec<String> = expected
        .iter()
        .filter_map(|e| check(e).map(|why| format!("{}: {why}", e.name)))
        .collect();
    let accepted = expected.iter().filter(|e| e.outcome == "accept").count();
    println!(
        "spring configs: {} fixtures, {accepted} accepted, {} rejected for a named reason, {} failing",
        expected.len(),
        expected.len() - accepted,
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
