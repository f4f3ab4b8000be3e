//! Tree-walking evaluator. Errors are plain messages; [`super::Expression`] wraps them.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::parser::{BinOp, Kind, Node, Root, Seg, UnOp};
use super::EvalContext;

type EvalResult<'v> = Result<Cow<'v, Value>, String>;

/// Evaluates `node`; the result may borrow from the tree (literals) or the payload.
pub(super) fn eval<'v>(node: &'v Node, ctx: &EvalContext<'v>) -> EvalResult<'v> {
    match &node.kind {
        Kind::Lit(v) => Ok(Cow::Borrowed(v)),
        Kind::Path(root, segs) => path(*root, segs, ctx),
        Kind::Unary(op, operand) => {
            let v = eval(operand, ctx)?;
            unary(*op, &v).map(Cow::Owned)
        }
        Kind::Binary(BinOp::And, l, r) => {
            if !boolean(&*eval(l, ctx)?, "and")? {
                return Ok(Cow::Owned(Value::Bool(false)));
            }
            Ok(Cow::Owned(Value::Bool(boolean(&*eval(r, ctx)?, "and")?)))
        }
        Kind::Binary(BinOp::Or, l, r) => {
            if boolean(&*eval(l, ctx)?, "or")? {
                return Ok(Cow::Owned(Value::Bool(true)));
            }
            Ok(Cow::Owned(Value::Bool(boolean(&*eval(r, ctx)?, "or")?)))
        }
        Kind::Binary(op, l, r) => {
            let l = eval(l, ctx)?;
            let r = eval(r, ctx)?;
            binary(*op, &l, &r).map(Cow::Owned)
        }
        Kind::Cond(c, a, b) => {
            if boolean(&*eval(c, ctx)?, "?:")? {
                eval(a, ctx)
            } else {
                eval(b, ctx)
            }
        }
    }
}

/// The JSON type name used in error messages.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn header_value(ctx: &EvalContext<'_>, name: &str) -> Value {
    // A missing header and one whose bytes are not UTF-8 both read as null.
    match ctx.headers.get_str(name) {
        Some(s) => Value::String(s.to_owned()),
        None => Value::Null,
    }
}

fn path<'v>(root: Root, segs: &'v [Seg], ctx: &EvalContext<'v>) -> EvalResult<'v> {
    let mut rest = segs.iter();
    let mut current: Cow<'v, Value> =
        match root {
            Root::Payload => match ctx.payload {
                Some(p) => Cow::Borrowed(p),
                None => return Err(
                    "'payload' is not available here (the payload is not JSON or was not decoded)"
                        .to_owned(),
                ),
            },
            Root::Headers => match rest.next() {
                None => Cow::Owned(Value::Object(
                    ctx.headers
                        .iter()
                        .map(|(k, v)| {
                            let v = v
                                .as_str()
                                .map_or(Value::Null, |s| Value::String(s.to_owned()));
                            (k.to_owned(), v)
                        })
                        .collect::<Map<String, Value>>(),
                )),
                Some(Seg::Key(name)) => Cow::Owned(header_value(ctx, name)),
                Some(Seg::Index(i)) => Cow::Owned(header_value(ctx, &i.to_string())),
                Some(Seg::Dyn(node)) => match eval(node, ctx)?.as_ref() {
                    Value::String(name) => Cow::Owned(header_value(ctx, name)),
                    other => {
                        return Err(format!(
                            "a header name must be a string, but the index evaluated to {}",
                            type_name(other)
                        ))
                    }
                },
            },
        };
    for seg in rest {
        current = match seg {
            Seg::Key(k) => member(current, |v| v.as_object().and_then(|o| o.get(k))),
            Seg::Index(i) => member(current, |v| index(v, *i)),
            Seg::Dyn(node) => {
                let key = eval(node, ctx)?;
                match key.as_ref() {
                    Value::String(k) => {
                        member(current, |v| v.as_object().and_then(|o| o.get(k.as_str())))
                    }
                    Value::Number(n) if n.is_i64() => {
                        let i = n.as_i64().unwrap_or(-1);
                        member(current, |v| index(v, i))
                    }
                    other => {
                        return Err(format!(
                            "an index must be a string or an integer, not {}",
                            type_name(other)
                        ))
                    }
                }
            }
        };
    }
    Ok(current)
}

fn index(v: &Value, i: i64) -> Option<&Value> {
    let arr = v.as_array()?;
    arr.get(usize::try_from(i).ok()?)
}

/// Navigates one step; anything missing (or not navigable) is null.
fn member<'v>(base: Cow<'v, Value>, get: impl FnOnce(&Value) -> Option<&Value>) -> Cow<'v, Value> {
    match base {
        Cow::Borrowed(b) => Cow::Borrowed(get(b).unwrap_or(&Value::Null)),
        Cow::Owned(o) => Cow::Owned(get(&o).cloned().unwrap_or(Value::Null)),
    }
}

fn boolean(v: &Value, op: &str) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(format!(
            "'{op}' needs boolean operands, found {}",
            type_name(other)
        )),
    }
}

