//! Messages and headers: the unit every binder carries and every handler sees.
//!
//! A [`Message<T>`] is a payload plus [`Headers`]. On the wire (between the runtime and a binder)
//! the payload is raw bytes: [`RawMessage`]. Header names the framework itself reads or writes are
//! constants in [`header`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use arrayvec::ArrayString;
use bytes::Bytes;
use smallvec::SmallVec;

use crate::trace::TraceContext;

/// Well-known header names (docs/architecture.md §3). Binders map these to their broker's native fields where
/// one exists (e.g. `content-type` to the AMQP content-type property) and carry the rest as is.
pub mod header {
    /// Unique id of a message, set by the runtime on every output when absent.
    pub const ID: &str = "id";
    /// MIME type of the payload, e.g. `application/json`.
    pub const CONTENT_TYPE: &str = "content-type";
    /// Creation time, milliseconds since the Unix epoch.
    pub const TIMESTAMP: &str = "timestamp";
    /// Correlates a reply or a derived event with the message it came from.
    pub const CORRELATION_ID: &str = "correlation-id";
    /// W3C trace context (`00-<trace-id>-<span-id>-<flags>`).
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C vendor trace state, carried along untouched.
    pub const TRACESTATE: &str = "tracestate";
    /// The partition key computed by `partition-key-expression`.
    pub const PARTITION_KEY: &str = "partition-key";
    /// The partition index chosen by the producer.
    pub const PARTITION: &str = "partition";
    /// The delivery attempt (1-based) of the current handler invocation.
    pub const DELIVERY_ATTEMPT: &str = "delivery-attempt";
    /// How many delayed redeliveries (`redelivery-delays`) the message has had: written by the
    /// binder that hands it back to the broker, so it survives restarts.
    pub const DELAYED_REDELIVERIES: &str = "x-delayed-redeliveries";
    /// When a delayed redelivery is due, milliseconds since the Unix epoch (where the broker
    /// cannot hold a message back itself, e.g. Kafka retry topics).
    pub const DELAYED_UNTIL: &str = "x-delayed-until";
    /// Dead-letter header: the destination the message was consumed from.
    pub const ORIGINAL_TOPIC: &str = "x-original-topic";
    /// Dead-letter header: the consumer group that gave up on the message.
    pub const ORIGINAL_GROUP: &str = "x-original-group";
    /// Dead-letter header: the last error's message.
    pub const EXCEPTION_MESSAGE: &str = "x-exception-message";
    /// Dead-letter header: the last error's kind (`retryable`, `permanent`, `decode`, `output`).
    pub const EXCEPTION_KIND: &str = "x-exception-kind";
    /// Dead-letter header: how many attempts were made before giving up.
    pub const ORIGINAL_ATTEMPTS: &str = "x-original-attempts";
    /// Dead-letter header (Spring's): the error as a chain of causes, for DLQ tooling.
    pub const EXCEPTION_STACKTRACE: &str = "x-exception-stacktrace";
    /// Dead-letter header (Spring's, on Kafka): the error's type name.
    pub const EXCEPTION_FQCN: &str = "x-exception-fqcn";
    /// Output header: send this message to the named destination instead of the bound one.
    pub const SENDTO_DESTINATION: &str = "spring.cloud.stream.sendto.destination";
    /// Spring's spelling of [`CONTENT_TYPE`] (on Kafka JSON-quoted: `"text/plain"`); read when
    /// `content-type` is absent, never copied to an output.
    pub const SPRING_CONTENT_TYPE: &str = "contentType";
    /// spring-kafka's map from header names to Java types of one record: it describes that
    /// record's headers only, so it is never copied to an output.
    pub const SPRING_JSON_HEADER_TYPES: &str = "spring_json_header_types";
}

/// Milliseconds since the Unix epoch, as the `timestamp` header (and
/// [`header::DELAYED_UNTIL`]) hold them; 0 if the clock is before the epoch.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| {
            d.as_secs()
                .saturating_mul(1000)
                .saturating_add(u64::from(d.subsec_millis()))
        })
        .unwrap_or(0)
}

/// Text of a header name: a [`SmolStr`], so a name of up to 23 bytes (every well-known one) is
/// stored inline without an allocation, and a longer one is shared: cloning never copies it.
pub use smol_str::SmolStr;

