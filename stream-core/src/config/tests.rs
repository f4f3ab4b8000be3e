//! End-to-end tests of [`ConfigLoader`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;

use super::*;

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("cloud-stream-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn load_str(yaml: &str) -> Result<LoadedConfig, ConfigError> {
    ConfigLoader::new()
        .env(no_env())
        .yaml_str("application.yaml", yaml)
        .load()
}

fn issue<'a>(err: &'a ConfigError, path: &str) -> &'a ConfigIssue {
    err.issues
        .iter()
        .find(|i| i.path == path)
        .unwrap_or_else(|| panic!("no issue at {path}:\n{err}"))
}

const APP: &str = r#"
server:
  port: 8080
spring:
  application:
    name: orders-service
  profiles:
    active: dev
  cloud:
    function:
      definition: enrich|validate;audit
    stream:
      default-binder: rabbitLocal
      default:
        contentType: text/plain
        consumer:
          maxAttempts: 5
      binders:
        rabbitLocal:
          type: rabbit
          environment:
            spring.rabbitmq.host: ${RABBIT_HOST:localhost}
            spring:
              rabbitmq:
                port: 5672
        kafkaCloud:
          type: kafka
          inheritEnvironment: false
          environment:
            spring.cloud.stream.kafka.binder.brokers: ${KAFKA_BROKERS:kafka:9092}
      bindings:
        enrich|validate-in-0:
          destination: orders,returns
          group: ${app.group:order-processors}
          consumer:
            back-off-initial-interval: 2s
            retryableExceptions:
              "[java.lang.IllegalStateException]": false
        enrich|validate-out-0:
          destination: validated-orders
          binder: kafkaCloud
          producer:
            partitionKeyExpression: headers['id']
            partition-count: 4
        audit-in-0:
          destination: audit
          contentType: application/json
          consumer:
            max_attempts: 1
      kafka:
        default:
          consumer:
            start-offset: earliest
        bindings:
          enrich|validate-out-0:
            producer:
              sync: true
---
spring:
  config:
    activate:
      on-profile: prod
  cloud:
    stream:
      bindings:
        audit-in-0:
          group: auditors-prod
---
spring:
  config:
    activate:
      on-profile: "!prod"
  cloud:
    stream:
      bindings:
        audit-in-0:
          group: auditors-nonprod
"#;

