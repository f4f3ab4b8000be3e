//! Content types and codecs: turning payload bytes into handler types and back.
//!
//! Built in: `application/json` (serde_json, the default), `text/plain` (UTF-8 text; a handler
//! type that is not a string is parsed from the text as JSON) and `application/octet-stream`
//! (raw bytes; use `Vec<u8>` or `bytes::Bytes`-like types that deserialize from bytes or a
//! sequence of `u8`). More content types (protobuf, avro, …) are added with [`Codec`] and
//! [`CodecRegistry::register`].
//!
//! A payload that cannot be decoded is a [`ConvertError`]; the runtime treats it as a
//! non-retryable error and dead-letters the message (docs/architecture.md §3).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::Serialize;

/// `application/json`.
pub const APPLICATION_JSON: &str = "application/json";
/// `text/plain`.
pub const TEXT_PLAIN: &str = "text/plain";
/// `application/octet-stream`.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// A payload could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// No codec is registered for the content type.
    #[error("no codec for content type `{0}`")]
    UnsupportedContentType(String),
    /// The bytes do not decode into the handler's type.
    #[error("cannot decode {content_type} payload: {message}")]
    Decode {
        /// The content type used.
        content_type: String,
        /// The decoder's message.
        message: String,
    },
    /// A handler argument other than the payload (an extractor) could not be taken.
    #[error("cannot take {what}: {message}")]
    Extract {
        /// What was to be taken (e.g. ``header `tenant-id` ``).
        what: String,
        /// Why not.
        message: String,
    },
    /// The value does not encode.
    #[error("cannot encode payload as {content_type}: {message}")]
    Encode {
        /// The content type used.
        content_type: String,
        /// The encoder's message.
        message: String,
    },
}

/// A user-supplied codec for one content type, working through `erased_serde` so any serde type
/// can be decoded and encoded without the codec knowing it.
pub trait Codec: Send + Sync {
    /// The MIME type this codec handles, without parameters (e.g. `application/x-protobuf`).
    fn content_type(&self) -> &str;

    /// Decodes `bytes` by driving `visitor` (call `erased_serde::deserialize` on a
    /// deserializer over the bytes).
    fn decode(
        &self,
        bytes: &[u8],
        sink: &mut dyn FnMut(
            &mut dyn erased_serde::Deserializer<'_>,
        ) -> Result<(), erased_serde::Error>,
    ) -> Result<(), String>;

    /// Encodes `value`.
    fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, String>;
}

/// The codecs an application knows, keyed by content type. Cheap to clone.
#[derive(Clone, Default)]
pub struct CodecRegistry {
    custom: Arc<HashMap<String, Arc<dyn Codec>>>,
}

impl fmt::Debug for CodecRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.custom.keys()).finish()
    }
}

thread_local! {
    /// Per-thread buffer JSON is written into before it is copied out at its exact size.
    static JSON_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Largest scratch buffer kept between calls (a larger one is let go after use).
const JSON_SCRATCH_KEEP: usize = 64 * 1024;

/// Serializes `value` as JSON into a reused per-thread buffer and returns an exactly sized
/// copy: one allocation whatever the size (no growing), and a vector whose length is its
/// capacity, which [`bytes::Bytes`] takes over without allocating a shared header. That
/// matters because payloads are made on one thread and freed on another, where every
/// allocation costs a malloc arena lock.
fn json_to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    JSON_SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let written = serde_json::to_writer(&mut *buf, value);
            let out = written.map(|()| buf.to_vec());
            if buf.capacity() > JSON_SCRATCH_KEEP {
                *buf = Vec::new();
            }
            out
        }
        // Re-entered from inside a `Serialize` impl: no scratch to spare.
        Err(_) => serde_json::to_vec(value),
    })
}