/// Bytes of text a [`HeaderText`] holds inline: enough for a UUID (36) and a W3C
/// `traceparent` (55).
pub const HEADER_TEXT_INLINE: usize = 56;

/// Text of a header value: up to [`HEADER_TEXT_INLINE`] bytes are stored inline (ids,
/// `traceparent`, timestamps, content types: no allocation, which matters because messages
/// are made on one thread and dropped on another), longer text is shared (`Arc<str>`: cloning
/// never copies it). Derefs to `str`; make one with `.into()` from a `&str`, a `String` or a
/// [`SmolStr`].
///
/// The values the runtime stamps on every output (`id`, `timestamp`, `traceparent`) are kept
/// as what they are (a UUID, a number, a trace context) and written out as text only when
/// something reads them: an in-process hop never formats them, and the next stage takes the
/// trace context without parsing it.
#[derive(Clone)]
pub struct HeaderText(TextRepr);

#[derive(Clone)]
enum TextRepr {
    Inline(ArrayString<HEADER_TEXT_INLINE>),
    Shared(Arc<str>),
    /// A UUID, written out (hyphenated, lower case) when first read.
    Uuid(uuid::Bytes, OnceLock<ArrayString<36>>),
    /// A number (milliseconds since the epoch), written out when first read.
    Number(u64, OnceLock<ArrayString<20>>),
    /// A W3C trace context, written out when first read.
    Trace(TraceContext, OnceLock<Arc<str>>),
}

impl HeaderText {
    /// `text`, inline when it fits.
    pub fn new(text: &str) -> Self {
        match ArrayString::from(text) {
            Ok(inline) => HeaderText(TextRepr::Inline(inline)),
            Err(_) => HeaderText(TextRepr::Shared(Arc::from(text))),
        }
    }

    /// `uuid` as text (hyphenated, lower case), written out when first read.
    pub fn uuid(uuid: uuid::Uuid) -> Self {
        HeaderText(TextRepr::Uuid(uuid.into_bytes(), OnceLock::new()))
    }

    /// `n` as decimal text, written out when first read.
    pub fn number(n: u64) -> Self {
        HeaderText(TextRepr::Number(n, OnceLock::new()))
    }

    /// `trace` as a `traceparent` value, written out when first read.
    pub fn trace(trace: TraceContext) -> Self {
        HeaderText(TextRepr::Trace(trace, OnceLock::new()))
    }

    /// The trace context this text was made from with [`HeaderText::trace`], if it was.
    pub(crate) fn trace_context(&self) -> Option<TraceContext> {
        match &self.0 {
            TextRepr::Trace(trace, _) => Some(*trace),
            _ => None,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            TextRepr::Inline(s) => s,
            TextRepr::Shared(s) => s,
            TextRepr::Uuid(bytes, text) => text.get_or_init(|| {
                let mut buf = uuid::Uuid::encode_buffer();
                let hyphenated = uuid::Uuid::from_bytes(*bytes)
                    .hyphenated()
                    .encode_lower(&mut buf);
                // 36 characters: always fits.
                ArrayString::from(hyphenated).unwrap_or_default()
            }),
            TextRepr::Number(n, text) => text.get_or_init(|| {
                // At most 20 digits: always fits.
                ArrayString::from(itoa::Buffer::new().format(*n)).unwrap_or_default()
            }),
            TextRepr::Trace(trace, text) => text.get_or_init(|| trace.shared_header()),
        }
    }
}

impl Default for HeaderText {
    fn default() -> Self {
        HeaderText(TextRepr::Inline(ArrayString::new()))
    }
}

impl std::ops::Deref for HeaderText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for HeaderText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for HeaderText {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for HeaderText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for HeaderText {}

impl PartialEq<str> for HeaderText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for HeaderText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for HeaderText {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HeaderText {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for HeaderText {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for HeaderText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for HeaderText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for HeaderText {
    fn from(s: &str) -> Self {
        HeaderText::new(s)
    }
}

impl From<&String> for HeaderText {
    fn from(s: &String) -> Self {
        HeaderText::new(s)
    }
}

impl From<String> for HeaderText {
    fn from(s: String) -> Self {
        if s.len() <= HEADER_TEXT_INLINE {
            HeaderText::new(&s)
        } else {
            HeaderText(TextRepr::Shared(Arc::from(s)))
        }
    }
}

impl From<SmolStr> for HeaderText {
    fn from(s: SmolStr) -> Self {
        HeaderText::new(&s)
    }
}

/// A header value: text, or opaque bytes for brokers that carry binary headers.
///
/// Text is a [`HeaderText`] (short text inline, long text shared, see there); make one with
/// `.into()` from a `&str` or a `String`, and read it with [`HeaderValue::as_str`] or through
/// `Deref<Target = str>`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum HeaderValue {
    /// A UTF-8 value; most headers are this.
    Text(HeaderText),
    /// A binary value (e.g. a Kafka record header that is not UTF-8).
    Bytes(Vec<u8>),
}

impl HeaderValue {
    /// The value as text, if it is text or bytes that are valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::Text(s) => Some(s),
            HeaderValue::Bytes(b) => std::str::from_utf8(b).ok(),
        }
    }

