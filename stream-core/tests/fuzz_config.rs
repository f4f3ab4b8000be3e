//! Generative test of the configuration loader (issue 11, section 3): the project's real
//! configurations (test fixtures and examples), mutated by byte flips, deletions, inserted
//! keys, values and placeholders, with random environments and profiles. `load()` must never
//! panic, and neither its errors nor its warnings may contain the planted secret.
//!
//! The secret is planted where a secret belongs (password keys, an environment variable
//! named like a password, a URI's password) by a source loaded after the mutated one, so
//! mutations cannot turn it into an ordinary value; they can, and do, refer to it through
//! placeholders from ordinary keys. 256 cases by default; `CLOUD_STREAM_FUZZ_CASES=N` runs N.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use stream_core::config::ConfigLoader;

const SECRET: &str = "s3cr3t-pa55";

/// Real configurations to start from.
const SEEDS: &[&str] = &[
    include_str!("../../tests/fixtures/spring/application.yml"),
    include_str!("../../tests/fixtures/spring/application-local.yml"),
    include_str!("../../tests/fixtures/bad/application.yaml"),
    include_str!("../../tests/fixtures/kafka/application.yaml"),
    include_str!("../../tests/fixtures/malformed/application.yaml"),
    include_str!("../../examples/uppercase/application.yaml"),
    include_str!("../../examples/shop/application.yaml"),
];

/// Keys worth inserting: real ones (so values reach validation and typing), odd ones.
const KEYS: &[&str] = &[
    "spring.cloud.stream.bindings.uppercase-in-0.consumer.max-attempts",
    "spring.cloud.stream.bindings.uppercase-in-0.consumer.back-off-initial-interval",
    "spring.cloud.stream.bindings.uppercase-in-0.consumer.back-off-multiplier",
    "spring.cloud.stream.bindings.uppercase-in-0.consumer.partitioned",
    "spring.cloud.stream.bindings.uppercase-in-0.destination",
    "spring.cloud.stream.bindings.uppercase-out-0.producer.partition-key-expression",
    "spring.cloud.stream.bindings.x.binder",
    "spring.cloud.stream.default-binder",
    "spring.cloud.stream.binders.r.type",
    "spring.cloud.stream.instance-count",
    "spring.cloud.function.definition",
    "spring.cloud.function.routing-expression",
    "spring.profiles.active",
    "spring.profiles.include",
    "spring.config.activate.on-profile",
    "spring.integration.poller.fixed-delay",
    "app.a",
    "app.b",
    "\"[a.b].c\"",
    "\"quoted\\nkey\"",
];

/// Values worth inserting, placeholders to the planted secrets among them.
const VALUES: &[&str] = &[
    "${spring.rabbitmq.password}",
    "x-${DB_PASSWORD}-y",
    "${app.a}",
    "${app.b:${app.a}}",
    "${MISSING}",
    "${",
    "${spring.cloud.stream.binders.r.environment.spring.rabbitmq.addresses}",
    "4294967296",
    "-1",
    "1e309",
    ".nan",
    "99999999999999999999",
    "PT99999999999999999999H",
    "!!a",
    "(((1)))",
    "payload.a + headers['b']",
    "[a, {b: c}]",
    "{a: [1, 2]}",
    "&anchor x",
    "*anchor",
    "|\n  text",
    "'single'",
    "\"dou\\\"ble\"",
    "~",
    "true",
    "memory",
    "rabbit",
];

/// The planted secrets, as a source loaded last.
fn secrets_source() -> String {
    format!(
        "spring.rabbitmq.password: {SECRET}\n\
         spring.cloud.stream.binders.r.type: rabbit\n\
         spring.cloud.stream.binders.r.environment.spring.rabbitmq.password: {SECRET}\n\
         spring.cloud.stream.binders.r.environment.spring.rabbitmq.addresses: amqp://guest:{SECRET}@broker:5672/\n"
    )
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the byte at this fraction of the text.
    Flip(f64, u8),
    /// Delete up to `n` bytes from this fraction of the text.
    Delete(f64, usize),
    /// Insert this text at this fraction of the text, on a line of its own or not.
    Insert(f64, String, bool),
    /// Append a `key: value` line (top level, so the YAML usually stays well-formed and the
    /// value reaches placeholders, validation and typing). A key already appended is skipped
    /// (a duplicate key is malformed YAML).
    Append(&'static str, &'static str),
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::sample::select(KEYS),
            prop::sample::select(VALUES),
            0usize..8
        )
            .prop_map(|(k, v, indent)| format!("{}{k}: {v}", " ".repeat(indent))),
        prop::sample::select(VALUES).prop_map(str::to_owned),
        "[ -~]{0,24}",
        "[{}\\[\\]$:#'\"!&*|>, \n-]{1,12}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Mostly whole lines: flipped or deleted bytes usually make the YAML malformed, which
    // stops the load before placeholders, validation and typing.
    prop_oneof![
        1 => (0.0..1.0f64, any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        1 => (0.0..1.0f64, 1usize..40).prop_map(|(at, n)| Mutation::Delete(at, n)),
        1 => (0.0..1.0f64, fragment()).prop_map(|(at, t)| Mutation::Insert(at, t, false)),
        1 => (0.0..1.0f64, fragment()).prop_map(|(at, t)| Mutation::Insert(at, t, true)),
        24 => (prop::sample::select(KEYS), prop::sample::select(VALUES))
            .prop_map(|(k, v)| Mutation::Append(k, v)),
    ]
}