#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn of(v: &Value) -> Option<Num> {
        let n = v.as_number()?;
        Some(match n.as_i64() {
            Some(i) => Num::Int(i),
            // u64 above i64::MAX, or a decimal.
            None => Num::Float(n.as_f64()?),
        })
    }

    fn float(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

fn float_value(f: f64) -> Result<Value, String> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| "the result is not a finite number".to_owned())
}

fn unary(op: UnOp, v: &Value) -> Result<Value, String> {
    match (op, v) {
        (UnOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
        (UnOp::Not, other) => Err(format!("'!' needs a boolean, found {}", type_name(other))),
        (UnOp::Neg | UnOp::Plus, other) => match Num::of(other) {
            Some(Num::Int(i)) if op == UnOp::Neg => i
                .checked_neg()
                .map(Value::from)
                .ok_or_else(|| format!("integer overflow negating {i}")),
            Some(Num::Float(f)) if op == UnOp::Neg => float_value(-f),
            Some(_) => Ok(other.clone()),
            None => Err(format!(
                "unary '{}' needs a number, found {}",
                if op == UnOp::Neg { "-" } else { "+" },
                type_name(other)
            )),
        },
    }
}

/// String form used by `+` concatenation (SpEL: `'a' + null` is `anull`).
fn concat_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

fn binary(op: BinOp, l: &Value, r: &Value) -> Result<Value, String> {
    match op {
        BinOp::Add if l.is_string() || r.is_string() => Ok(Value::String(format!(
            "{}{}",
            concat_text(l),
            concat_text(r)
        ))),
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => arithmetic(op, l, r),
        BinOp::Eq => Ok(Value::Bool(equals(l, r))),
        BinOp::Ne => Ok(Value::Bool(!equals(l, r))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ord = compare(op, l, r)?;
            Ok(Value::Bool(match op {
                BinOp::Lt => ord == Ordering::Less,
                BinOp::Le => ord != Ordering::Greater,
                BinOp::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }))
        }
        // Short-circuited in `eval`; kept total for safety.
        BinOp::And => Ok(Value::Bool(boolean(l, "and")? && boolean(r, "and")?)),
        BinOp::Or => Ok(Value::Bool(boolean(l, "or")? || boolean(r, "or")?)),
    }
}

fn arithmetic(op: BinOp, l: &Value, r: &Value) -> Result<Value, String> {
    let sym = op.symbol();
    let (Some(a), Some(b)) = (Num::of(l), Num::of(r)) else {
        return Err(format!(
            "cannot apply '{sym}' to {} and {}",
            type_name(l),
            type_name(r)
        ));
    };
    if let (Num::Int(a), Num::Int(b)) = (a, b) {
        let res = match op {
            BinOp::Add => a.checked_add(b),
            BinOp::Sub => a.checked_sub(b),
            BinOp::Mul => a.checked_mul(b),
            BinOp::Div | BinOp::Rem if b == 0 => return Err("division by zero".to_owned()),
            BinOp::Div => a.checked_div(b),
            _ => a.checked_rem(b),
        };
        return res
            .map(Value::from)
            .ok_or_else(|| format!("integer overflow in {a} {sym} {b}"));
    }
    let (a, b) = (a.float(), b.float());
    let res = match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div | BinOp::Rem if b == 0.0 => return Err("division by zero".to_owned()),
        BinOp::Div => a / b,
        _ => a % b,
    };
    float_value(res)
}

fn equals(l: &Value, r: &Value) -> bool {
    match (Num::of(l), Num::of(r)) {
        (Some(Num::Int(a)), Some(Num::Int(b))) => a == b,
        (Some(a), Some(b)) => a.float() == b.float(),
        _ => l == r,
    }
}

/// Ordering for `< <= > >=`: numbers numerically, strings lexicographically (by code point),
/// booleans `false < true`; null sorts before any other value (as in SpEL).
fn compare(op: BinOp, l: &Value, r: &Value) -> Result<Ordering, String> {
    match (l, r) {
        (Value::Null, Value::Null) => Ok(Ordering::Equal),
        (Value::Null, _) => Ok(Ordering::Less),
        (_, Value::Null) => Ok(Ordering::Greater),
        (Value::String(a), Value::String(b)) => Ok(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Ok(a.cmp(b)),
        _ => match (Num::of(l), Num::of(r)) {
            (Some(Num::Int(a)), Some(Num::Int(b))) => Ok(a.cmp(&b)),
            (Some(a), Some(b)) => a
                .float()
                .partial_cmp(&b.float())
                .ok_or_else(|| "cannot compare non-finite numbers".to_owned()),
            _ => Err(format!(
                "cannot compare {} with {} using '{}'{}",
                type_name(l),
                type_name(r),
                op.symbol(),
                if l.is_string() || r.is_string() {
                    " (header values are strings; compare them with string literals)"
                } else {
                    ""
                }
            )),
        },
    }
}

/// The key form of a value (see [`super::Expression::evaluate_to_key`]).
pub(super) fn to_key(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}