    /// The value as bytes (text is returned as its UTF-8 encoding).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            HeaderValue::Text(s) => s.as_bytes(),
            HeaderValue::Bytes(b) => b,
        }
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderValue::Text(s) => fmt::Debug::fmt(s.as_str(), f),
            HeaderValue::Bytes(b) => write!(f, "<{} bytes>", b.len()),
        }
    }
}

impl From<&str> for HeaderValue {
    fn from(s: &str) -> Self {
        HeaderValue::Text(HeaderText::new(s))
    }
}

impl From<&String> for HeaderValue {
    fn from(s: &String) -> Self {
        HeaderValue::Text(HeaderText::new(s))
    }
}

impl From<String> for HeaderValue {
    fn from(s: String) -> Self {
        HeaderValue::Text(HeaderText::from(s))
    }
}

impl From<SmolStr> for HeaderValue {
    fn from(s: SmolStr) -> Self {
        HeaderValue::Text(HeaderText::from(s))
    }
}

impl From<HeaderText> for HeaderValue {
    fn from(s: HeaderText) -> Self {
        HeaderValue::Text(s)
    }
}

impl From<Vec<u8>> for HeaderValue {
    fn from(b: Vec<u8>) -> Self {
        HeaderValue::Bytes(b)
    }
}

/// One header: name and value.
type Entry = (SmolStr, HeaderValue);

/// Headers stored in the shared block itself (more spill to a second allocation).
const INLINE_HEADERS: usize = 4;

/// Message headers: string keys (case-sensitive, as Spring's `MessageHeaders`), ordered by name
/// for stable output.
///
/// Stored as a small vector sorted by name (messages carry a handful of headers, for which a
/// scan beats a tree), names as [`SmolStr`] and text values as [`HeaderText`], in one shared
/// allocation for up to
/// four headers. Cloning is cheap: the block is shared and copied only when a clone is changed
/// (copy-on-write), because a message's headers are cloned on every hop (redelivery copies,
/// retry attempts, outputs derived from an input) but rarely changed; a copy clones no text
/// either (short text is inline, long text shared).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Arc<SmallVec<[Entry; INLINE_HEADERS]>>,
}

impl Headers {
    /// Empty headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty headers with room for `n` entries before they reallocate.
    pub fn with_capacity(n: usize) -> Self {
        Headers {
            entries: Arc::new(SmallVec::with_capacity(n)),
        }
    }

    /// Headers holding just `name` (a well-known name) with `value`, with room for the
    /// few the runtime adds to an output without reallocating.
    pub(crate) fn single(name: &'static str, value: HeaderValue) -> Self {
        let mut entries = SmallVec::new();
        entries.push((SmolStr::new_static(name), value));
        Headers {
            entries: Arc::new(entries),
        }
    }

    /// Where `name` is. A scan comparing lengths first: with a handful of headers this beats
    /// a binary search's ordered comparisons.
    fn find(&self, name: &str) -> Option<usize> {
        let bytes = name.as_bytes();
        self.entries
            .iter()
            .position(|(k, _)| k.len() == bytes.len() && k.as_bytes() == bytes)
    }

