//! Headers ↔ message attributes (docs/architecture.md §7).
//!
//! SQS carries at most 10 message attributes (and SNS raw delivery forwards at most 10). The
//! headers other consumers read go first as native attributes (content type, under Spring's
//! name `contentType`, id, trace
//! context, correlation id, the dead-letter error headers), then the user's own headers, and
//! the runtime's bookkeeping (partition key, partition, timestamp, delivery attempt, stack
//! trace) last; when everything does not fit (or a header's name or value is not a valid
//! attribute), the rest is folded into one JSON attribute [`FOLDED`]. Decoding restores every
//! header exactly, including binary values.
//!
//! Bodies: SQS bodies are text restricted to XML characters and at least one character long.
//! A payload that is not such text is sent base64-encoded, marked by the attribute [`BODY`].

use std::collections::HashMap;

use base64::Engine as _;
use bytes::Bytes;
use stream_core::message::{header, HeaderValue, Headers, RawMessage};

/// The attribute holding the folded headers (a JSON object).
pub const FOLDED: &str = "cs-headers";
/// The attribute saying how the body is encoded (`base64` or `empty`).
pub const BODY: &str = "cs-body";
/// Most attributes per message (SQS, and SNS raw delivery to SQS).
pub const MAX_ATTRIBUTES: usize = 10;

/// Headers that become native attributes first, in this order (what a foreign consumer reads).
const PRIORITY: &[&str] = &[
    header::CONTENT_TYPE,
    header::ID,
    header::TRACEPARENT,
    header::TRACESTATE,
    header::CORRELATION_ID,
    header::EXCEPTION_MESSAGE,
    header::EXCEPTION_KIND,
    header::ORIGINAL_TOPIC,
    header::ORIGINAL_GROUP,
    header::ORIGINAL_ATTEMPTS,
];

/// The runtime's own bookkeeping headers: native attributes only after the user's headers
/// (they are the first folded), so the 10 attribute slots go to what other consumers read.
const LAST: &[&str] = &[
    header::PARTITION_KEY,
    header::PARTITION,
    header::TIMESTAMP,
    header::DELIVERY_ATTEMPT,
    header::EXCEPTION_STACKTRACE,
];

/// One message attribute value, independent of the SQS/SNS SDK types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attr {
    /// `DataType=String`.
    Text(String),
    /// `DataType=Binary`.
    Binary(Vec<u8>),
}

impl Attr {
    fn size(&self) -> usize {
        match self {
            Attr::Text(s) => s.len() + "String".len(),
            Attr::Binary(b) => b.len() + "Binary".len(),
        }
    }
}

/// A message in wire form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The body text.
    pub body: String,
    /// The attributes (at most [`MAX_ATTRIBUTES`]).
    pub attributes: Vec<(String, Attr)>,
}

impl Encoded {
    /// The size SQS counts against its 256 KiB limit (body + attribute names, types, values).
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(n, a)| n.len() + a.size())
                .sum::<usize>()
    }
}

/// Whether `name` is a valid SQS/SNS attribute name (and not one of ours).
pub fn valid_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
        && name != FOLDED
        && name != BODY
}

/// Whether `s` only holds characters SQS accepts in bodies and attribute values.
pub fn valid_text(s: &str) -> bool {
    s.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    })
}