/// The MIME type without parameters, lower-cased: `Application/JSON; charset=utf-8` →
/// `application/json`.
pub fn mime_essence(content_type: &str) -> Cow<'_, str> {
    if content_type == APPLICATION_JSON {
        // The default and by far the most common: nothing to strip or fold.
        return Cow::Borrowed(content_type);
    }
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or(content_type)
        .trim();
    // Content types are almost always lower case already: borrow then, allocate otherwise.
    if essence.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(essence.to_ascii_lowercase())
    } else {
        Cow::Borrowed(essence)
    }
}

fn is_json(essence: &str) -> bool {
    essence == APPLICATION_JSON || essence.ends_with("+json")
}

impl CodecRegistry {
    /// The built-in codecs only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a codec for its content type.
    pub fn register(&mut self, codec: Arc<dyn Codec>) {
        let key = mime_essence(codec.content_type());
        Arc::make_mut(&mut self.custom).insert(key.into_owned(), codec);
    }

    /// Whether `content_type` can be decoded and encoded.
    pub fn supports(&self, content_type: &str) -> bool {
        let essence = mime_essence(content_type);
        is_json(&essence)
            || essence == TEXT_PLAIN
            || essence == OCTET_STREAM
            || self.custom.contains_key(essence.as_ref())
    }

    /// Decodes `bytes` of `content_type` into `T`.
    pub fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        content_type: &str,
    ) -> Result<T, ConvertError> {
        let essence = mime_essence(content_type);
        let decode_err = |message: String| ConvertError::Decode {
            content_type: essence.to_string(),
            message,
        };
        if is_json(&essence) {
            return serde_json::from_slice(bytes).map_err(|e| decode_err(e.to_string()));
        }
        if essence == TEXT_PLAIN {
            let text = std::str::from_utf8(bytes).map_err(|e| decode_err(e.to_string()))?;
            let as_string: Result<T, serde::de::value::Error> =
                T::deserialize(text.into_deserializer());
            return match as_string {
                Ok(v) => Ok(v),
                // Not a string-like type: Spring converts text to the target type, we parse it.
                Err(_) => serde_json::from_str(text).map_err(|e| decode_err(e.to_string())),
            };
        }
        if essence == OCTET_STREAM {
            return T::deserialize(BytesDeserializer(bytes))
                .map_err(|e: serde::de::value::Error| decode_err(e.to_string()));
        }
        let codec = self
            .custom
            .get(essence.as_ref())
            .ok_or_else(|| ConvertError::UnsupportedContentType(essence.to_string()))?;
        let mut out: Option<T> = None;
        codec
            .decode(bytes, &mut |de| {
                out = Some(erased_serde::deserialize(de)?);
                Ok(())
            })
            .map_err(decode_err)?;
        out.ok_or_else(|| ConvertError::Decode {
            content_type: essence.into_owned(),
            message: "codec produced no value".to_owned(),
        })
    }

    /// Encodes `value` as `content_type`.
    pub fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        content_type: &str,
    ) -> Result<Vec<u8>, ConvertError> {
        let essence = mime_essence(content_type);
        let encode_err = |message: String| ConvertError::Encode {
            content_type: essence.to_string(),
            message,
        };
        if is_json(&essence) {
            return json_to_vec(value).map_err(|e| encode_err(e.to_string()));
        }
        if essence == TEXT_PLAIN {
            // Strings are written as they are; anything else as its JSON text.
            let json = serde_json::to_value(value).map_err(|e| encode_err(e.to_string()))?;
            return Ok(match json {
                serde_json::Value::String(s) => s.into_bytes(),
                other => other.to_string().into_bytes(),
            });
        }
        if essence == OCTET_STREAM {
            let json = serde_json::to_value(value).map_err(|e| encode_err(e.to_string()))?;
            return match json {
                serde_json::Value::Array(items) => items
                    .into_iter()
                    .map(|v| {
                        v.as_u64()
                            .and_then(|n| u8::try_from(n).ok())
                            .ok_or_else(|| encode_err("not a byte sequence".to_owned()))
                    })
                    .collect(),
                serde_json::Value::String(s) => Ok(s.into_bytes()),
                _ => Err(encode_err("not a byte sequence".to_owned())),
            };
        }
        let codec = self
            .custom
            .get(essence.as_ref())
            .ok_or_else(|| ConvertError::UnsupportedContentType(essence.to_string()))?;
        codec.encode(&value).map_err(encode_err)
    }
}