    /// Sets `name` to `value`, returning the previous value.
    pub fn insert(
        &mut self,
        name: impl Into<SmolStr>,
        value: impl Into<HeaderValue>,
    ) -> Option<HeaderValue> {
        let name = name.into();
        let value = value.into();
        // One pass finds the name or where it goes (the entries are sorted by name).
        let entries = Arc::make_mut(&mut self.entries);
        let mut at = entries.len();
        for (i, (k, v)) in entries.iter_mut().enumerate() {
            match k.as_str().cmp(name.as_str()) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Some(std::mem::replace(v, value)),
                std::cmp::Ordering::Greater => {
                    at = i;
                    break;
                }
            }
        }
        entries.insert(at, (name, value));
        None
    }

    /// Sets `name` to `value()` unless `name` is set already (one pass, and `value` is made
    /// only when needed); returns whether it was set.
    pub fn insert_if_absent<V: Into<HeaderValue>>(
        &mut self,
        name: &str,
        value: impl FnOnce() -> V,
    ) -> bool {
        let mut at = self.entries.len();
        for (i, (k, _)) in self.entries.iter().enumerate() {
            match k.as_str().cmp(name) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return false,
                std::cmp::Ordering::Greater => {
                    at = i;
                    break;
                }
            }
        }
        Arc::make_mut(&mut self.entries).insert(at, (SmolStr::new(name), value().into()));
        true
    }

    /// Completes the headers of an outgoing message in one pass (the output hot path): sets
    /// `id` and `timestamp` unless set, sets `traceparent` to what `traceparent` makes of the
    /// current value, removes the send-to header, and returns the `partition-key` value.
    pub(crate) fn stamp_output(
        &mut self,
        id: impl FnOnce() -> HeaderText,
        timestamp: impl FnOnce() -> HeaderText,
        traceparent: impl FnOnce(Option<&HeaderValue>) -> HeaderText,
    ) -> Option<String> {
        let (mut has_id, mut has_timestamp) = (false, false);
        let (mut trace_at, mut send_to_at, mut key_at) = (None, None, None);
        // Where each added name goes: the number of entries whose names sort before it
        // ("id" < "timestamp" < "traceparent"), counted in the same pass instead of a search
        // per insertion. A name starting below 'i' sorts before all three, one starting
        // above 't' after all three: most names are decided by their first byte.
        let (mut before_id, mut before_ts, mut before_tp) = (0usize, 0usize, 0usize);
        for (i, (k, _)) in self.entries.iter().enumerate() {
            let k = k.as_str();
            match k {
                header::ID => has_id = true,
                header::TIMESTAMP => has_timestamp = true,
                header::TRACEPARENT => trace_at = Some(i),
                header::SENDTO_DESTINATION => send_to_at = Some(i),
                header::PARTITION_KEY => key_at = Some(i),
                _ => {}
            }
            match k.as_bytes().first().copied().unwrap_or(0) {
                b if b < b'i' => {
                    before_id += 1;
                    before_ts += 1;
                    before_tp += 1;
                }
                b if b > b't' => {}
                _ => {
                    before_id += usize::from(k < header::ID);
                    before_ts += usize::from(k < header::TIMESTAMP);
                    before_tp += usize::from(k < header::TRACEPARENT);
                }
            }
        }
        let key = key_at.and_then(|i| self.entries[i].1.as_str().map(str::to_owned));
        let trace = traceparent(trace_at.map(|i| &self.entries[i].1));
        let entries = Arc::make_mut(&mut self.entries);
        let mut trace = Some(trace);
        if let Some(i) = trace_at {
            if let Some(t) = trace.take() {
                entries[i].1 = HeaderValue::Text(t);
            }
        }
        // No index is used after this removal; the counts lose the removed name.
        if let Some(i) = send_to_at {
            entries.remove(i);
            let sendto = header::SENDTO_DESTINATION;
            before_id -= usize::from(sendto < header::ID);
            before_ts -= usize::from(sendto < header::TIMESTAMP);
            before_tp -= usize::from(sendto < header::TRACEPARENT);
        }
        // Inserted in name order, so each insertion shifts only the later positions.
        let mut added = 0;
        let mut add = |at: usize, name: &'static str, value: HeaderText| {
            entries.insert(
                at + added,
                (SmolStr::new_static(name), HeaderValue::Text(value)),
            );
            added += 1;
        };
        if !has_id {
            add(before_id, header::ID, id());
        }
        if !has_timestamp {
            add(before_ts, header::TIMESTAMP, timestamp());
        }
        if let Some(t) = trace {
            add(before_tp, header::TRACEPARENT, t);
        }
        key
    }

    /// Builder form of [`Headers::insert`].
    pub fn with(mut self, name: impl Into<SmolStr>, value: impl Into<HeaderValue>) -> Self {
        self.insert(name, value);
        self
    }

    /// The raw value of `name`.
    pub fn get(&self, name: &str) -> Option<&HeaderValue> {
        self.find(name).map(|i| &self.entries[i].1)
    }

    /// The value of `name` as text (see [`HeaderValue::as_str`]).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(HeaderValue::as_str)
    }

    /// The payload's content type: `content-type`, else Spring's `contentType` (unquoted, as
    /// spring-kafka writes it JSON-encoded).
    pub fn content_type(&self) -> Option<&str> {
        self.get_str(header::CONTENT_TYPE).or_else(|| {
            let spring = self.get_str(header::SPRING_CONTENT_TYPE)?;
            Some(spring.trim().trim_matches('"')).filter(|t| !t.is_empty())
        })
    }

    /// Turns Spring's `contentType` (JSON-quoted as spring-kafka writes it, or plain) into
    /// `content-type`, which wins when both are present. Binders call this on what they
    /// receive, so that the runtime sees one name.
    pub fn adopt_spring_content_type(&mut self) {
        let Some(spring) = self.remove(header::SPRING_CONTENT_TYPE) else {
            return;
        };
        let text = spring
            .as_str()
            .map(|s| s.trim().trim_matches('"').to_owned());
        if let (Some(t), false) = (text, self.contains(header::CONTENT_TYPE)) {
            if !t.is_empty() {
                self.insert(header::CONTENT_TYPE, t);
            }
        }
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<HeaderValue> {
        let i = self.find(name)?;
        Some(Arc::make_mut(&mut self.entries).remove(i).1)
    }

    /// Whether `name` is set.
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Iterates over `(name, value)` in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &HeaderValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Copies every header of `other` that is not set here.
    pub fn fill_from(&mut self, other: &Headers) {
        if self.entries.is_empty() {
            self.entries = Arc::clone(&other.entries);
            return;
        }
        if other.iter().all(|(k, _)| self.contains(k)) {
            return;
        }
        self.merge_missing(&other.entries);
    }

    /// Builds the headers of a message derived from `base` (e.g. an output from its input):
    /// `own`, plus every header of `base` that `own` does not set and `keep` accepts. Edits
    /// `own` in place (no new allocation when nobody else holds it) and clones no text.
    pub fn derive(own: Headers, base: &Headers, keep: impl Fn(&str) -> bool) -> Headers {
        let mut out = own;
        // One pass: each base name is tested once, and the block is made unique only when
        // something is added (`make_mut` on a block already unique copies nothing).
        for (k, v) in base.entries.iter().filter(|(k, _)| keep(k)) {
            if let Err(at) = out
                .entries
                .binary_search_by(|(e, _)| e.as_str().cmp(k.as_str()))
            {
                Arc::make_mut(&mut out.entries).insert(at, (k.clone(), v.clone()));
            }
        }
        out
    }

    /// Inserts every entry of `from` whose name is not set here.
    fn merge_missing(&mut self, from: &[Entry]) {
        let entries = Arc::make_mut(&mut self.entries);
        for (k, v) in from {
            if let Err(i) = entries.binary_search_by(|(e, _)| e.as_str().cmp(k.as_str())) {
                entries.insert(i, (k.clone(), v.clone()));
            }
        }
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<SmolStr>, V: Into<HeaderValue>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (k, v) in iter {
            headers.insert(k, v);
        }
        headers
    }
}

