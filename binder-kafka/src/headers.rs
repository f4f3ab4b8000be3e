//! Message headers ↔ Kafka record headers.

use rdkafka::message::{Header, OwnedHeaders};
use stream_core::message::{HeaderValue, Headers};

/// Record headers for `headers` (text as UTF-8, binary values as they are).
pub fn to_record(headers: &Headers) -> OwnedHeaders {
    let mut out = OwnedHeaders::new_with_capacity(headers.len());
    for (k, v) in headers.iter() {
        out = out.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    out
}

/// Message headers from record headers: UTF-8 values become text, others stay bytes; a
/// header without a value becomes an empty text value. A repeated key keeps its last value.
pub fn from_record<H: rdkafka::message::Headers + ?Sized>(record: Option<&H>) -> Headers {
    let mut out = Headers::new();
    if let Some(h) = record {
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_text_and_bytes() {
        let h = Headers::new()
            .with("content-type", "text/plain")
            .with("bin", vec![0xff_u8, 0x00]);
        let back = from_record(Some(&to_record(&h)));
        assert_eq!(back, h);
    }
}