/// Deserializes raw bytes: as bytes for types that take them, as a sequence of `u8` otherwise
/// (so `Vec<u8>` works), as a string when the bytes are UTF-8 and a string is asked for.
struct BytesDeserializer<'a>(&'a [u8]);

impl<'de> serde::Deserializer<'de> for BytesDeserializer<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_bytes(self.0)
    }

    fn deserialize_seq<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_seq(serde::de::value::SeqDeserializer::new(
            self.0.iter().copied(),
        ))
    }

    fn deserialize_str<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match std::str::from_utf8(self.0) {
            Ok(s) => visitor.visit_str(s),
            Err(_) => visitor.visit_bytes(self.0),
        }
    }

    fn deserialize_string<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf option unit
        unit_struct tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Order {
        id: u64,
    }

    #[test]
    fn json_round_trip_and_decode_error() {
        let reg = CodecRegistry::new();
        let bytes = reg.encode(&Order { id: 7 }, "application/json").unwrap();
        assert_eq!(
            reg.decode::<Order>(&bytes, "application/json; charset=utf-8")
                .unwrap(),
            Order { id: 7 }
        );
        let err = reg
            .decode::<Order>(b"{not json", APPLICATION_JSON)
            .unwrap_err();
        assert!(matches!(err, ConvertError::Decode { .. }), "{err}");
    }

    #[test]
    fn text_plain_strings_and_parsed_values() {
        let reg = CodecRegistry::new();
        assert_eq!(reg.decode::<String>(b"hello", TEXT_PLAIN).unwrap(), "hello");
        assert_eq!(reg.decode::<u32>(b"42", TEXT_PLAIN).unwrap(), 42);
        assert_eq!(reg.encode("hi", TEXT_PLAIN).unwrap(), b"hi");
    }

    #[test]
    fn octet_stream_bytes() {
        let reg = CodecRegistry::new();
        assert_eq!(
            reg.decode::<Vec<u8>>(&[0, 255, 3], OCTET_STREAM).unwrap(),
            vec![0, 255, 3]
        );
        assert_eq!(reg.encode(&vec![1u8, 2], OCTET_STREAM).unwrap(), vec![1, 2]);
    }

    #[test]
    fn unknown_content_type_is_an_error() {
        let reg = CodecRegistry::new();
        assert!(!reg.supports("application/x-protobuf"));
        assert!(matches!(
            reg.decode::<String>(b"", "application/x-protobuf"),
            Err(ConvertError::UnsupportedContentType(_))
        ));
    }

    struct UpperJson;
    impl Codec for UpperJson {
        fn content_type(&self) -> &str {
            "application/x-upper"
        }
        fn decode(
            &self,
            bytes: &[u8],
            sink: &mut dyn FnMut(
                &mut dyn erased_serde::Deserializer<'_>,
            ) -> Result<(), erased_serde::Error>,
        ) -> Result<(), String> {
            let lower = String::from_utf8_lossy(bytes).to_lowercase();
            let mut de = serde_json::Deserializer::from_str(&lower);
            sink(&mut <dyn erased_serde::Deserializer>::erase(&mut de)).map_err(|e| e.to_string())
        }
        fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, String> {
            let v = serde_json::to_string(value).map_err(|e| e.to_string())?;
            Ok(v.to_uppercase().into_bytes())
        }
    }

    #[test]
    fn custom_codec() {
        let mut reg = CodecRegistry::new();
        reg.register(Arc::new(UpperJson));
        let bytes = reg.encode(&"abc", "application/x-upper").unwrap();
        assert_eq!(bytes, b"\"ABC\"");
        assert_eq!(
            reg.decode::<String>(&bytes, "application/x-upper").unwrap(),
            "abc"
        );
    }
}