/// Iterator over `(name, value)` of [`Headers`], in name order.
pub type HeadersIter<'a> =
    std::iter::Map<std::slice::Iter<'a, Entry>, fn(&'a Entry) -> (&'a str, &'a HeaderValue)>;

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a HeaderValue);
    type IntoIter = HeadersIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        fn pair(e: &Entry) -> (&str, &HeaderValue) {
            (e.0.as_str(), &e.1)
        }
        self.entries
            .iter()
            .map(pair as fn(&'a Entry) -> (&'a str, &'a HeaderValue))
    }
}

/// A payload with its headers.
#[derive(Clone, Debug, PartialEq)]
pub struct Message<T> {
    /// The payload.
    pub payload: T,
    /// The headers.
    pub headers: Headers,
}

impl<T> Message<T> {
    /// A message with no headers.
    pub fn new(payload: T) -> Self {
        Message {
            payload,
            headers: Headers::new(),
        }
    }

    /// A message with the given headers.
    pub fn with_headers(payload: T, headers: Headers) -> Self {
        Message { payload, headers }
    }

    /// Builder: sets one header.
    pub fn header(mut self, name: impl Into<SmolStr>, value: impl Into<HeaderValue>) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Maps the payload, keeping the headers.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Message<U> {
        Message {
            payload: f(self.payload),
            headers: self.headers,
        }
    }
}