fn apply(seed: &str, mutations: &[Mutation]) -> String {
    let mut b = seed.as_bytes().to_vec();
    let mut appended = Vec::new();
    for m in mutations {
        let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len);
        match m {
            Mutation::Flip(f, byte) if !b.is_empty() => {
                let i = at(*f, b.len() - 1);
                b[i] = *byte;
            }
            Mutation::Flip(..) => {}
            Mutation::Delete(f, n) => {
                let i = at(*f, b.len());
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Mutation::Append(key, _) if appended.contains(key) => {}
            Mutation::Append(key, value) => {
                appended.push(*key);
                if b.last().is_some_and(|c| *c != b'\n') {
                    b.push(b'\n');
                }
                b.extend_from_slice(format!("{key}: {value}\n").as_bytes());
            }
            Mutation::Insert(f, text, own_line) => {
                let mut i = at(*f, b.len());
                if *own_line {
                    // Just after the next line break (or at the end).
                    i = b[i..]
                        .iter()
                        .position(|c| *c == b'\n')
                        .map_or(b.len(), |p| i + p + 1);
                    let line = format!("{text}\n");
                    b.splice(i..i, line.bytes());
                } else {
                    b.splice(i..i, text.bytes());
                }
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn env() -> impl Strategy<Value = BTreeMap<String, String>> {
    let name = prop_oneof![
        Just("SPRING_CLOUD_STREAM_BINDINGS_UPPERCASE_IN_0_GROUP".to_owned()),
        Just("SPRING_CLOUD_STREAM_BINDINGS_UPPERCASE_IN_0_CONSUMER_MAX_ATTEMPTS".to_owned()),
        Just("SPRING_CLOUD_STREAM_DEFAULT_BINDER".to_owned()),
        Just("SPRING_CLOUD_FUNCTION_DEFINITION".to_owned()),
        Just("SPRING_PROFILES_ACTIVE".to_owned()),
        Just("CLOUD_STREAM_PROFILES".to_owned()),
        Just("APP_PROFILE".to_owned()),
        "SPRING_CLOUD_STREAM_[A-Z0-9_]{0,40}",
        "[A-Za-z_.\\-]{1,12}",
    ];
    let value = prop_oneof![
        prop::sample::select(VALUES).prop_map(str::to_owned),
        "[ -~]{0,16}"
    ];
    prop::collection::btree_map(name, value, 0..6).prop_map(|mut env| {
        env.insert("DB_PASSWORD".to_owned(), SECRET.to_owned());
        env.insert(
            "SPRING_CLOUD_STREAM_BINDERS_R_ENVIRONMENT_SPRING_RABBITMQ_PASSWORD".to_owned(),
            SECRET.to_owned(),
        );
        env
    })
}

fn cases() -> u32 {
    std::env::var("CLOUD_STREAM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // A failure prints its minimal input; no regression files in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn load_never_panics_and_never_shows_the_secret(
        seed in prop::sample::select(SEEDS),
        mutations in prop::collection::vec(mutation(), 0..10),
        env in env(),
        profiles in prop::collection::vec("[a-z!&|(),]{0,8}", 0..3),
    ) {
        let text = apply(seed, &mutations);
        let result = ConfigLoader::new()
            .env(env)
            .profiles(profiles)
            .yaml_str("application.yaml", &text)
            .yaml_str("secrets.yaml", &secrets_source())
            .load();
        match result {
            Ok(loaded) => {
                let warnings = loaded.warnings.join("\n");
                prop_assert!(!warnings.contains(SECRET), "secret in warnings: {}", warnings);
            }
            Err(e) => {
                let shown = e.to_string();
                prop_assert!(!shown.contains(SECRET), "secret in the error: {}", shown);
                let fields = format!("{:?}", e.issues);
                prop_assert!(!fields.contains(SECRET), "secret in the issues: {}", fields);
            }
        }
    }
}
