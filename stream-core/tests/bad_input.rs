//! Hostile and broken configuration (issue 11, section 3): every case must end in a clear
//! error (key path, what was expected, never a secret) or be accepted, without panicking,
//! overflowing the stack, hanging or growing memory without bound.
//!
//! Each case runs on its own thread (default 2 MiB stack, like a runtime worker) and must
//! finish within [`TIME_LIMIT`]. The big inputs are generated here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use stream_core::config::{ConfigError, ConfigLoader, LoadedConfig};

/// Planted in passwords and URIs; must never be printed.
const SECRET: &str = "s3cr3t-pa55";
/// How long one case may take (generous for debug builds on a small machine).
const TIME_LIMIT: Duration = Duration::from_secs(10);
/// The most error text one load may produce.
const MAX_ERROR_TEXT: usize = 64 * 1024;

const BINDING: &str = "spring.cloud.stream.bindings.upper-in-0";

/// A valid configuration with secrets planted in it.
fn base() -> String {
    format!(
        "spring:\n  rabbitmq:\n    password: {SECRET}\n  cloud:\n    function:\n      definition: upper\n    stream:\n      bindings:\n        upper-in-0:\n          destination: words\n          group: g\n      binders:\n        r:\n          type: rabbit\n          environment:\n            spring.rabbitmq.addresses: amqp://guest:{SECRET}@broker:5672/\n"
    )
}

/// Runs `f` on its own thread; fails the test when it panics or takes longer than the limit.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(TIME_LIMIT) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("case did not finish within {TIME_LIMIT:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => panic!("case ended without a result"),
        },
    }
}

fn loader() -> ConfigLoader {
    ConfigLoader::new().env(BTreeMap::new())
}

/// Loads `yaml` (after the base configuration) with an empty environment, bounded.
fn load(yaml: String) -> Result<LoadedConfig, ConfigError> {
    bounded(move || {
        loader()
            .yaml_str("application.yaml", &base())
            .yaml_str("extra.yaml", &yaml)
            .load()
    })
}

/// Asserts that no secret leaks and the output is bounded; returns the display text.
fn checked(err: &ConfigError) -> String {
    let text = err.to_string();
    assert!(
        text.len() < MAX_ERROR_TEXT,
        "error text is {} bytes: {}...",
        text.len(),
        text.chars().take(2000).collect::<String>()
    );
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    assert!(
        !format!("{err:?}").contains(SECRET),
        "secret in the issue fields"
    );
    text
}

/// Asserts an error that mentions every one of `needles`; returns its text.
fn expect_err(res: Result<LoadedConfig, ConfigError>, needles: &[&str]) -> String {
    let err = match res {
        Ok(l) => panic!("expected an error, loaded: {:?}", l.warnings),
        Err(e) => e,
    };
    let text = checked(&err);
    for n in needles {
        assert!(text.contains(n), "`{n}` not in:\n{text}");
    }
    text
}

/// Either outcome is fine as long as nothing leaks and the output is bounded.
fn accept_either(res: Result<LoadedConfig, ConfigError>) {
    match res {
        Ok(l) => {
            let all = l.warnings.join("\n");
            assert!(!all.contains(SECRET), "secret in warnings: {all}");
            assert!(
                all.len() < MAX_ERROR_TEXT,
                "warnings are {} bytes",
                all.len()
            );
        }
        Err(e) => {
            checked(&e);
        }
    }
}

fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cloud-stream-bad-input-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("application.yaml");
    std::fs::write(&path, contents).expect("write temp file");
    path
}

// ---------------------------------------------------------------- environment variables

/// Runs this test binary again, filtered to `child_loads_with_the_process_environment`, with a
/// non-UTF-8 variable name and value in its environment.
#[cfg(unix)]
#[test]
fn env_var_not_utf8_is_skipped_without_printing_it() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let exe = std::env::current_exe().expect("test binary");
    let mut value = b"bad-\xff-".to_vec();
    value.extend_from_slice(SECRET.as_bytes());
    let out = bounded(move || {
        std::process::Command::new(exe)
            .args([
                "--exact",
                "child_loads_with_the_process_environment",
                "--nocapture",
                "--include-ignored",
            ])
            .env("CLOUD_STREAM_BAD_INPUT_CHILD", "1")
            .env(
                OsStr::from_bytes(b"SPRING_CLOUD_STREAM_BINDINGS_UPPER_IN_0_GROUP"),
                OsStr::from_bytes(&value),
            )
            .env(OsStr::from_bytes(b"SPRING_CLOUD_STREAM_\xffX"), "1")
            .env(OsStr::from_bytes(b"OTHER\xfe"), OsStr::from_bytes(&value))
            .output()
            .expect("run the child test")
    });
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{all}");
    assert!(all.contains("child loaded"), "{all}");
    assert!(!all.contains(SECRET), "value printed:\n{all}");
    assert!(
        all.contains("SPRING_CLOUD_STREAM_\\xffX"),
        "warning names the variable:\n{all}"
    );
}