/// A message as binders carry it: encoded payload bytes plus headers.
pub type RawMessage = Message<Bytes>;

/// Reading and writing the trace context as a header.
impl TraceContext {
    /// The context of a `traceparent` header value: the one it was made from, when the
    /// runtime made it ([`HeaderText::trace`]: no parsing), else the parsed text.
    pub fn from_header(value: &HeaderValue) -> Option<Self> {
        match value {
            HeaderValue::Text(text) => text.trace_context().or_else(|| Self::parse(text)),
            HeaderValue::Bytes(_) => value.as_str().and_then(Self::parse),
        }
    }
    /// Continues `inbound` (a `traceparent` header value) or starts a new trace.
    pub(crate) fn continue_or_start_from(inbound: Option<&HeaderValue>) -> Self {
        inbound
            .and_then(Self::from_header)
            .map(|c| c.child())
            .unwrap_or_else(Self::new_root)
    }
    /// The context a delivery works in: `inbound` (a `traceparent` header value) as it is, or
    /// a new trace. No span id is drawn for the delivery itself: nothing reads it, and every
    /// output takes a [`child`](Self::child) of this context (same trace and flags, new span
    /// id).
    pub(crate) fn inbound_or_root(inbound: Option<&HeaderValue>) -> Self {
        inbound
            .and_then(Self::from_header)
            .unwrap_or_else(Self::new_root)
    }
    /// The `traceparent` header value as header text, written out only when read (see
    /// [`HeaderText::trace`]).
    pub fn to_header_value(&self) -> HeaderText {
        HeaderText::trace(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(h: &Headers) -> Vec<&str> {
        h.iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn insert_keeps_name_order_and_replaces() {
        let mut h = Headers::new();
        for name in [
            "traceparent",
            "id",
            "x-custom-header-longer-than-23",
            "content-type",
        ] {
            assert_eq!(h.insert(name, "v"), None);
        }
        assert_eq!(
            names(&h),
            [
                "content-type",
                "id",
                "traceparent",
                "x-custom-header-longer-than-23"
            ]
        );
        assert_eq!(h.insert("id", "w"), Some(HeaderValue::from("v")));
        assert_eq!(h.get_str("id"), Some("w"));
        assert_eq!(h.len(), 4);
        assert_eq!(h.remove("id"), Some(HeaderValue::from("w")));
        assert!(!h.contains("id"));
        assert_eq!(h.remove("id"), None);
    }

    #[test]
    fn stamped_values_read_as_their_text() {
        let uuid = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let id = HeaderText::uuid(uuid);
        assert_eq!(id.as_str(), "01234567-89ab-cdef-0123-456789abcdef");
        // A clone made before or after the text is written out reads the same.
        let unread = HeaderText::uuid(uuid);
        assert_eq!(unread.clone(), id.clone());
        assert_eq!(
            HeaderText::number(1_700_000_000_123).as_str(),
            "1700000000123"
        );
        assert_eq!(HeaderText::number(u64::MAX).as_str(), u64::MAX.to_string());

        let trace = TraceContext::new_root();
        let text = HeaderText::trace(trace);
        assert_eq!(text.trace_context(), Some(trace));
        assert_eq!(text.as_str(), trace.to_header());
        assert_eq!(text, HeaderText::new(&trace.to_header()));
        assert_eq!(HeaderText::new(&trace.to_header()).trace_context(), None);
        let value = HeaderValue::Text(text);
        assert_eq!(TraceContext::from_header(&value), Some(trace));
        assert_eq!(
            TraceContext::from_header(&HeaderValue::from(trace.to_header())),
            Some(trace)
        );

        // Stamped values keep a header as small as inline text.
        assert!(std::mem::size_of::<HeaderValue>() <= 64);
    }

    #[test]
    fn clones_are_independent() {
        let a = Headers::new().with("k", "1");
        let mut b = a.clone();
        b.insert("k", "2");
        b.insert("other", vec![0xffu8]);
        assert_eq!(a.get_str("k"), Some("1"));
        assert_eq!(a.len(), 1);
        assert_eq!(b.get_str("k"), Some("2"));
        assert_eq!(b.get_str("other"), None);
        assert_eq!(
            b.get("other").map(HeaderValue::as_bytes),
            Some(&[0xffu8][..])
        );
    }

    #[test]
    fn insert_if_absent_only_fills_gaps() {
        let mut h = Headers::new().with("id", "given");
        assert!(!h.insert_if_absent("id", || -> HeaderValue { unreachable!() }));
        assert!(h.insert_if_absent("timestamp", || "1"));
        assert_eq!(h.get_str("id"), Some("given"));
        assert_eq!(names(&h), ["id", "timestamp"]);
    }

    #[test]
    fn derive_keeps_own_and_adds_accepted_base_headers() {
        let own = Headers::new()
            .with("content-type", "text/plain")
            .with("k", "own");
        let base = Headers::new()
            .with("k", "base")
            .with("id", "drop-me")
            .with("a", "1")
            .with("z", "2");
        let out = Headers::derive(own, &base, |name| name != "id");
        assert_eq!(names(&out), ["a", "content-type", "k", "z"]);
        assert_eq!(out.get_str("k"), Some("own"));
        assert_eq!(base.len(), 4);
    }

    #[test]
    fn stamp_output_completes_in_one_pass() {
        let mut h = Headers::new()
            .with(header::SENDTO_DESTINATION, "elsewhere")
            .with(header::PARTITION_KEY, "k1")
            .with(header::TRACEPARENT, "old")
            .with("custom", "c");
        let key = h.stamp_output(
            || "new-id".into(),
            || "42".into(),
            |current| {
                assert_eq!(current.and_then(HeaderValue::as_str), Some("old"));
                "new-trace".into()
            },
        );
        assert_eq!(key.as_deref(), Some("k1"));
        assert_eq!(
            names(&h),
            ["custom", "id", "partition-key", "timestamp", "traceparent"]
        );
        assert_eq!(h.get_str(header::TRACEPARENT), Some("new-trace"));
        assert_eq!(h.get_str(header::ID), Some("new-id"));

        let mut given = Headers::new()
            .with(header::ID, "mine")
            .with(header::TIMESTAMP, "1");
        let key = given.stamp_output(
            || unreachable!(),
            || unreachable!(),
            |current| {
                assert!(current.is_none());
                "t".into()
            },
        );
        assert_eq!(key, None);
        assert_eq!(given.get_str(header::ID), Some("mine"));
        assert_eq!(names(&given), ["id", "timestamp", "traceparent"]);
    }

    #[test]
    fn stamp_output_places_added_names_in_order() {
        // Names around and between "id", "timestamp" and "traceparent", decided by their
        // first byte or by a full comparison, with and without the send-to header.
        let all = [
            "",
            "a",
            "i",
            "ia",
            "idx",
            "j",
            "s",
            "t",
            "ti",
            "timestamp0",
            "tracestate",
            "trac",
            "tz",
            "u",
            "~",
        ];
        for with_send_to in [false, true] {
            for skip in 0..all.len() {
                let mut h: Headers = all
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .map(|(_, n)| (*n, "v"))
                    .collect();
                if with_send_to {
                    h.insert(header::SENDTO_DESTINATION, "x");
                }
                h.stamp_output(|| "i".into(), || "1".into(), |_| "t".into());
                let got = names(&h);
                let mut want = got.clone();
                want.sort_unstable();
                assert_eq!(got, want);
                assert_eq!(h.len(), all.len() - 1 + 3);
                assert!(!h.contains(header::SENDTO_DESTINATION));
                assert_eq!(h.get_str(header::ID), Some("i"));
                assert_eq!(h.get_str(header::TIMESTAMP), Some("1"));
                assert_eq!(h.get_str(header::TRACEPARENT), Some("t"));
            }
        }
    }

    #[test]
    fn many_headers_spill_and_fill_from() {
        let mut h: Headers = (0..10).map(|i| (format!("h{i}"), i.to_string())).collect();
        assert_eq!(h.len(), 10);
        let other = Headers::new().with("h3", "x").with("new", "y");
        h.fill_from(&other);
        assert_eq!(h.get_str("h3"), Some("3"));
        assert_eq!(h.get_str("new"), Some("y"));
        assert_eq!(h.len(), 11);
    }
}