#[test]
fn realistic_application_yaml_with_profile_file() {
    let dir = temp_dir();
    std::fs::write(dir.join("application.yaml"), APP).unwrap();
    std::fs::write(
        dir.join("application-dev.yml"),
        "spring.cloud.stream.bindings.audit-in-0.destination: audit-dev\napp:\n  group: devs\n",
    )
    .unwrap();
    let loaded = ConfigLoader::new()
        .env(env(&[("RABBIT_HOST", "rabbit.internal")]))
        .file(dir.join("application.yaml"))
        .binder_types(["memory", "kafka", "rabbit"])
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    let c = &loaded.config;
    assert_eq!(c.active_profiles, vec!["dev"]);
    assert_eq!(
        c.function.definition.as_deref(),
        Some("enrich|validate;audit")
    );
    let s = &c.stream;
    assert_eq!(s.default_binder.as_deref(), Some("rabbitLocal"));
    assert_eq!(s.binders.len(), 2);
    let rabbit = &s.binders["rabbitLocal"];
    assert_eq!(rabbit.binder_type.as_deref(), Some("rabbit"));
    assert_eq!(
        rabbit.environment,
        json!({"spring": {"rabbitmq": {"host": "rabbit.internal", "port": 5672}}})
    );
    let kafka = &s.binders["kafkaCloud"];
    assert!(!kafka.inherit_environment);
    assert_eq!(
        kafka.environment,
        json!({"spring": {"cloud": {"stream": {"kafka": {"binder": {"brokers": "kafka:9092"}}}}}})
    );
    let input = &s.bindings["enrich|validate-in-0"];
    assert_eq!(input.destinations("x"), vec!["orders", "returns"]);
    assert_eq!(
        input.group.as_deref(),
        Some("devs"),
        "placeholder from profile file"
    );
    assert_eq!(input.content_type, "text/plain", "default cascade");
    assert_eq!(input.consumer.max_attempts, 5, "default cascade");
    assert_eq!(input.consumer.back_off_initial_interval, 2000);
    assert_eq!(
        input
            .consumer
            .retryable_exceptions
            .get("java.lang.IllegalStateException"),
        Some(&false)
    );
    let out = &s.bindings["enrich|validate-out-0"];
    assert_eq!(
        out.producer.partition_key_expression.as_deref(),
        Some("headers['id']")
    );
    assert_eq!(out.producer.partition_count, 4);
    assert_eq!(out.binder.as_deref(), Some("kafkaCloud"));
    let audit = &s.bindings["audit-in-0"];
    assert_eq!(
        audit.content_type, "application/json",
        "binding wins over default"
    );
    assert_eq!(audit.consumer.max_attempts, 1);
    assert_eq!(
        audit.destination.as_deref(),
        Some("audit-dev"),
        "profile file overrides"
    );
    assert_eq!(
        audit.group.as_deref(),
        Some("auditors-nonprod"),
        "`!prod` document"
    );
    // Binder-specific section with its default cascade.
    let k = &c.binder_sections["kafka"];
    assert_eq!(
        k["bindings"]["enrich|validate-out-0"]["producer"]["sync"],
        json!(true)
    );
    assert_eq!(
        k["bindings"]["enrich|validate-out-0"]["consumer"]["start-offset"],
        json!("earliest")
    );
    // Whole tree keeps other keys.
    assert_eq!(loaded.root["server"]["port"], json!(8080));
    assert_eq!(
        loaded.root["spring"]["application"]["name"],
        json!("orders-service")
    );
    assert_eq!(loaded.sources.len(), 2, "{:?}", loaded.sources);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("spring.cloud.stream.kafka")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn multi_doc_profile_activated_by_env_and_code() {
    let l = ConfigLoader::new()
        .env(env(&[("SPRING_PROFILES_ACTIVE", "prod")]))
        .yaml_str("application.yaml", APP)
        .load()
        .unwrap();
    assert_eq!(l.config.active_profiles, vec!["prod"]);
    assert_eq!(
        l.config.stream.bindings["audit-in-0"].group.as_deref(),
        Some("auditors-prod")
    );
    let l = ConfigLoader::new()
        .env(env(&[("CLOUD_STREAM_PROFILES", "prod")]))
        .profiles(["extra"])
        .yaml_str("application.yaml", APP)
        .load()
        .unwrap();
    assert_eq!(l.config.active_profiles, vec!["dev", "prod", "extra"]);
    assert_eq!(
        l.config.stream.bindings["audit-in-0"].group.as_deref(),
        Some("auditors-prod")
    );
}

#[test]
fn legacy_spring_profiles_document() {
    let yaml = "spring.cloud.stream.bindings.a-in-0.group: base\n---\nspring:\n  profiles: test,ci\n  cloud.stream.bindings.a-in-0.group: ci\n";
    let l = load_str(yaml).unwrap();
    assert_eq!(
        l.config.stream.bindings["a-in-0"].group.as_deref(),
        Some("base")
    );
    let l = ConfigLoader::new()
        .env(no_env())
        .profiles(["ci"])
        .yaml_str("a", yaml)
        .load()
        .unwrap();
    assert_eq!(
        l.config.stream.bindings["a-in-0"].group.as_deref(),
        Some("ci")
    );
}

#[test]
fn default_cascade_and_implicit_binder() {
    let l = load_str(
        "spring.cloud.stream:\n  default:\n    group: g\n    consumer: {concurrency: 3, maxAttempts: 4}\n  bindings:\n    in-0: {consumer: {concurrency: 2}}\n",
    )
    .unwrap();
    let b = &l.config.stream.bindings["in-0"];
    assert_eq!(b.group.as_deref(), Some("g"));
    assert_eq!(b.consumer.concurrency, 2);
    assert_eq!(b.consumer.max_attempts, 4);
    assert_eq!(l.config.stream.default.consumer.concurrency, 3);
    assert_eq!(
        l.config.stream.binders["memory"].binder_type.as_deref(),
        Some("memory")
    );
    // A single binder-specific section makes that binder type the implicit one.
    let l = load_str("spring.cloud.stream.rabbit.bindings.x.consumer.prefetch: 5\n").unwrap();
    assert_eq!(
        l.config.stream.binders.keys().collect::<Vec<_>>(),
        vec!["rabbit"]
    );
}

#[test]
fn env_overrides_with_dashed_binding_names() {
    let l = ConfigLoader::new()
        .env(env(&[
            ("SPRING_CLOUD_STREAM_BINDINGS_ORDERS_IN_0_GROUP", "from-env"),
            ("SPRING_CLOUD_STREAM_BINDINGS_ORDERS_IN_0_CONSUMER_MAX_ATTEMPTS", "7"),
            ("SPRING_CLOUD_STREAM_BINDINGS_PAYMENT_EVENTS_OUT_0_DESTINATION", "payments"),
            ("SPRING_CLOUD_STREAM_BINDINGS_ORDERS_IN_0_NOPE", "x"),
            ("SPRING_INTEGRATION_POLLER_FIXED_DELAY", "250"),
            ("UNRELATED", "y"),
        ]))
        .yaml_str(
            "application.yaml",
            "spring.cloud.stream.bindings.orders-in-0:\n  group: from-file\n  destination: orders\n",
        )
        .known_bindings(["payment-events-out-0"])
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    let b = &l.config.stream.bindings["orders-in-0"];
    assert_eq!(b.group.as_deref(), Some("from-env"));
    assert_eq!(b.destination.as_deref(), Some("orders"));
    assert_eq!(b.consumer.max_attempts, 7);
    assert_eq!(
        l.config.stream.bindings["payment-events-out-0"]
            .destination
            .as_deref(),
        Some("payments")
    );
    assert_eq!(l.config.poller.fixed_delay, 250);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("SPRING_CLOUD_STREAM_BINDINGS_ORDERS_IN_0_NOPE")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn set_in_code_wins() {
    let l = ConfigLoader::new()
        .env(env(&[("SPRING_CLOUD_STREAM_BINDINGS_A_IN_0_GROUP", "env")]))
        .yaml_str("a", "spring.cloud.stream.bindings.a-in-0.group: file\n")
        .set("spring.cloud.stream.bindings.a-in-0.group", "code")
        .set(
            "spring.cloud.stream.bindings.a-in-0.consumer.maxAttempts",
            "2",
        )
        .load()
        .unwrap();
    let b = &l.config.stream.bindings["a-in-0"];
    assert_eq!(b.group.as_deref(), Some("code"));
    assert_eq!(b.consumer.max_attempts, 2);
}

#[test]
fn unknown_keys_with_suggestions_and_many_issues_at_once() {
    let err = load_str(
        "spring:\n  cloud:\n    stream:\n      bindngs: {}\n      bindings:\n        orders-in-0:\n          consumer:\n            max-atempts: 3\n            concurrency: zero\n            totallyUnrelatedThing: 1\n",
    )
    .unwrap_err();
    let i = issue(&err, "spring.cloud.stream.bindngs");
    assert_eq!(i.suggestion.as_deref(), Some("bindings"));
    let i = issue(
        &err,
        "spring.cloud.stream.bindings.orders-in-0.consumer.max-atempts",
    );
    assert_eq!(i.suggestion.as_deref(), Some("max-attempts"));
    assert_eq!(
        i.to_string(),
        "spring.cloud.stream.bindings.orders-in-0.consumer.max-atempts: unknown key (did you mean `max-attempts`?)"
    );
    let i = issue(
        &err,
        "spring.cloud.stream.bindings.orders-in-0.consumer.totally-unrelated-thing",
    );
    assert_eq!(i.suggestion, None);
    assert_eq!(i.message, "unknown key");
    issue(
        &err,
        "spring.cloud.stream.bindings.orders-in-0.consumer.concurrency",
    );
    assert_eq!(err.issues.len(), 4, "{err}");
    assert_eq!(err.to_string().lines().count(), 4);
}

#[test]
fn wrong_type_reports_expected_and_found() {
    let err = load_str("spring.cloud.stream.bindings.orders-in-0.consumer.maxAttempts: three\n")
        .unwrap_err();
    let i = issue(
        &err,
        "spring.cloud.stream.bindings.orders-in-0.consumer.max-attempts",
    );
    assert_eq!(i.expected.as_deref(), Some("an unsigned integer"));
    assert_eq!(i.found.as_deref(), Some("`three`"));
    assert_eq!(
        i.to_string(),
        "spring.cloud.stream.bindings.orders-in-0.consumer.max-attempts: expected an unsigned integer, found `three`"
    );
    let err = load_str("spring.cloud.stream.bindings.x.consumer:\n  max-attempts: 0\n  back-off-multiplier: 0\n  partitioned: maybe\n").unwrap_err();
    assert_eq!(err.issues.len(), 3, "{err}");
    assert!(
        issue(&err, "spring.cloud.stream.bindings.x.consumer.max-attempts")
            .message
            .contains("at least 1")
    );
}

#[test]
fn strings_coerce_to_kinds() {
    let l = load_str(
        "spring.cloud.stream:\n  instance-count: \"3\"\n  instance-index: '2'\n  dynamic-destinations: a, b\n  bindings.x:\n    consumer: {partitioned: 'TRUE', back-off-multiplier: '1.5', instance-index-list: '0,1'}\n    producer: {required-groups: [g1, g2], auto-startup: 'false'}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let s = &l.config.stream;
    assert_eq!((s.instance_count, s.instance_index), (3, 2));
    assert_eq!(s.dynamic_destinations, vec!["a", "b"]);
    let b = &s.bindings["x"];
    assert!(b.consumer.partitioned);
    assert_eq!(b.consumer.back_off_multiplier, 1.5);
    assert_eq!(b.consumer.instance_index_list, vec![0, 1]);
    assert_eq!(b.producer.required_groups, vec!["g1", "g2"]);
    assert!(!b.producer.auto_startup);
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let err = ConfigLoader::new()
        .env(no_env())
        .yaml_str(
            "application.yaml",
            "spring:\n  cloud:\n    stream: [\n  oops: }\n",
        )
        .load()
        .unwrap_err();
    assert_eq!(err.issues.len(), 1);
    let i = &err.issues[0];
    assert_eq!(i.source.as_deref(), Some("application.yaml"));
    // The parser names the bracket left open, and where it opened.
    assert!(i.message.contains("bracket"), "{i}");
    assert!(
        err.to_string()
            .starts_with("application.yaml: malformed YAML at line 3"),
        "{err}"
    );
}

#[test]
fn missing_main_file_is_clear() {
    let err = ConfigLoader::new()
        .env(no_env())
        .file("/nonexistent/dir/application.yaml")
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/dir/application.yaml: configuration file not found"
    );
}

#[test]
fn two_binders_without_default_binder() {
    let err = load_str(
        "spring.cloud.function.definition: up\nspring.cloud.stream:\n  binders:\n    r1: {type: rabbit}\n    k1: {type: kafka}\n  bindings:\n    up-in-0: {destination: a}\n    up-out-0: {destination: b, binder: k1}\n",
    )
    .unwrap_err();
    let i = issue(&err, "spring.cloud.stream.bindings.up-in-0.binder");
    assert!(i.message.contains("default-binder"), "{i}");
    assert_eq!(err.issues.len(), 1, "{err}");
}

#[test]
fn unknown_binders_and_types_with_suggestions() {
    let err = load_str(
        "spring.cloud.stream:\n  default-binder: rabit1\n  binders:\n    rabbit1: {type: rabit}\n  bindings:\n    a-in-0: {binder: rabbit2}\n",
    )
    .unwrap_err();
    assert_eq!(
        issue(&err, "spring.cloud.stream.default-binder")
            .suggestion
            .as_deref(),
        Some("rabbit1")
    );
    let i = issue(&err, "spring.cloud.stream.binders.rabbit1.type");
    assert_eq!(i.suggestion.as_deref(), Some("rabbit"));
    assert!(i.message.contains("did you mean `rabbit`"), "{i}");
    assert_eq!(
        issue(&err, "spring.cloud.stream.bindings.a-in-0.binder")
            .suggestion
            .as_deref(),
        Some("rabbit1")
    );
}

#[test]
fn unregistered_known_binder_type() {
    let yaml = "spring.cloud.stream.binders.r: {type: rabbit}\n";
    let err = ConfigLoader::new()
        .env(no_env())
        .yaml_str("a", yaml)
        .binder_types(["memory"])
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "spring.cloud.stream.binders.r.type: binder type `rabbit` is not available in this build (enable the cargo feature `rabbit`)"
    );
    let l = ConfigLoader::new()
        .env(no_env())
        .yaml_str("a", yaml)
        .binder_types(["memory"])
        .require_registered_binders(false)
        .load()
        .unwrap();
    assert!(
        l.warnings.iter().any(|w| w.contains("not available")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn secrets_are_redacted_in_errors() {
    let err = load_str(
        "spring.cloud.stream:\n  bindings.x.consumer.max-attempts: amqp://guest:secret@host\n  binders.b.type: memory\n  binders.b.environment: notamap\n  binders.c.password: hunter2\n  default.consumer.concurrency: ${NOPE}\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("secret@"), "{text}");
    assert!(text.contains("amqp://guest:****@host"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    // A secret-named key with a bad value.
    let schema = Schema::binder_section(
        SchemaNode::object([
            ("password", SchemaNode::leaf(Kind::String)),
            ("token-ttl", SchemaNode::leaf(Kind::UnsignedInt)),
        ]),
        SchemaNode::Any,
        SchemaNode::Any,
    );
    let err = ConfigLoader::new()
        .env(no_env())
        .binder_schema("rabbit", schema)
        .yaml_str(
            "a",
            "spring.cloud.stream.rabbit.binder:\n  password: [topsecret]\n  tokenTtl: hunter2\n",
        )
        .load()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        !text.contains("topsecret") && !text.contains("hunter2"),
        "{text}"
    );
    let i = issue(&err, "spring.cloud.stream.rabbit.binder.token-ttl");
    assert_eq!(i.found.as_deref(), Some("`****`"));
    assert_eq!(redact_value("spring.rabbitmq.password", "p"), "****");
}

#[test]
fn secret_key_value_redacted() {
    // The value is found at a secret-looking path only when the key itself is a secret.
    let err = load_str("spring.cloud.stream.bindings.x.consumer.header-mode: [a]\nspring.integration.poller.fixed-delay: \"amqp://u:pw@h\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("amqp://u:****@h"), "{text}");
    assert!(!text.contains(":pw@"), "{text}");
}

#[test]
fn placeholders_unresolvable_and_cycles() {
    let err = load_str(
        "app:\n  a: ${app.b}\n  b: ${app.a}\nspring.cloud.stream.bindings.x:\n  group: ${MISSING_GROUP}\n  destination: ${app.a}\n",
    )
    .unwrap_err();
    assert!(issue(&err, "spring.cloud.stream.bindings.x.group")
        .message
        .contains("MISSING_GROUP"));
    assert!(issue(&err, "spring.cloud.stream.bindings.x.destination")
        .message
        .contains("cycle"));
    assert!(issue(&err, "app.a").message.contains("cycle"));
    let l = ConfigLoader::new()
        .env(env(&[("TOPIC", "t1")]))
        .yaml_str("a", "spring.cloud.stream.bindings.x:\n  destination: ${TOPIC}-${SUFFIX:${DEF:dlq}}\n  consumer.max-attempts: ${RETRIES:6}\n")
        .load()
        .unwrap();
    assert_eq!(
        l.config.stream.bindings["x"].destination.as_deref(),
        Some("t1-dlq")
    );
    assert_eq!(l.config.stream.bindings["x"].consumer.max_attempts, 6);
}

#[test]
fn partitioning_combinations() {
    let err = load_str(
        "spring.cloud.stream:\n  instance-count: 2\n  instance-index: 2\n  bindings:\n    o-out-0.producer.partition-key-expression: payload.id\n    i-in-0.consumer.partitioned: true\n",
    )
    .unwrap_err();
    issue(&err, "spring.cloud.stream.bindings.i-in-0.consumer");
    assert_eq!(err.issues.len(), 1, "{err}");
    // A key without a partition count is accepted as Spring does, with a warning.
    let one = load_str(
        "spring.cloud.stream.bindings.o-out-0.producer.partition-key-expression: payload.id\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        one.warnings
            .iter()
            .any(|w| w.contains("o-out-0.producer.partition-count")),
        "{:?}",
        one.warnings
    );
    let l = load_str(
        "spring.cloud.stream:\n  instance-count: 2\n  instance-index: 1\n  bindings:\n    o-out-0.producer: {partition-key-expression: payload.id, partition-count: 2}\n    i-in-0.consumer.partitioned: true\n",
    );
    assert!(l.is_ok(), "{:?}", l.err().map(|e| e.to_string()));
}

#[test]
fn bad_function_definition_is_an_issue() {
    let err = load_str("spring.cloud.function.definition: a||b\n").unwrap_err();
    issue(&err, "spring.cloud.function.definition");
}

#[test]
fn registered_binder_schema_validates_section() {
    let schema = Schema::binder_section(
        SchemaNode::object([("brokers", SchemaNode::leaf(Kind::StringList))]),
        SchemaNode::object([
            ("start-offset", SchemaNode::leaf(Kind::String)),
            ("enable-dlq", SchemaNode::leaf(Kind::Bool)),
        ]),
        SchemaNode::object([("sync", SchemaNode::leaf(Kind::Bool))]),
    );
    let err = ConfigLoader::new()
        .env(no_env())
        .binder_schema("kafka", schema.clone())
        .yaml_str("a", "spring.cloud.stream.kafka:\n  binder.brokers: a,b\n  bindings.x.consumer:\n    startOfset: earliest\n    enableDlq: yes-please\n")
        .load()
        .unwrap_err();
    assert_eq!(
        issue(
            &err,
            "spring.cloud.stream.kafka.bindings.x.consumer.start-ofset"
        )
        .suggestion
        .as_deref(),
        Some("start-offset")
    );
    issue(
        &err,
        "spring.cloud.stream.kafka.bindings.x.consumer.enable-dlq",
    );
    let l = ConfigLoader::new()
        .env(env(&[("SPRING_CLOUD_STREAM_KAFKA_BINDINGS_X_CONSUMER_ENABLE_DLQ", "true")]))
        .binder_schema("kafka", schema)
        .yaml_str("a", "spring.cloud.stream.kafka.binder.brokers: a,b\nspring.cloud.stream.bindings.x.group: g\n")
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    let k = &l.config.binder_sections["kafka"];
    assert_eq!(k["binder"]["brokers"], json!(["a", "b"]));
    assert_eq!(k["bindings"]["x"]["consumer"]["enable-dlq"], json!(true));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn unknown_stream_child_is_not_a_binder_section() {
    let err = load_str("spring.cloud.stream.kafak.binder.brokers: x\n").unwrap_err();
    assert_eq!(
        issue(&err, "spring.cloud.stream.kafak")
            .suggestion
            .as_deref(),
        Some("kafka")
    );
    // A `binders.*.type` makes a custom type's section acceptable (the type itself is unknown).
    let err = load_str("spring.cloud.stream:\n  binders.p.type: pulsar\n  pulsar.binder.url: x\n")
        .unwrap_err();
    assert_eq!(err.issues.len(), 1, "{err}");
    issue(&err, "spring.cloud.stream.binders.p.type");
}

#[test]
fn deep_merge_is_public() {
    let mut a = json!({"x": {"y": 1}});
    deep_merge(&mut a, &json!({"x": {"z": 2}}));
    assert_eq!(a, json!({"x": {"y": 1, "z": 2}}));
}

#[test]
fn empty_and_non_map_sources() {
    let l = load_str("").unwrap();
    assert_eq!(
        l.config.stream.binders.keys().collect::<Vec<_>>(),
        vec!["memory"]
    );
    assert_eq!(l.config.stream.dynamic_destination_cache_size, 10);
    let err = load_str("- a\n- b\n").unwrap_err();
    assert!(err.to_string().contains("top level"), "{err}");
}

#[test]
fn expression_parse_errors_are_config_issues_with_the_key_path() {
    let yaml = "spring:\n  cloud:\n    function:\n      routing-expression: \"headers['type'].hashCode()\"\n    stream:\n      bindings:\n        out-0:\n          producer:\n            partition-key-expression: \"payload.id +\"\n            partition-count: 2\n";
    let err = ConfigLoader::new()
        .env(Default::default())
        .yaml_str("application.yaml", yaml)
        .load()
        .expect_err("bad expressions are rejected");
    let text = err.to_string();
    assert!(
        text.contains("spring.cloud.function.routing-expression"),
        "{text}"
    );
    assert!(
        text.contains("spring.cloud.stream.bindings.out-0.producer.partition-key-expression"),
        "{text}"
    );
    assert_eq!(err.issues.len(), 2, "{text}");
}

#[test]
fn accepted_but_unsupported_keys_are_warned_about() {
    let l = load_str(
        "spring.cloud.stream.bindings.orders-in-0:\n  error-handler-definition: onError\n  consumer: { batch-mode: true, multiplex: true, header-mode: embeddedHeaders }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for key in [
        "orders-in-0.error-handler-definition",
        "orders-in-0.consumer.multiplex",
        "orders-in-0.consumer.header-mode: `embeddedHeaders`",
    ] {
        assert!(
            l.warnings.iter().any(|w| w.contains(key)),
            "no warning for {key}: {:?}",
            l.warnings
        );
    }
    assert!(
        !l.warnings.iter().any(|w| w.contains("batch-mode")),
        "batch-mode is supported: {:?}",
        l.warnings
    );
    let quiet =
        load_str("spring.cloud.stream.bindings.orders-in-0.consumer.header-mode: headers\n")
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(quiet.warnings.is_empty(), "{:?}", quiet.warnings);
}

#[cfg(unix)]
#[test]
fn environment_that_is_not_utf8_is_skipped_with_its_name_only() {
    use std::os::unix::ffi::OsStringExt;
    let vars = vec![
        (OsString::from("GOOD"), OsString::from("v")),
        (
            OsString::from_vec(b"BAD_\xffNAME".to_vec()),
            OsString::from("s3cr3t"),
        ),
        (
            OsString::from("BAD_VALUE"),
            OsString::from_vec(b"s3cr3t\xfe".to_vec()),
        ),
    ];
    let mut warnings = Vec::new();
    let env = utf8_env(vars.into_iter(), &mut warnings);
    assert_eq!(env, BTreeMap::from([("GOOD".to_owned(), "v".to_owned())]));
    assert_eq!(
        warnings,
        vec![
            "environment variable `BAD_\\xffNAME` is not valid UTF-8; ignored",
            "environment variable `BAD_VALUE` is not valid UTF-8; ignored",
        ]
    );
}

#[test]
fn environment_style_placeholder_is_not_a_relaxed_property() {
    // `tweetType: ${TWEET_TYPE:PROGRAMMING}` is no cycle: without the variable, the default.
    let l = load_str("tweetType: ${TWEET_TYPE:PROGRAMMING}\nspring.cloud.stream.bindings.x-in-0.group: ${TWEET_TYPE:PROGRAMMING}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        l.config.stream.bindings["x-in-0"].group.as_deref(),
        Some("PROGRAMMING")
    );
}

#[test]
fn redelivery_delays_are_a_list_of_durations_in_any_spelling() {
    let loaded = load_str(
        "spring.cloud.stream.bindings:\n  a-in-0.consumer.redelivery-delays: 10s, 1m, PT10M\n  b-in-0.consumer.redelivery-delays: [500, 2s]\n",
    )
    .unwrap();
    let b = &loaded.config.stream.bindings;
    assert_eq!(
        b["a-in-0"].consumer.redelivery_delays,
        [10_000, 60_000, 600_000]
    );
    assert_eq!(b["b-in-0"].consumer.redelivery_delays, [500, 2_000]);
    let err =
        load_str("spring.cloud.stream.bindings.a-in-0.consumer.redelivery-delays: 10s, soon\n")
            .unwrap_err();
    let i = issue(
        &err,
        "spring.cloud.stream.bindings.a-in-0.consumer.redelivery-delays",
    );
    assert!(i.message.contains("a list of durations"), "{}", i.message);
    let many = vec!["1s"; 33].join(", ");
    let yaml = format!("spring.cloud.stream.bindings.a-in-0.consumer.redelivery-delays: {many}\n");
    let err = load_str(&yaml).unwrap_err();
    let path = "spring.cloud.stream.bindings.a-in-0.consumer.redelivery-delays";
    assert!(issue(&err, path).message.contains("at most 32"), "{err}");
}