#[test]
#[ignore = "run by env_var_not_utf8_is_skipped_without_printing_it"]
fn child_loads_with_the_process_environment() {
    if std::env::var_os("CLOUD_STREAM_BAD_INPUT_CHILD").is_none() {
        return;
    }
    let res = ConfigLoader::new().yaml_str("a.yaml", &base()).load();
    match res {
        Ok(l) => {
            for w in &l.warnings {
                println!("warning: {w}");
            }
            println!("child loaded: ok");
        }
        Err(e) => println!("child loaded: error\n{e}"),
    }
}

#[test]
fn junk_override_variables() {
    let mut env = BTreeMap::new();
    let p = "SPRING_CLOUD_STREAM_";
    env.insert(format!("{p}{}", "_".repeat(5000)), "x".to_owned());
    env.insert(format!("{p}{}GROUP", "A_".repeat(5000)), "x".to_owned());
    env.insert(
        format!("{p}BINDINGS_{}GROUP", "X_".repeat(3000)),
        "g".to_owned(),
    );
    env.insert(format!("{p}BINDINGS_X\nY_GROUP"), "g".to_owned());
    env.insert(
        format!("{p}BINDINGS_ÜBER_IN_0_GROUP"),
        "g\u{7}\u{1b}[31m".to_owned(),
    );
    env.insert(
        format!("{p}BINDINGS_UPPER_IN_0_GROUP"),
        format!("${{oops:{SECRET}"),
    );
    env.insert(
        format!("{p}BINDINGS_UPPER_IN_0_DESTINATION"),
        "${".repeat(20_000),
    );
    env.insert(
        format!("{p}BINDINGS_UPPER_IN_0_CONSUMER_MAX_ATTEMPTS"),
        "4294967296".to_owned(),
    );
    env.insert(
        format!("{p}BINDERS_R_ENVIRONMENT_PASSWORD"),
        SECRET.to_owned(),
    );
    env.insert(format!("{p}DEFAULT_BINDER"), "x".repeat(1 << 20));
    env.insert(
        "SPRING_CLOUD_FUNCTION_DEFINITION".to_owned(),
        "((((".repeat(5000),
    );
    let res = bounded(move || loader().env(env).yaml_str("a.yaml", &base()).load());
    accept_either(res);
}

// ---------------------------------------------------------------- placeholders

#[test]
fn placeholder_self_reference() {
    expect_err(load("app.a: x${app.a}\n".into()), &["app.a", "cycle"]);
}

#[test]
fn placeholder_cycle() {
    expect_err(
        load("app: {a: '${app.b}', b: '${app.c}', c: '${app.a}'}\n".into()),
        &["app.a", "cycle"],
    );
}

#[test]
fn unterminated_placeholder_does_not_echo_the_value() {
    let text = expect_err(
        load(format!(
            "{BINDING}.group: \"${{GROUP:{SECRET}\"\napp.url: \"amqp://u:{SECRET}@h/${{x\"\n"
        )),
        &[&format!("{BINDING}.group"), "app.url", "unterminated"],
    );
    assert!(!text.contains("guest"), "{text}");
}

#[test]
fn unresolvable_placeholder_in_a_password() {
    expect_err(
        load(format!("spring.rabbitmq.password: \"${{{SECRET}}}\"\n")),
        &["spring.rabbitmq.password", "cannot resolve"],
    );
}

#[test]
fn placeholders_nested_20000_deep() {
    let n = 20_000;
    let closed = format!("{}x{}", "${".repeat(n), "}".repeat(n));
    expect_err(load(format!("app.a: \"{closed}\"\n")), &["app.a"]);
    let open = "${".repeat(n);
    expect_err(
        load(format!("app.a: \"{open}\"\n")),
        &["app.a", "unterminated"],
    );
    let defaults: String =
        (0..n).map(|i| format!("${{p{i}:")).collect::<String>() + "x" + &"}".repeat(n);
    expect_err(load(format!("app.a: \"{defaults}\"\n")), &["app.a"]);
}

