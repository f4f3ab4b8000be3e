//! The `cloud-stream` CLI: `validate` and `plan` on real Spring-style files (no broker needed).

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloud-stream"))
        .args(args)
        .env_remove("APP_PROFILE")
        .env_remove("RABBIT_HOST")
        .env_remove("INSTANCE_INDEX")
        .env_remove("SPRING_PROFILES_ACTIVE")
        .env_remove("CLOUD_STREAM_PROFILES")
        .output()
        .expect("run cloud-stream")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn validate_accepts_a_spring_application_yml() {
    let f = fixture("spring/application.yml");
    let out = cli(&["validate", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("4 binding(s), 2 binder(s)"),
        "{}",
        stdout(&out)
    );
    assert!(!stderr(&out).contains("s3cr3t"), "secrets never printed");
}

#[test]
fn validate_reports_every_problem_with_suggestions_and_exit_2() {
    let f = fixture("bad/application.yaml");
    let out = cli(&["validate", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("spring.cloud.stream.bindngs: unknown key (did you mean `bindings`?)"),
        "{err}"
    );
    assert!(
        err.contains("consumer.max-atempts: unknown key (did you mean `max-attempts`?)"),
        "{err}"
    );
    assert!(
        err.contains("consumer.concurrency: expected an unsigned integer, found `lots`"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "password redacted: {err}");
}

#[test]
fn validate_rejects_replay_where_the_broker_keeps_no_history() {
    let f = fixture("replay/application.yaml");
    let out = cli(&["validate", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for binder in ["sqs", "rabbit"] {
        let key = format!("spring.cloud.stream.{binder}.bindings.p-in-0.consumer.start-offset: not supported: replay");
        assert!(err.contains(&key), "{err}");
    }
    assert!(
        err.contains("memory binder with `retention`, can replay"),
        "{err}"
    );
}

#[test]
fn validate_reports_malformed_yaml_with_position() {
    let f = fixture("malformed/application.yaml");
    let out = cli(&["validate", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("malformed YAML at line"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_reports_a_missing_file() {
    let out = cli(&["validate", "/nonexistent/application.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/application.yaml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn plan_json_is_the_stable_interface() {
    let f = fixture("spring/application.yml");
    let out = cli(&[
        "plan",
        f.to_str().unwrap(),
        "--profile",
        "prod",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let bindings = plan["bindings"].as_array().expect("bindings");
    let find = |name: &str| {
        bindings
            .iter()
            .find(|b| b["name"] == name)
            .unwrap_or_else(|| panic!("binding {name} in {plan}"))
    };
    let input = find("enrich|validate-in-0");
    assert_eq!(input["direction"], "input");
    assert_eq!(
        input["destinations"],
        serde_json::json!(["orders", "returns"])
    );
    assert_eq!(input["group"], "pipeline");
    assert_eq!(input["binder"], "local");
    assert_eq!(input["binder_type"], "memory");
    assert_eq!(input["content_type"], "application/json");
    assert_eq!(input["dlq"], "orders.pipeline.dlq");
    assert_eq!(input["function"], "enrich|validate");
    let c = &input["consumer"];
    for key in [
        "max_attempts",
        "back_off_initial_interval",
        "back_off_multiplier",
        "back_off_max_interval",
        "concurrency",
        "partitioned",
        "instance_index",
        "instance_count",
        "batch_mode",
    ] {
        assert!(c.get(key).is_some(), "consumer.{key} in {c}");
    }
    assert_eq!(c["max_attempts"], 4, "default cascade");
    assert_eq!(c["back_off_initial_interval"], 500);
    assert_eq!(c["concurrency"], 4);
    assert!(input.get("producer").is_none(), "no producer on inputs");

    let output = find("enrich|validate-out-0");
    assert_eq!(output["direction"], "output");
    assert_eq!(
        output["producer"]["partition_key_expression"],
        "payload.customerId"
    );
    assert_eq!(output["producer"]["partition_count"], 3);
    assert_eq!(output["producer"]["required_groups"], serde_json::json!([]));
    assert!(output.get("consumer").is_none());
    assert_eq!(output["dlq"], serde_json::Value::Null);

    let audit = find("audit-in-0");
    assert_eq!(audit["binder"], "rabbit1");
    assert_eq!(audit["binder_type"], "rabbit");
    assert_eq!(audit["consumer"]["partitioned"], true);
    assert_eq!(
        audit["consumer"]["instance_index"], 1,
        "placeholder default"
    );
    assert_eq!(audit["consumer"]["instance_count"], 3);
    assert_eq!(
        audit["consumer"]["concurrency"], 2,
        "application-local.yml applies"
    );

    assert_eq!(
        find("ship-in-0")["consumer"]["max_attempts"],
        10,
        "on-profile prod document"
    );

    let binders = plan["binders"].as_array().expect("binders");
    assert!(
        binders.contains(&serde_json::json!({"name": "local", "type": "memory", "default": true})),
        "{plan}"
    );
    assert!(
        binders
            .contains(&serde_json::json!({"name": "rabbit1", "type": "rabbit", "default": false})),
        "{plan}"
    );
}

/// `--format mermaid` and `--format dot` draw the flow: the composed function, both input
/// destinations in the binder's box, the group on the input edges, the DLQ dashed.
#[test]
fn plan_draws_the_flow_as_mermaid_and_dot() {
    let f = fixture("spring/application.yml");
    let path = f.to_str().unwrap();
    let out = cli(&["plan", path, "--profile", "prod", "--format", "mermaid"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = stdout(&out);
    assert!(m.starts_with("flowchart LR\n"), "{m}");
    assert!(m.contains("[\"enrich|validate\"]"), "{m}");
    assert!(
        m.contains("subgraph") && m.contains("[\"local (memory)\"]"),
        "{m}"
    );
    assert!(
        m.contains("[(\"orders\")]") && m.contains("[(\"returns\")]"),
        "{m}"
    );
    assert_eq!(m.matches("-->|\"pipeline\"|").count(), 2, "{m}");
    assert!(
        m.contains("-.->|\"dead letters\"|") && m.contains("orders.pipeline.dlq"),
        "{m}"
    );
    let out = cli(&["plan", path, "--profile", "prod", "--format", "dot"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d = stdout(&out);
    assert!(d.starts_with("digraph flow {"), "{d}");
    assert!(d.contains("label=\"enrich|validate\", shape=box"), "{d}");
    assert!(d.contains("style=dashed"), "{d}");
    assert!(!m.contains("s3cr3t") && !d.contains("s3cr3t"), "no secrets");
}

#[test]
fn plan_text_shows_the_delivery_plan() {
    let f = fixture("spring/application.yml");
    let out = cli(&["plan", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("enrich|validate-in-0 [input] -> orders,returns via local (memory)"),
        "{text}"
    );
    assert!(
        text.contains("4 attempt(s), back-off 500 ms x2 up to 10000 ms; concurrency 4"),
        "{text}"
    );
    assert!(
        text.contains("partitions 3 by `payload.customerId`"),
        "{text}"
    );
}

/// The plan reads the Kafka binding properties: `enable-dlq` (also from `kafka.default`) and
/// `dlq-name` decide the DLQ topic.
#[cfg(feature = "kafka")]
#[test]
fn plan_shows_the_kafka_dead_letter_topic() {
    let f = fixture("kafka/application.yaml");
    let out = cli(&["plan", f.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let dlq_of = |name: &str| {
        plan["bindings"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["name"] == name))
            .map(|b| b["dlq"].clone())
            .unwrap_or_else(|| panic!("binding {name} in {plan}"))
    };
    assert_eq!(dlq_of("audit-in-0"), "payments.audit.dead", "dlq-name");
    assert_eq!(
        dlq_of("ledger-in-0"),
        "error.payments.ledger",
        "Spring's default name"
    );
}

/// A wrong command line is a usage error (64, `EX_USAGE`), not an invalid configuration (2).
#[test]
fn usage_errors_exit_64() {
    let f = fixture("spring/application.yml");
    let file = f.to_str().unwrap();
    for args in [
        vec!["validate", file, "--bogus"],
        vec!["validate"],
        vec!["plan", file, "--format", "xml"],
        vec!["frobnicate"],
        vec![],
    ] {
        let out = cli(&args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?}: says what is wrong");
    }
    assert!(stderr(&cli(&["validate", file, "--bogus"])).contains("--bogus"));
}

#[test]
fn help_and_version_exit_0() {
    for args in [
        vec!["--help"],
        vec!["validate", "--help"],
        vec!["help", "plan"],
        vec!["--version"],
    ] {
        let out = cli(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(!stdout(&out).is_empty(), "{args:?}");
    }
    assert!(stdout(&cli(&["--help"])).contains("validate"));
}

/// A file that cannot be read is a configuration problem: exit 2 naming the file.
#[test]
fn unreadable_files_exit_2_with_a_clear_message() {
    let dir = std::env::temp_dir();
    let out = cli(&["validate", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot read configuration file"),
        "{}",
        stderr(&out)
    );
    #[cfg(unix)]
    {
        let out = cli(&["validate", "/dev/zero"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("larger than 1 MiB"),
            "{}",
            stderr(&out)
        );
    }
}

/// A variable that is not valid UTF-8 used to make the loader panic and print it.
#[cfg(unix)]
#[test]
fn environment_that_is_not_utf8_is_named_not_printed() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let f = fixture("spring/application.yml");
    let out = Command::new(env!("CARGO_BIN_EXE_cloud-stream"))
        .args(["validate", f.to_str().unwrap()])
        .env_remove("APP_PROFILE")
        .env_remove("SPRING_PROFILES_ACTIVE")
        .env_remove("CLOUD_STREAM_PROFILES")
        .env(
            OsStr::from_bytes(b"SPRING_CLOUD_STREAM_\xffX"),
            OsStr::from_bytes(b"hunter2-\xfe"),
        )
        .output()
        .expect("run cloud-stream");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("SPRING_CLOUD_STREAM_\\xffX"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
}

/// `asyncapi` writes an AsyncAPI 3.0 document that the official JSON schema (vendored under
/// `tests/fixtures/asyncapi`, see its SOURCES) accepts, for a Spring configuration with two
/// binders and for the shop example, in both output formats; servers name where each binder
/// connects, never a credential.
#[test]
fn asyncapi_documents_validate_against_the_official_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("asyncapi/3.0.0-without-id.json")).expect("schema"),
    )
    .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("the AsyncAPI schema compiles");
    let spring = fixture("spring/application.yml");
    let shop = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/shop/application.yaml");
    for (file, profile) in [
        (&spring, "prod"),
        (&shop, "default"),
        (&shop, "rabbit"),
        (&shop, "kafka"),
        (&shop, "sqs"),
    ] {
        let path = file.to_str().unwrap();
        let out = cli(&["asyncapi", path, "--profile", profile, "--format", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{path}: {errors:?}\n{doc:#}");
        assert!(!stdout(&out).contains("s3cr3t"), "no credentials");
        let yaml = cli(&["asyncapi", path, "--profile", profile]);
        let from_yaml: serde_json::Value =
            serde_saphyr::from_slice(&yaml.stdout).expect("the default format is YAML");
        assert_eq!(from_yaml, doc);
    }
    let out = cli(&[
        "asyncapi",
        spring.to_str().unwrap(),
        "--profile",
        "prod",
        "--format",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["info"]["title"], "order-pipeline");
    assert_eq!(doc["servers"]["rabbit1"]["host"], "rabbit.internal:5672");
    assert_eq!(doc["servers"]["rabbit1"]["protocol"], "amqp");
    let op = &doc["operations"]["enrich_validate-in-0"];
    assert_eq!(op["action"], "receive");
    assert_eq!(op["x-cloud-stream-group"], "pipeline");
    assert_eq!(
        doc["operations"]["audit-in-0_dead_letters"]["action"],
        "send"
    );
    // The schema does reject what is wrong: a server without its host.
    let mut broken = doc.clone();
    broken["servers"]["rabbit1"]
        .as_object_mut()
        .expect("server")
        .remove("host");
    assert!(!validator.is_valid(&broken));
}