fn native(value: &HeaderValue, binary: bool) -> Option<Attr> {
    match value {
        HeaderValue::Text(s) if !s.is_empty() && valid_text(s) => Some(Attr::Text(s.to_string())),
        HeaderValue::Bytes(b) if binary && !b.is_empty() => Some(Attr::Binary(b.clone())),
        _ => None,
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Encodes a message; `extra` attributes (e.g. the partition for subscription filters) are
/// added as native attributes before any header. With `binary` false, binary header values
/// are folded (base64) instead of becoming `Binary` attributes: used for SNS publishes, because
/// moto silently drops SNS→SQS raw deliveries that carry a `Binary` attribute.
pub fn encode(message: &RawMessage, extra: &[(String, String)], binary: bool) -> Encoded {
    let mut attributes: Vec<(String, Attr)> = extra
        .iter()
        .map(|(n, v)| (n.clone(), Attr::Text(v.clone())))
        .collect();
    let body = match std::str::from_utf8(&message.payload) {
        Ok("") => {
            attributes.push((BODY.to_owned(), Attr::Text("empty".into())));
            "-".to_owned()
        }
        Ok(s) if valid_text(s) => s.to_owned(),
        _ => {
            attributes.push((BODY.to_owned(), Attr::Text("base64".into())));
            b64().encode(&message.payload)
        }
    };
    // Headers in priority order, then the user's by name, then the runtime's bookkeeping.
    let mut ordered: Vec<(&str, &HeaderValue)> = Vec::with_capacity(message.headers.len());
    let not_extra = |n: &str| !extra.iter().any(|(e, _)| e == n);
    let known = |list: &'static [&'static str]| {
        list.iter()
            .filter(|n| not_extra(n))
            .filter_map(|n| message.headers.get(n).map(|v| (*n, v)))
            .collect::<Vec<(&str, &HeaderValue)>>()
    };
    ordered.extend(known(PRIORITY));
    let user = message.headers.iter();
    ordered
        .extend(user.filter(|(n, _)| !PRIORITY.contains(n) && !LAST.contains(n) && not_extra(n)));
    ordered.extend(known(LAST));
    let room = MAX_ATTRIBUTES.saturating_sub(attributes.len());
    let all_native = ordered.len() <= room
        && ordered
            .iter()
            .all(|(n, v)| valid_name(n) && native(v, binary).is_some());
    let native_budget = if all_native {
        room
    } else {
        room.saturating_sub(1)
    };
    let mut folded = serde_json::Map::new();
    for (name, value) in ordered {
        let attr = if valid_name(name) {
            native(value, binary)
        } else {
            None
        };
        match attr {
            Some(a) if attributes.len() - (MAX_ATTRIBUTES - room) < native_budget => {
                attributes.push((attribute_name(name).to_owned(), a));
            }
            _ => {
                let v = match value {
                    HeaderValue::Text(s) => serde_json::Value::String(s.to_string()),
                    HeaderValue::Bytes(b) => serde_json::json!({ "base64": b64().encode(b) }),
                };
                folded.insert(name.to_owned(), v);
            }
        }
    }
    if !folded.is_empty() {
        attributes.push((
            FOLDED.to_owned(),
            Attr::Text(serde_json::Value::Object(folded).to_string()),
        ));
    }
    Encoded { body, attributes }
}

/// The attribute name of header `name`: the content type under Spring's name `contentType`
/// (what Spring Cloud AWS maps to a message's content type), others as they are.
fn attribute_name(name: &str) -> &str {
    match name {
        header::CONTENT_TYPE => header::SPRING_CONTENT_TYPE,
        other => other,
    }
}

/// Why a received message could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The folded-headers attribute is not the JSON object this binder writes.
    #[error("attribute `{FOLDED}` is not a JSON object of headers: {0}")]
    Folded(String),
    /// The body is marked base64 but is not.
    #[error("body marked base64 does not decode: {0}")]
    Body(String),
}