/// 700 bytes whose `${p11}` would be 10^12 characters long.
#[test]
fn placeholder_expansion_bomb_used_by_a_binding() {
    let mut yaml = String::from("p0: xxxxxxxxxx\n");
    for i in 1..=11 {
        yaml.push_str(&format!(
            "p{i}: \"{}\"\n",
            format!("${{p{}}}", i - 1).repeat(10)
        ));
    }
    yaml.push_str(&format!("{BINDING}.destination: ${{p11}}\n"));
    assert!(yaml.len() < 1024, "{}", yaml.len());
    expect_err(load(yaml), &[&format!("{BINDING}.destination"), "KiB"]);
}

/// A 40-level doubling chain that nothing uses: bounded either way.
#[test]
fn placeholder_doubling_chain_unused() {
    let mut yaml = String::from("chain:\n  p0: ab\n");
    for i in 1..=40 {
        yaml.push_str(&format!(
            "  p{i}: ${{chain.p{j}}}${{chain.p{j}}}\n",
            j = i - 1
        ));
    }
    accept_either(load(yaml));
}

/// Doubling that expands to nothing: the output stays empty, the work must not explode.
#[test]
fn placeholder_doubling_chain_of_empty_values() {
    let mut yaml = String::from("chain:\n  p0: ''\n");
    for i in 1..=40 {
        yaml.push_str(&format!(
            "  p{i}: ${{chain.p{j}}}${{chain.p{j}}}\n",
            j = i - 1
        ));
    }
    yaml.push_str(&format!("{BINDING}.group: g${{chain.p40}}\n"));
    accept_either(load(yaml));
}

// ---------------------------------------------------------------- structure and size

#[test]
fn dotted_key_with_5000_segments() {
    // An explicit key (`? key`): plain implicit keys are limited to 1024 characters.
    let key = vec!["a"; 5000].join(".");
    expect_err(load(format!("? {key}\n: 1\n")), &["a.a.a", "64"]);
    let key = format!("{BINDING}.{}", vec!["b"; 5000].join("."));
    expect_err(load(format!("? {key}\n: 1\n")), &[BINDING, "64"]);
}

#[test]
fn set_key_with_5000_segments() {
    let key = vec!["a"; 5000].join(".");
    let res = bounded(move || loader().yaml_str("a.yaml", &base()).set(&key, "1").load());
    expect_err(res, &["a.a.a", "64"]);
}

#[test]
fn odd_set_keys() {
    let res = bounded(|| {
        loader()
            .yaml_str("a.yaml", &base())
            .set("", "x")
            .set("[", "x")
            .set("]]]", "x")
            .set("a..b", "x")
            .set("[[[[a.b]]", "x")
            .set(&format!("{BINDING}.group"), &format!("${{{SECRET}"))
            .load()
    });
    expect_err(res, &[&format!("{BINDING}.group")]);
}

/// Deep flow nesting is refused by the scanner, with its position, before it builds anything.
#[test]
fn yaml_flow_nesting_10000_deep() {
    let n = 10_000;
    let needles = ["line 1, column 75", "nested deeper than 64"];
    let seqs = format!("app.deep: {}1{}\n", "[".repeat(n), "]".repeat(n));
    expect_err(load(seqs), &needles);
    let open = format!("app.deep: {}\n", "[".repeat(n));
    expect_err(load(open), &needles);
    let maps = format!("app.deep: {}1{}\n", "{a: ".repeat(n), "}".repeat(n));
    expect_err(load(maps), &["nested deeper than 64"]);
}

/// The same bombs at nearly the size limit, and with closers hidden in quotes and comments.
#[test]
fn yaml_flow_bombs_near_the_size_limit() {
    let bombs = [
        format!("a: {}", "{a: ".repeat(250_000)),
        format!("a: {}", "[\n".repeat(500_000)),
        format!("a: {}", "[ \"]\", ".repeat(120_000)),
        format!("a: {}", "[ # ]\n".repeat(160_000)),
        format!("a: [x\"y, {}", "[ ']', ".repeat(120_000)),
    ];
    for bomb in bombs {
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        expect_err(load(bomb), &["nested deeper than 64"]);
    }
}

