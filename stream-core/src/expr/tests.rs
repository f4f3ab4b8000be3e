use serde_json::{json, Value};

use super::*;
use crate::message::{HeaderValue, Headers};

fn headers() -> Headers {
    Headers::new()
        .with("type", "order")
        .with("content-type", "application/json")
        .with("tenant_id", "t1")
        .with("prio", "7")
        .with("idx", "1")
        .with("bin", HeaderValue::Bytes(vec![0xff, 0xfe]))
}

fn payload() -> Value {
    json!({
        "customer": {"id": 42, "name": "Zoë"},
        "items": [{"sku": "a"}, {"sku": "b"}],
        "and": true,
        "big": 18446744073709551615u64,
        "price": 2.5
    })
}

fn eval_with(src: &str, payload: Option<&Value>) -> Result<Value, ExprError> {
    let h = headers();
    let expr = Expression::parse(src)?;
    expr.evaluate(&EvalContext {
        headers: &h,
        payload,
    })
}

fn ev(src: &str) -> Value {
    let p = payload();
    eval_with(src, Some(&p)).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn eval_err(src: &str) -> String {
    let p = payload();
    match eval_with(src, Some(&p)) {
        Err(ExprError::Eval { message, .. }) => message,
        other => panic!("{src}: expected an evaluation error, got {other:?}"),
    }
}

fn parse_err(src: &str) -> (usize, String) {
    match Expression::parse(src) {
        Err(ExprError::Parse {
            column, message, ..
        }) => (column, message),
        other => panic!("{src}: expected a parse error, got {other:?}"),
    }
}

#[test]
fn headers_in_all_forms() {
    assert_eq!(ev("headers['type']"), json!("order"));
    assert_eq!(ev("headers[\"content-type\"]"), json!("application/json"));
    assert_eq!(ev("headers.type"), json!("order"));
    assert_eq!(ev("headers.tenant_id"), json!("t1"));
    assert_eq!(ev("headers['type'] == 'order'"), json!(true));
    assert_eq!(ev("headers['type'] == 'invoice'"), json!(false));
    assert_eq!(ev("headers[payload.items[0].sku + 'bsent']"), Value::Null);
    assert_eq!(ev("headers['ty' + 'pe']"), json!("order"));
    assert_eq!(ev("headers").get("prio"), Some(&json!("7")));
}

#[test]
fn missing_and_binary_headers_are_null() {
    assert_eq!(ev("headers['nope']"), Value::Null);
    assert_eq!(ev("headers.nope == null"), json!(true));
    assert_eq!(ev("headers['bin']"), Value::Null);
    assert_eq!(ev("headers['bin'] == null"), json!(true));
    assert_eq!(ev("headers['bin'] < 'a'"), json!(true));
}

#[test]
fn dashed_header_in_dotted_form_is_rejected() {
    let (col, msg) = parse_err("headers.content-type");
    assert_eq!(col, 17);
    assert!(msg.contains("unknown identifier 'type'"), "{msg}");
}

#[test]
fn payload_navigation() {
    assert_eq!(ev("payload"), payload());
    assert_eq!(ev("payload.customer.id"), json!(42));
    assert_eq!(ev("payload['customer']['name']"), json!("Zoë"));
    assert_eq!(ev("payload.items[1].sku"), json!("b"));
    assert_eq!(
        ev("payload.items[headers.idx == '1' ? 1 : 0].sku"),
        json!("b")
    );
    assert_eq!(ev("payload.items[5]"), Value::Null);
    assert_eq!(ev("payload.items[-1]"), Value::Null);
    assert_eq!(ev("payload.customer.missing.deeper"), Value::Null);
    assert_eq!(ev("payload.customer.id.x"), Value::Null);
    assert_eq!(
        ev("payload.and"),
        json!(true),
        "keywords are fine as property names"
    );
    assert!(eval_err("payload.items[true]").contains("string or an integer"));
}

#[test]
fn payload_without_payload_is_an_eval_error() {
    let err = eval_with("payload.customer.id", None).unwrap_err();
    assert!(matches!(&err, ExprError::Eval { message, .. } if message.contains("'payload'")));
    // Header-only expressions do not need it.
    assert_eq!(eval_with("headers.type", None).unwrap(), json!("order"));
    // Short-circuit: the payload branch is never taken.
    assert_eq!(
        eval_with("true or payload.x == 1", None).unwrap(),
        json!(true)
    );
}

#[test]
fn uses_payload() {
    assert!(!Expression::parse("headers['type']").unwrap().uses_payload());
    assert!(!Expression::parse("1 + 2").unwrap().uses_payload());
    assert!(Expression::parse("payload").unwrap().uses_payload());
    assert!(Expression::parse("headers[payload.k]")
        .unwrap()
        .uses_payload());
    assert!(Expression::parse("true ? 1 : -payload.n")
        .unwrap()
        .uses_payload());
}

#[test]
fn literals() {
    assert_eq!(ev("'abc'"), json!("abc"));
    assert_eq!(ev("'it''s'"), json!("it's"));
    assert_eq!(ev("\"say \"\"hi\"\"\""), json!("say \"hi\""));
    assert_eq!(ev("'a\\n'"), json!("a\\n"), "no backslash escapes");
    assert_eq!(ev("''"), json!(""));
    assert_eq!(ev("42"), json!(42));
    assert_eq!(ev("1.5"), json!(1.5));
    assert_eq!(ev("2e3"), json!(2000.0));
    assert_eq!(ev("true"), json!(true));
    assert_eq!(ev("FALSE"), json!(false));
    assert_eq!(ev("null"), Value::Null);
    assert_eq!(ev("9223372036854775807"), json!(i64::MAX));
    assert_eq!(ev("-9223372036854775808"), json!(i64::MIN));
    assert!(parse_err("9223372036854775808").1.contains("out of range"));
    assert!(parse_err("99999999999999999999").1.contains("out of range"));
    assert!(parse_err("1L").1.contains("suffixes"));
}

#[test]
fn arithmetic_and_precedence() {
    assert_eq!(ev("1 + 2 * 3"), json!(7));
    assert_eq!(ev("1 + 2 * 3 == 7"), json!(true));
    assert_eq!(ev("(1 + 2) * 3"), json!(9));
    assert_eq!(ev("10 - 4 - 3"), json!(3), "left associative");
    assert_eq!(ev("7 / 2"), json!(3), "integer division");
    assert_eq!(ev("7 % 3"), json!(1));
    assert_eq!(ev("7 div 2 + 7 MOD 2"), json!(4));
    assert_eq!(ev("7 / 2.0"), json!(3.5));
    assert_eq!(ev("payload.price * 2"), json!(5.0));
    assert_eq!(ev("-3 * -2"), json!(6));
    assert_eq!(ev("--3"), json!(3));
    assert_eq!(ev("+3"), json!(3));
    assert_eq!(ev("payload.customer.id % 4"), json!(2));
}

#[test]
fn integer_overflow_and_division_by_zero_are_errors() {
    assert_eq!(eval_err("1 / 0"), "division by zero");
    assert_eq!(eval_err("1 % 0"), "division by zero");
    assert_eq!(eval_err("1.0 / 0"), "division by zero");
    assert!(eval_err("9223372036854775807 + 1").contains("overflow"));
    assert!(eval_err("-9223372036854775808 / -1").contains("overflow"));
    assert!(eval_err("-(-9223372036854775808)").contains("overflow"));
    assert!(eval_err("1e308 * 10").contains("finite"));
}

#[test]
fn string_concatenation() {
    assert_eq!(ev("'a' + 'b'"), json!("ab"));
    assert_eq!(ev("'n' + 1"), json!("n1"));
    assert_eq!(ev("1 + 2 + 'x'"), json!("3x"));
    assert_eq!(ev("'x' + 1 + 2"), json!("x12"));
    assert_eq!(ev("'v' + null + true"), json!("vnulltrue"));
    assert_eq!(
        ev("headers.type + '-' + payload.customer.id"),
        json!("order-42")
    );
}

#[test]
fn type_errors() {
    assert_eq!(eval_err("'a' - 1"), "cannot apply '-' to string and number");
    assert!(eval_err("true * 2").contains("boolean and number"));
    assert!(eval_err("1 and true").contains("boolean operands"));
    assert!(eval_err("!1").contains("boolean"));
    assert!(eval_err("-'a'").contains("needs a number"));
    assert!(eval_err("1 ? 2 : 3").contains("boolean"));
    assert!(eval_err("headers.prio > 5").contains("header values are strings"));
    assert!(eval_err("payload.items < 1").contains("cannot compare array with number"));
}

#[test]
fn comparisons() {
    assert_eq!(ev("1 < 2"), json!(true));
    assert_eq!(ev("2 <= 2 and (3 >= 4) == false"), json!(true));
    assert_eq!(ev("1 == 1.0"), json!(true));
    assert_eq!(ev("payload.big > 9223372036854775807"), json!(true));
    assert_eq!(ev("'apple' < 'banana'"), json!(true));
    assert_eq!(
        ev("'b' gt 'a' and 1 LT 2 and 1 eq 1 and 1 ne 2 and 2 ge 2 and 2 le 3"),
        json!(true)
    );
    assert_eq!(
        ev("'1' == 1"),
        json!(false),
        "different types are never equal"
    );
    assert_eq!(ev("null == null"), json!(true));
    assert_eq!(ev("null < 0"), json!(true));
    assert_eq!(ev("payload.customer == payload['customer']"), json!(true));
    assert_eq!(ev("headers.prio != '7'"), json!(false));
    let (_, msg) = parse_err("1 < 2 < 3");
    assert!(msg.contains("chained"), "{msg}");
}

#[test]
fn logic_and_ternary() {
    assert_eq!(ev("true and false or true"), json!(true));
    assert_eq!(
        ev("true || false && false"),
        json!(true),
        "and binds tighter"
    );
    assert_eq!(ev("!true or not false"), json!(true));
    assert_eq!(ev("false and 1 / 0 == 1"), json!(false), "short-circuit");
    assert_eq!(
        ev("headers.type == 'order' ? 'orders' : 'other'"),
        json!("orders")
    );
    assert_eq!(
        ev("false ? 1 : true ? 2 : 3"),
        json!(2),
        "right associative"
    );
    assert_eq!(ev("1 + 1 == 2 ? 'y' : 'n'"), json!("y"));
}

#[test]
fn evaluate_to_key_forms() {
    let h = headers();
    let p = payload();
    let ctx = EvalContext {
        headers: &h,
        payload: Some(&p),
    };
    let key = |src: &str| {
        Expression::parse(src)
            .unwrap()
            .evaluate_to_key(&ctx)
            .unwrap()
    };
    assert_eq!(key("headers.type").as_deref(), Some("order"));
    assert_eq!(key("payload.customer.id").as_deref(), Some("42"));
    assert_eq!(key("payload.price").as_deref(), Some("2.5"));
    assert_eq!(key("1 < 2").as_deref(), Some("true"));
    assert_eq!(key("headers.missing"), None);
    assert_eq!(key("payload.items[0]").as_deref(), Some(r#"{"sku":"a"}"#));
    assert_eq!(key("payload.items[0].sku + ''").as_deref(), Some("a"));
}

#[test]
fn unsupported_constructs_report_column() {
    let (col, msg) = parse_err("headers['x'].hashCode()");
    assert_eq!(col, 14);
    assert!(
        msg.contains("method calls") && msg.contains("hashCode"),
        "{msg}"
    );

    let cases: &[(&str, usize, &str)] = &[
        ("T(java.lang.Math).random()", 1, "type references"),
        ("@routerBean", 1, "bean references"),
        ("&factory", 1, "bean references"),
        ("#root", 1, "variables"),
        ("headers['a'] = 'b'", 14, "assignment"),
        ("payload?.a", 8, "safe navigation"),
        ("payload.a ?: 'x'", 11, "Elvis"),
        ("payload.items.?[sku == 'a']", 14, "selection"),
        ("{1, 2}", 1, "inline lists"),
        ("2 ^ 3", 3, "power"),
        ("new String('a')", 1, "constructor"),
        ("payload.a matches 'x'", 11, "'matches' operator"),
        ("foo", 1, "unknown identifier 'foo'"),
        ("max(1, 2)", 1, "function calls"),
        ("'a'.length", 4, "only supported on 'headers' and 'payload'"),
        ("1 +", 4, "expected an operand, found the end"),
        ("(1 + 2", 7, "expected ')'"),
        ("payload.items[0", 16, "expected ']'"),
        ("payload.", 9, "property name"),
        ("1 2", 3, "unexpected a number"),
        ("and", 1, "keyword 'and'"),
        ("true ? 1", 9, "':'"),
        ("", 1, "expected an operand"),
        ("'é' + ü", 7, "unexpected character 'ü'"),
    ];
    for (src, col, needle) in cases {
        let (c, m) = parse_err(src);
        assert!(m.contains(needle), "{src}: message {m:?} lacks {needle:?}");
        assert_eq!(c, *col, "{src}: {m}");
    }
}

#[test]
fn unterminated_strings() {
    let (col, msg) = parse_err("headers['type] == 'x'");
    assert_eq!(
        col, 21,
        "the string 'type] == ' is closed, the last quote opens another"
    );
    assert!(msg.contains("unterminated string"), "{msg}");
    let (col, msg) = parse_err("headers['type]");
    assert_eq!(col, 9);
    assert!(msg.contains("unterminated string"), "{msg}");
    let (col, msg) = parse_err("\"abc");
    assert_eq!(col, 1);
    assert!(msg.contains("unterminated string"), "{msg}");
    assert!(parse_err("'it''").1.contains("unterminated"));
}

#[test]
fn error_display_names_expression_and_column() {
    let err = Expression::parse("payload.x()").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid expression `payload.x()` at column 9: method calls ('x(...)') are not supported"
    );
    let err = eval_with("1 / 0", None).unwrap_err();
    assert_eq!(err.to_string(), "cannot evaluate `1 / 0`: division by zero");
}

#[test]
fn nesting_is_capped() {
    let ok = format!("{}1{}", "(".repeat(40), ")".repeat(40));
    assert_eq!(ev(&ok), json!(1));
    // Right at the limit everything still parses and evaluates.
    let at_limit = format!(
        "{}1{}",
        "(".repeat(parser::MAX_NESTING),
        ")".repeat(parser::MAX_NESTING)
    );
    assert_eq!(ev(&at_limit), json!(1));
    let over = format!("({at_limit})");
    assert!(parse_err(&over).1.contains("nested too deeply"));
    assert_eq!(
        ev(&format!("{}1", "-".repeat(parser::MAX_NESTING))),
        json!(1)
    );
    let n = parser::MAX_NESTING;
    let brackets = format!("{}'customer'{}", "payload[".repeat(n), "]".repeat(n));
    // Parses; evaluation fails cleanly (an object is not a valid index) instead of overflowing.
    assert!(eval_err(&brackets).contains("string or an integer"));
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse_err(&deep).1.contains("nested too deeply"));
    let negs = format!("{}1", "-".repeat(10_000));
    assert!(parse_err(&negs).1.contains("nested too deeply"));
    let ternaries = "true ? 1 : ".repeat(10_000) + "2";
    assert!(parse_err(&ternaries).1.contains("nested too deeply"));
    let brackets = format!("{}0{}", "payload[".repeat(10_000), "]".repeat(10_000));
    assert!(parse_err(&brackets).1.contains("nested too deeply"));
    let chain = vec!["1"; 100_000].join(" + ");
    assert!(parse_err(&chain).1.contains("too complex"));
    let chain = vec!["1"; 200].join(" + ");
    assert_eq!(ev(&chain), json!(200));
}

#[test]
fn expression_is_reusable_and_debuggable() {
    let expr: Expression = "headers.type".parse().unwrap();
    assert_eq!(expr.source(), "headers.type");
    assert_eq!(expr.to_string(), "headers.type");
    assert!(format!("{expr:?}").contains("headers.type"));
    let clone = expr.clone();
    for t in ["a", "b", "c"] {
        let h = Headers::new().with("type", t);
        let ctx = EvalContext {
            headers: &h,
            payload: None,
        };
        assert_eq!(clone.evaluate_to_key(&ctx).unwrap().as_deref(), Some(t));
    }
}

/// Deterministic xorshift generator, so the fuzz loop needs no extra crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn parse_and_evaluate_never_panic_on_random_input() {
    const FRAGMENTS: &[&str] = &[
        "headers",
        "payload",
        "[",
        "]",
        "(",
        ")",
        ".",
        "'",
        "\"",
        "'x'",
        "0",
        "1",
        "-",
        "+",
        "*",
        "/",
        "%",
        "==",
        "!=",
        "<",
        ">=",
        "!",
        "not",
        "and",
        "or",
        "&&",
        "||",
        "?",
        ":",
        " ",
        "9223372036854775807",
        "9223372036854775808",
        "1.5",
        "1e400",
        "true",
        "null",
        "items",
        "customer",
        "id",
        "é",
        "日本",
        "\u{0}",
        "@",
        "#",
        "=",
        "T(",
        "$",
        "_",
        "e",
        "div",
    ];
    let h = headers();
    let p = payload();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    for round in 0..20_000 {
        let src = if round % 2 == 0 {
            // Raw random bytes, made into a string the way a config loader would.
            let len = rng.below(40);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            // Grammar-shaped noise, which gets much further into the parser.
            (0..rng.below(16))
                .map(|_| FRAGMENTS[rng.below(FRAGMENTS.len())])
                .collect::<String>()
        };
        match Expression::parse(&src) {
            Ok(expr) => {
                parsed += 1;
                for payload in [Some(&p), None] {
                    let ctx = EvalContext {
                        headers: &h,
                        payload,
                    };
                    let _ = expr.evaluate(&ctx);
                    let _ = expr.evaluate_to_key(&ctx);
                }
            }
            Err(ExprError::Parse { column, .. }) => {
                assert!(
                    column >= 1 && column <= src.chars().count() + 1,
                    "{src:?}: {column}"
                );
            }
            Err(other) => panic!("{src:?}: parse returned {other:?}"),
        }
    }
    assert!(
        parsed > 100,
        "the generator should produce some valid expressions ({parsed})"
    );
}
