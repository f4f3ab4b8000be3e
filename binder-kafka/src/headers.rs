//! Message headers ↔ Kafka record headers, as Spring Cloud Stream's Kafka binder reads and
//! writes them (README, "Wire format").
//!
//! Written: every header as a record header (text as UTF-8, bytes as they are), with the
//! content type under Spring's name `contentType` (plain text, which Spring's converters
//! read). Not written: `id` and `timestamp`, which Spring reserves (its header mapper never
//! maps them, and a record header of either name breaks a Spring consumer's message), and
//! `partition`; the record itself carries the partition and a timestamp (its `CreateTime`,
//! set by the client when it sends: a dead letter gets the time it was dead-lettered, so
//! the topic's retention counts from then).
//!
//! Read: `contentType`, JSON-quoted as spring-kafka writes it or plain, becomes
//! `content-type`; the record's timestamp becomes `timestamp`; the record's coordinates
//! become its `id` (see [`from_record`]).

use rdkafka::message::{Header, Headers as _, OwnedHeaders};
use stream_core::message::{header, HeaderValue, Headers};

/// The headers that do not travel as record headers (the record carries them).
const NOT_WRITTEN: &[&str] = &[header::ID, header::TIMESTAMP, header::PARTITION];

/// Record headers for `headers`.
pub fn to_record(headers: &Headers) -> OwnedHeaders {
    let mut out = OwnedHeaders::new_with_capacity(headers.len());
    for (k, v) in headers.iter() {
        if NOT_WRITTEN.contains(&k) {
            continue;
        }
        let key = match k {
            header::CONTENT_TYPE => header::SPRING_CONTENT_TYPE,
            other => other,
        };
        out = out.insert(Header {
            key,
            value: Some(v.as_bytes()),
        });
    }
    out
}

/// Message headers from a record: its headers (UTF-8 values become text, others stay bytes;
/// a header without a value becomes an empty text value; a repeated key keeps its last
/// value), its timestamp as `timestamp`, and, when it has no `id` header, an `id` made of its
/// coordinates (`<topic>-<partition>-<offset>`): the same on every redelivery of the record.
pub fn from_record<M: rdkafka::Message>(record: &M) -> Headers {
    let mut out = Headers::new();
    if let Some(h) = record.headers() {
        for i in 0..h.count() {
            let Some(header) = h.try_get(i) else { continue };
            let value = match header.value {
                None => HeaderValue::from(""),
                Some(bytes) => match std::str::from_utf8(bytes) {
                    Ok(s) => HeaderValue::Text(s.into()),
                    Err(_) => HeaderValue::Bytes(bytes.to_vec()),
                },
            };
            out.insert(header.key, value);
        }
    }
    out.adopt_spring_content_type();
    if let (Some(ms), false) = (
        record.timestamp().to_millis(),
        out.contains(header::TIMESTAMP),
    ) {
        out.insert(header::TIMESTAMP, ms.to_string());
    }
    if !out.contains(header::ID) {
        let id = format!(
            "{}-{}-{}",
            record.topic(),
            record.partition(),
            record.offset()
        );
        out.insert(header::ID, id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::OwnedMessage;
    use rdkafka::Timestamp;

    fn record(headers: OwnedHeaders, timestamp: Timestamp) -> OwnedMessage {
        OwnedMessage::new(None, None, "t".into(), timestamp, 2, 7, Some(headers))
    }

    #[test]
    fn round_trip_text_and_bytes() {
        let h = Headers::new()
            .with("content-type", "text/plain")
            .with("id", "t-2-7")
            .with("bin", vec![0xff_u8, 0x00]);
        let back = from_record(&record(to_record(&h), Timestamp::NotAvailable));
        assert_eq!(back, h);
    }

    #[test]
    fn writes_springs_names_and_leaves_reserved_headers_to_the_record() {
        let h = Headers::new()
            .with(header::CONTENT_TYPE, "text/plain")
            .with(header::ID, "i")
            .with(header::TIMESTAMP, "1700000000000")
            .with(header::PARTITION, "3")
            .with("x", "y");
        let written = to_record(&h);
        let keys: Vec<&str> = (0..written.count()).map(|i| written.get(i).key).collect();
        assert_eq!(keys, ["contentType", "x"]);
        let back = from_record(&record(written, Timestamp::CreateTime(1_700_000_000_000)));
        assert_eq!(back.get_str(header::CONTENT_TYPE), Some("text/plain"));
        assert_eq!(back.get_str(header::TIMESTAMP), Some("1700000000000"));
        assert_eq!(back.get_str(header::ID), Some("t-2-7"));
    }

    #[test]
    fn reads_springs_json_quoted_content_type() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "contentType",
                value: Some(&b"\"text/plain\""[..]),
            })
            .insert(Header {
                key: header::SPRING_JSON_HEADER_TYPES,
                value: Some(&br#"{"contentType":"java.lang.String"}"#[..]),
            });
        let h = from_record(&record(headers, Timestamp::NotAvailable));
        assert_eq!(h.get_str(header::CONTENT_TYPE), Some("text/plain"));
        assert!(!h.contains(header::SPRING_CONTENT_TYPE));
    }
}