/// Decodes a received body and its attributes (by name) back into a message. Attributes not
/// written by this binder (e.g. by another producer) become headers as well: text for
/// `String`/`Number`, bytes for `Binary`.
pub fn decode(body: &str, attributes: &HashMap<String, Attr>) -> Result<RawMessage, DecodeError> {
    let mut headers = Headers::new();
    for (name, attr) in attributes {
        if name == FOLDED || name == BODY {
            continue;
        }
        match attr {
            Attr::Text(s) => headers.insert(name.clone(), s.as_str()),
            Attr::Binary(b) => headers.insert(name.clone(), b.clone()),
        };
    }
    if let Some(Attr::Text(json)) = attributes.get(FOLDED) {
        let parsed: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(json).map_err(|e| DecodeError::Folded(e.to_string()))?;
        for (name, v) in parsed {
            match v {
                serde_json::Value::String(s) => {
                    headers.insert(name, s);
                }
                serde_json::Value::Object(o) => {
                    let bytes = o
                        .get("base64")
                        .and_then(|b| b.as_str())
                        .and_then(|b| b64().decode(b).ok())
                        .ok_or_else(|| DecodeError::Folded(format!("bad binary header {name}")))?;
                    headers.insert(name, bytes);
                }
                other => return Err(DecodeError::Folded(format!("{name}: {other}"))),
            }
        }
    }
    headers.adopt_spring_content_type();
    let payload = match attributes.get(BODY) {
        Some(Attr::Text(t)) if t == "base64" => Bytes::from(
            b64()
                .decode(body.trim())
                .map_err(|e| DecodeError::Body(e.to_string()))?,
        ),
        Some(Attr::Text(t)) if t == "empty" => Bytes::new(),
        _ => Bytes::from(body.to_owned()),
    };
    Ok(RawMessage::with_headers(payload, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime's bookkeeping headers are folded before the user's: a foreign consumer
    /// reads seven user headers as attributes beside content type, id and trace context.
    #[test]
    fn user_headers_get_the_attribute_slots_before_bookkeeping() {
        let mut m = RawMessage::new(Bytes::from_static(b"{}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ID, "i")
            .header(
                header::TRACEPARENT,
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .header(header::TIMESTAMP, "1")
            .header(header::PARTITION_KEY, "k");
        for i in 0..7 {
            m = m.header(format!("user-{i}"), "v");
        }
        let e = encode(&m, &[], true);
        let names: Vec<&str> = e.attributes.iter().map(|(n, _)| n.as_str()).collect();
        for i in 0..6 {
            assert!(names.contains(&format!("user-{i}").as_str()), "{names:?}");
        }
        assert!(!names.contains(&header::TIMESTAMP), "{names:?}");
        let back = decode(&e.body, &e.attributes.into_iter().collect()).unwrap();
        assert_eq!(
            back.headers.get_str(header::PARTITION_KEY),
            Some("k"),
            "round trip"
        );
        assert_eq!(back.headers.get_str("user-6"), Some("v"), "round trip");
    }

    fn round_trip(m: &RawMessage, extra: &[(String, String)]) -> RawMessage {
        let e = encode(m, extra, true);
        assert!(e.attributes.len() <= MAX_ATTRIBUTES, "{:?}", e.attributes);
        let map: HashMap<String, Attr> = e.attributes.into_iter().collect();
        decode(&e.body, &map).unwrap()
    }

    #[test]
    fn few_headers_are_native() {
        let m = RawMessage::new(Bytes::from_static(b"hi"))
            .header("content-type", "text/plain")
            .header("tenant", "acme");
        let e = encode(&m, &[], true);
        assert_eq!(e.body, "hi");
        assert!(e.attributes.iter().all(|(n, _)| n != FOLDED));
        assert_eq!(round_trip(&m, &[]), m);
    }

    #[test]
    fn many_headers_fold_and_round_trip_exactly() {
        let mut m = RawMessage::new(Bytes::from_static(b"{}"))
            .header("content-type", "application/json")
            .header("id", "1")
            .header("traceparent", "00-aa-bb-01")
            .header("bad name:with colon", "x")
            .header("empty", "")
            .header("bin", vec![0u8, 1, 2, 255])
            .header("AWS.reserved", "y");
        for i in 0..15 {
            m = m.header(format!("h{i}"), format!("v{i}"));
        }
        let e = encode(&m, &[], true);
        assert_eq!(e.attributes.len(), MAX_ATTRIBUTES);
        assert!(e.attributes.iter().any(|(n, _)| n == "contentType"));
        assert!(e.attributes.iter().any(|(n, _)| n == "traceparent"));
        assert_eq!(round_trip(&m, &[]), m);
    }

    #[test]
    fn binary_headers_fold_when_asked() {
        let m = RawMessage::new(Bytes::from_static(b"x")).header("bin", vec![1u8, 2]);
        let e = encode(&m, &[], false);
        assert!(e.attributes.iter().all(|(_, a)| matches!(a, Attr::Text(_))));
        let map: HashMap<String, Attr> = e.attributes.into_iter().collect();
        assert_eq!(decode(&e.body, &map).unwrap(), m);
    }

    #[test]
    fn binary_and_empty_bodies() {
        let m = RawMessage::new(Bytes::from_static(&[0, 159, 146, 150]));
        assert_eq!(round_trip(&m, &[]), m);
        let m = RawMessage::new(Bytes::new());
        assert_eq!(round_trip(&m, &[]), m);
    }

    #[test]
    fn extra_attributes_come_back_as_headers() {
        let m = RawMessage::new(Bytes::from_static(b"x")).header("partition", "1");
        let back = round_trip(&m, &[("partition".into(), "1".into())]);
        assert_eq!(back.headers.get_str("partition"), Some("1"));
    }

    #[test]
    fn bad_folded_json_is_an_error_not_a_panic() {
        let mut map = HashMap::new();
        map.insert(FOLDED.to_owned(), Attr::Text("[1".into()));
        assert!(decode("x", &map).is_err());
    }
}