#[test]
fn yaml_block_nesting_near_the_size_limit() {
    let seqs = format!("app.deep:\n  {}x\n", "- ".repeat(500_000));
    expect_err(load(seqs), &["line 2", "64"]);
}

#[test]
fn yaml_block_nesting_deep() {
    let seqs = format!("app:\n  deep:\n    {}x\n", "- ".repeat(10_000));
    expect_err(load(seqs), &["line 3", "64"]);
    // One `- ` per line: the parser sees every level, the error names the line.
    let mut lines = String::from("app:\n  deep:\n");
    for i in 0..100 {
        lines.push_str(&format!("{}- \n", " ".repeat(4 + i)));
    }
    expect_err(load(lines), &["nested deeper than 64 levels at line 67"]);
    let mut maps = String::from("app:\n");
    for i in 1..1000 {
        maps.push_str(&" ".repeat(i));
        maps.push_str("a:\n");
    }
    maps.push_str(&" ".repeat(1000));
    maps.push_str("a: 1\n");
    expect_err(load(maps), &["nested deeper than 64 levels at line 67"]);
}

#[test]
fn profile_expression_with_20000_negations() {
    let bang = format!(
        "---\nspring.config.activate.on-profile: \"{}a\"\napp.x: 1\n",
        "!".repeat(20_000)
    );
    expect_err(load(bang), &["on-profile"]);
    let parens = format!(
        "---\nspring.config.activate.on-profile: \"{}a{}\"\napp.x: 1\n",
        "(".repeat(20_000),
        ")".repeat(20_000)
    );
    expect_err(load(parens), &["on-profile"]);
    let legacy = format!(
        "---\nspring.profiles: \"{}a{}\"\napp.x: 1\n",
        "!(".repeat(10_000),
        ")".repeat(10_000)
    );
    expect_err(load(legacy), &["spring.profiles"]);
}

#[test]
fn twenty_thousand_unknown_keys() {
    let mut yaml = String::from("spring.cloud.stream:\n");
    for i in 0..20_000 {
        yaml.push_str(&format!("  unknown-key-{i}: 1\n"));
    }
    let text = expect_err(load(yaml), &["spring.cloud.stream.unknown-key-0", "more"]);
    assert!(
        text.lines().count() <= 101,
        "{} lines",
        text.lines().count()
    );
}

/// Many binders (did-you-mean candidates) and many misspelt sections at once.
#[test]
fn twenty_thousand_binders_and_unknown_keys() {
    let mut yaml = String::from("spring.cloud.stream:\n  binders:\n");
    for i in 0..20_000 {
        yaml.push_str(&format!("    b{i}: {{}}\n"));
    }
    for i in 0..20_000 {
        yaml.push_str(&format!("  x{i}: 1\n"));
    }
    expect_err(load(yaml), &["spring.cloud.stream.x"]);
}

#[test]
fn fifty_megabyte_file() {
    let mut big = base().into_bytes();
    let line = b"app.filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
    while big.len() < 50 << 20 {
        big.extend_from_slice(b"#");
        big.extend_from_slice(line);
    }
    let path = temp_file("big", &big);
    let p = path.clone();
    let res = bounded(move || loader().file(p).load());
    expect_err(res, &["application.yaml", "MiB"]);
    let _ = std::fs::remove_file(path);
}

#[cfg(unix)]
#[test]
fn dev_zero_as_the_config_file() {
    let res = bounded(|| loader().file("/dev/zero").load());
    expect_err(res, &["/dev/zero"]);
}

#[test]
fn directory_as_the_config_file() {
    let dir = std::env::temp_dir();
    let res = bounded(move || loader().file(dir).load());
    expect_err(res, &["cannot read"]);
}

#[test]
fn inline_source_over_the_size_limit() {
    let text = format!("app.x: \"{}\"\n", "a".repeat(5 << 20));
    let res = bounded(move || loader().yaml_str("big.yaml", &text).load());
    expect_err(res, &["big.yaml", "MiB"]);
}

#[test]
fn billion_laughs() {
    let mut yaml = String::from(
        "lol0: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..=9 {
        let j = i - 1;
        yaml.push_str(&format!(
            "lol{i}: &l{i} [{}]\n",
            vec![format!("*l{j}"); 9].join(",")
        ));
    }
    accept_either(load(yaml));
}

