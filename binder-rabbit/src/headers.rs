//! Message headers ↔ AMQP properties and header table.
//!
//! `content-type`, `correlation-id` and `id` travel as the AMQP properties `content_type`,
//! `correlation_id` and `message_id` (a value that does not fit a short string goes into the
//! table instead); every other header goes into the AMQP header table: text as a long string,
//! bytes as a byte array. On receipt the properties become headers again, and table values of
//! other AMQP types (numbers, booleans, `x-death` tables) become text.

use bytes::Bytes;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::BasicProperties;
use stream_core::message::{header, HeaderValue, Headers, RawMessage};

use crate::props::DeliveryMode;

/// The AMQP properties for `message`.
pub fn to_properties(message: &RawMessage, mode: DeliveryMode) -> BasicProperties {
    let mut table = FieldTable::default();
    let mut props = BasicProperties::default().with_delivery_mode(match mode {
        DeliveryMode::Persistent => 2,
        DeliveryMode::NonPersistent => 1,
    });
    for (k, v) in message.headers.iter() {
        if k == header::CONTENT_TYPE {
            if let Some(ct) = v.as_str() {
                props = props.with_content_type(ShortString::from(ct));
                continue;
            }
        }
        if k == header::CORRELATION_ID {
            if let Some(c) = v.as_str().filter(|c| c.len() < 256) {
                props = props.with_correlation_id(ShortString::from(c));
                continue;
            }
        }
        if k == header::ID {
            if let Some(c) = v.as_str().filter(|c| c.len() < 256) {
                props = props.with_message_id(ShortString::from(c));
                continue;
            }
        }
        if k.len() > 255 {
            // AMQP table keys are short strings; longer names cannot travel.
            tracing::debug!(header = %k.chars().take(40).collect::<String>(), "header name over 255 bytes dropped");
            continue;
        }
        let value = match v {
            HeaderValue::Text(s) => AMQPValue::LongString(LongString::from(s.as_bytes())),
            HeaderValue::Bytes(b) => AMQPValue::ByteArray(b.as_slice().into()),
        };
        table.insert(ShortString::from(k), value);
    }
    props.with_headers(table)
}

fn value_to_header(v: &AMQPValue) -> HeaderValue {
    match v {
        AMQPValue::LongString(s) => match std::str::from_utf8(s.as_bytes()) {
            Ok(t) => HeaderValue::Text(t.into()),
            Err(_) => HeaderValue::Bytes(s.as_bytes().to_vec()),
        },
        AMQPValue::ShortString(s) => HeaderValue::Text(s.as_str().into()),
        AMQPValue::ByteArray(b) => HeaderValue::Bytes(b.as_slice().to_vec()),
        AMQPValue::Boolean(b) => HeaderValue::Text(b.to_string().into()),
        AMQPValue::ShortShortInt(n) => HeaderValue::Text(n.to_string().into()),
        AMQPValue::ShortShortUInt(n) => HeaderValue::Text(n.to_string().into()),
        AMQPValue::ShortInt(n) => HeaderValue::Text(n.to_string().into()),
        AMQPValue::ShortUInt(n) => HeaderValue::Text(n.to_string().into()),
        AMQPValue::LongInt(n) => HeaderValue::Text(n.to_string().into()),
        AMQPValue::LongUInt(n) => HeaderValue::Text(n.to_string().into()),
        AMQPValue::LongLongInt(n) => HeaderValue::Text(n.to_string().into()),
        AMQPValue::Float(n) => HeaderValue::Text(n.to_string().into()),
        AMQPValue::Double(n) => HeaderValue::Text(n.to_string().into()),
        AMQPValue::Timestamp(n) => HeaderValue::Text(n.to_string().into()),
        other => HeaderValue::Text(format!("{other:?}").into()),
    }
}

/// The message carried by an AMQP delivery.
pub fn from_delivery(data: Vec<u8>, props: &BasicProperties) -> RawMessage {
    let mut headers = Headers::new();
    if let Some(table) = props.headers() {
        for (k, v) in table.inner() {
            headers.insert(k.as_str(), value_to_header(v));
        }
    }
    if let Some(ct) = props.content_type() {
        headers.insert(header::CONTENT_TYPE, ct.as_str());
    }
    headers.adopt_spring_content_type();
    if !headers.contains(header::CORRELATION_ID) {
        if let Some(c) = props.correlation_id() {
            headers.insert(header::CORRELATION_ID, c.as_str());
        }
    }
    if !headers.contains(header::ID) {
        if let Some(id) = props.message_id() {
            headers.insert(header::ID, id.as_str());
        }
    }
    RawMessage::with_headers(Bytes::from(data), headers)
}

/// The delivery count RabbitMQ records on quorum queues (`x-delivery-count`), if any.
pub fn delivery_count(props: &BasicProperties) -> Option<u32> {
    let v = props.headers().as_ref()?.inner().get("x-delivery-count")?;
    match v {
        AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(*n),
        AMQPValue::ShortInt(n) => u32::try_from(*n).ok(),
        AMQPValue::ShortUInt(n) => Some(u32::from(*n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = RawMessage::new(Bytes::from_static(b"x"))
            .header("content-type", "text/plain")
            .header("correlation-id", "c-1")
            .header("tenant", "acme")
            .header("bin", vec![0u8, 255]);
        let p = to_properties(&m, DeliveryMode::Persistent);
        assert_eq!(*p.delivery_mode(), Some(2));
        let back = from_delivery(b"x".to_vec(), &p);
        assert_eq!(back.headers.get_str("content-type"), Some("text/plain"));
        assert_eq!(back.headers.get_str("correlation-id"), Some("c-1"));
        assert_eq!(p.correlation_id().as_ref().map(|c| c.as_str()), Some("c-1"));
        assert!(!p
            .headers()
            .as_ref()
            .unwrap()
            .inner()
            .contains_key("correlation-id"));
        assert_eq!(back.headers.get_str("tenant"), Some("acme"));
        assert_eq!(back.headers.get("bin").unwrap().as_bytes(), &[0u8, 255]);
        assert_eq!(&back.payload[..], b"x");
    }
}