/// Few aliases of one big anchor: few alias jumps, a huge expanded tree.
#[test]
fn wide_alias_expansion() {
    let anchor = vec!["1"; 50_000].join(",");
    let aliases = vec!["*a"; 2_000].join(",");
    let yaml = format!("big: &a [{anchor}]\ncopies: [{aliases}]\n");
    expect_err(load(yaml), &["line"]);
}

// ---------------------------------------------------------------- numbers

fn consumer(prop: &str, value: &str) -> String {
    format!("{BINDING}.consumer.{prop}: {value}\n")
}

#[test]
fn numbers_out_of_range() {
    let cases = [
        ("max-attempts", "4294967296"),
        ("max-attempts", "1e309"),
        ("max-attempts", "-1"),
        ("max-attempts", "99999999999999999999"),
        ("max-attempts", "-99999999999999999999"),
        ("max-attempts", ".nan"),
        ("back-off-multiplier", "1e309"),
        ("back-off-multiplier", ".inf"),
        ("back-off-initial-interval", "99999999999999999999d"),
        ("back-off-initial-interval", "PT99999999999999999999H"),
        (
            "back-off-initial-interval",
            &format!("PT{}H", "9".repeat(400)),
        ),
        ("back-off-max-interval", "-5s"),
    ];
    for (prop, value) in cases {
        let path = format!("{BINDING}.consumer.{prop}");
        let text = expect_err(load(consumer(prop, value)), &[&path]);
        assert!(
            text.lines().count() == 1,
            "{prop}: {value}: one issue at the field:\n{text}"
        );
    }
}

// ---------------------------------------------------------------- expressions

#[test]
fn expression_recursion_bombs() {
    for bomb in [
        format!("{}1{}", "(".repeat(20_000), ")".repeat(20_000)),
        format!("{}true", "!".repeat(20_000)),
        format!("{}1", "-".repeat(20_000)),
        vec!["1"; 20_000].join("+"),
    ] {
        let yaml = format!(
            "spring.cloud.stream.bindings.upper-out-0.producer.partition-key-expression: \"{bomb}\"\n"
        );
        expect_err(load(yaml), &["partition-key-expression"]);
    }
}

// ---------------------------------------------------------------- control characters

#[test]
fn control_characters_are_escaped_in_errors() {
    let yaml = format!(
        "\"{BINDING}.bo\\ngus\\r\\u001b[2J\": 1\n{BINDING}.consumer.max-attempts: \"lots\\nof\\ttries\\u0007\"\n"
    );
    let text = expect_err(load(yaml), &["bo\\ngus", "lots\\nof"]);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
}

// ---------------------------------------------------------------- secrets carried elsewhere

/// A placeholder can carry a secret into a key that is not secret; a bad value shown there
/// must not show the secret.
#[test]
fn secret_carried_by_a_placeholder_is_not_shown() {
    let yaml = format!(
        "{BINDING}.consumer.max-attempts: ${{spring.rabbitmq.password}}\n{BINDING}.consumer.partitioned: x-${{DB_PASSWORD}}\n{BINDING}.consumer.concurrency: ${{spring.cloud.stream.binders.r.environment.spring.rabbitmq.addresses}}\n"
    );
    let env = BTreeMap::from([("DB_PASSWORD".to_owned(), SECRET.to_owned())]);
    let res = bounded(move || {
        loader()
            .env(env)
            .yaml_str("application.yaml", &base())
            .yaml_str("extra.yaml", &yaml)
            .load()
    });
    expect_err(
        res,
        &[
            &format!("{BINDING}.consumer.max-attempts"),
            &format!("{BINDING}.consumer.partitioned"),
            &format!("{BINDING}.consumer.concurrency"),
        ],
    );
}

/// A function definition resolved from a secret names bindings after it: found by
/// fuzz_config, the secret was in the issue paths.
#[test]
fn secret_in_derived_binding_names_is_not_shown() {
    let env = BTreeMap::from([("DB_PASSWORD".to_owned(), SECRET.to_owned())]);
    let res = bounded(move || {
        loader()
            .env(env)
            .yaml_str("application.yaml", &base())
            .yaml_str(
                "extra.yaml",
                "spring.cloud.function.definition: ${DB_PASSWORD}\nspring.cloud.stream.binders.k.type: kafka\n",
            )
            .load()
    });
    // Bindings derived from the definition alone are not checked (only those that exist),
    // so the issue is about a configured binding; the secret shows nowhere.
    expect_err(res, &["several binders are configured"]);
}
