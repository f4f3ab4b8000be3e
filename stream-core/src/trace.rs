//! The W3C trace context (`traceparent` version 00) and the fast random ids messages and spans
//! carry. It knows nothing of messages: reading it from and writing it to headers is
//! `message`'s job ([`crate::message::HeaderText::trace`], `TraceContext::from_header`).

use std::cell::RefCell;

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

thread_local! {
    /// Span and trace ids need to be unique, not unpredictable: a fast per-thread generator,
    /// seeded from the OS, instead of the cryptographic thread RNG (ids are made per message).
    static ID_RNG: RefCell<SmallRng> = RefCell::new(SmallRng::from_os_rng());
}

/// A new random (version 4) UUID from the fast per-thread generator: message ids must be
/// unique, not unpredictable.
pub(crate) fn fast_uuid() -> uuid::Uuid {
    let [a, b] = random_words::<2>();
    uuid::Builder::from_random_bytes(u128_bytes(a, b)).into_uuid()
}

/// `N` random words, not all zero (an all-zero id is invalid in W3C), drawn whole from the
/// generator (no byte-filling loop).
fn random_words<const N: usize>() -> [u64; N] {
    ID_RNG.with(|rng| {
        let mut rng = rng.borrow_mut();
        loop {
            let words = [(); N].map(|()| rng.next_u64());
            if words.iter().any(|w| *w != 0) {
                return words;
            }
        }
    })
}

/// The 16 bytes of two words.
fn u128_bytes(a: u64, b: u64) -> [u8; 16] {
    (u128::from(a) << 64 | u128::from(b)).to_le_bytes()
}

/// A random span id (8 bytes, not all zero).
fn random_span_id() -> [u8; 8] {
    let [w] = random_words::<1>();
    w.to_le_bytes()
}

/// A W3C trace context (`traceparent` version 00).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id (16 bytes, not all zero).
    pub trace_id: [u8; 16],
    /// The parent span id (8 bytes, not all zero).
    pub span_id: [u8; 8],
    /// Trace flags (bit 0 = sampled).
    pub flags: u8,
}

/// The value of each byte as a lower-case hex digit, or `INVALID` (W3C trace context forbids
/// upper case).
const HEX_VALUE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};
const INVALID: u8 = 0xff;

/// Every byte of a `u64` set to `b`.
const fn lanes(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

/// Decodes the eight lower-case hex digits of `src` from `at` into four bytes, all eight
/// digits at once in a `u64` (SWAR: no table, no loop). Any byte that is not `0-9a-f` sets a
/// high bit in `bad`.
#[inline(always)]
fn hex_chunk(src: &[u8; 55], at: usize, bad: &mut u64) -> [u8; 4] {
    let mut word = [0u8; 8];
    word.copy_from_slice(&src[at..at + 8]);
    let v = u64::from_le_bytes(word);
    const HIGH: u64 = lanes(0x80);
    // For bytes below 0x80, `v + (0x80 - lo)` sets a byte's high bit exactly when that byte
    // is >= lo, and never carries into the next byte.
    let ge = |lo: u8| (v & !HIGH).wrapping_add(lanes(0x80 - lo)) & HIGH;
    let digit = ge(b'0') & !ge(b'9' + 1);
    let letter = ge(b'a') & !ge(b'f' + 1);
    *bad |= (v & HIGH) | ((digit | letter) ^ HIGH);
    // '0'..'9' -> 0..9 (low nibble), 'a'..'f' -> 1..6 + 9.
    let nibbles = (v & lanes(0x0f)) + (letter >> 7) * 9;
    // Byte 2i is the high nibble, byte 2i+1 the low one: one value per 16-bit lane.
    let pairs = ((nibbles & 0x000f_000f_000f_000f) << 4) | ((nibbles >> 8) & 0x000f_000f_000f_000f);
    let packed = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    let packed = (packed | (packed >> 16)) & 0xffff_ffff;
    let [b0, b1, b2, b3, ..] = packed.to_le_bytes();
    [b0, b1, b2, b3]
}

/// Decodes the `2 * N` (a multiple of 16) lower-case hex digits of `src` from `at`.
#[inline(always)]
fn hex_at<const N: usize>(src: &[u8; 55], at: usize, bad: &mut u64) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, chunk) in out.chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&hex_chunk(src, at + 8 * i, bad));
    }
    out
}

/// The two lower-case hex digits of every byte value.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [DIGITS[i >> 4], DIGITS[i & 0x0f]];
        i += 1;
    }
    t
};

/// Writes `bytes` as lower-case hex into `out` (two digits a byte; `out` is exactly as long).
fn write_hex(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

impl TraceContext {
    /// Parses a `traceparent` header; `None` when malformed (then a new trace is started).
    pub fn parse(traceparent: &str) -> Option<Self> {
        // Version 00 has a fixed layout: `00-<32 hex>-<16 hex>-<2 hex>`, 55 characters.
        let b = traceparent.as_bytes();
        let b = if b.len() == 55 {
            b
        } else {
            traceparent
                .trim_matches(|c: char| c.is_ascii_whitespace())
                .as_bytes()
        };
        let b: &[u8; 55] = b.try_into().ok()?;
        if b[0] != b'0' || b[1] != b'0' || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let mut bad = 0u64;
        let trace_id = hex_at::<16>(b, 3, &mut bad);
        let span_id = hex_at::<8>(b, 36, &mut bad);
        let (hi, lo) = (HEX_VALUE[usize::from(b[53])], HEX_VALUE[usize::from(b[54])]);
        if bad != 0 || (hi | lo) & 0xf0 != 0 {
            return None;
        }
        let flags = (hi << 4) | lo;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// A new sampled trace with a random id.
    pub fn new_root() -> Self {
        let [a, b] = random_words::<2>();
        TraceContext {
            trace_id: u128_bytes(a, b),
            span_id: random_span_id(),
            flags: 1,
        }
    }

    /// The same trace with a new span id (the hop this process adds).
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: random_span_id(),
            ..*self
        }
    }

    /// Continues `inbound` (a `traceparent` value) or starts a new trace.
    pub fn continue_or_start(inbound: Option<&str>) -> Self {
        inbound
            .and_then(Self::parse)
            .map(|c| c.child())
            .unwrap_or_else(Self::new_root)
    }

    /// The trace id as 32 hex digits.
    pub fn trace_id_hex(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// The `traceparent` header value.
    pub fn to_header(&self) -> String {
        self.with_header(str::to_owned)
    }

    /// The `traceparent` header value as shared text.
    pub(crate) fn shared_header(&self) -> std::sync::Arc<str> {
        self.with_header(|text| std::sync::Arc::from(text))
    }

    /// Formats the `traceparent` value on the stack and hands it to `f` (hot path: every
    /// output; no formatting machinery).
    fn with_header<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let mut buf = [0u8; 55];
        buf[..3].copy_from_slice(b"00-");
        write_hex(&mut buf[3..35], &self.trace_id);
        buf[35] = b'-';
        write_hex(&mut buf[36..52], &self.span_id);
        buf[52] = b'-';
        write_hex(&mut buf[53..55], &[self.flags]);
        // Only ASCII digits, letters and dashes were written.
        f(std::str::from_utf8(&buf).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_continues_a_trace() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::parse(tp).unwrap();
        assert_eq!(ctx.to_header(), tp);
        let next = TraceContext::continue_or_start(Some(tp));
        assert_eq!(next.trace_id, ctx.trace_id);
        assert_ne!(next.span_id, ctx.span_id);
    }

    #[test]
    fn header_forms_agree_and_ids_are_v4() {
        let ctx = TraceContext::new_root();
        assert_eq!(ctx.to_header_value().as_str(), ctx.to_header());
        assert_eq!(TraceContext::parse(&ctx.to_header()), Some(ctx));
        let padded = format!("  {}\t", ctx.to_header());
        assert_eq!(TraceContext::parse(&padded), Some(ctx));
        let (a, b) = (fast_uuid(), fast_uuid());
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
    }

    #[test]
    fn every_digit_decodes_and_every_non_digit_is_rejected() {
        for _ in 0..200 {
            let ctx = TraceContext::new_root().child();
            let tp = ctx.to_header();
            assert_eq!(TraceContext::parse(&tp), Some(ctx));
            for i in (3..55).filter(|i| *i != 35 && *i != 52) {
                for bad in [b'g', b'A', b'F', b'/', b':', b'`', b'-', b' ', b'\x7f', 0] {
                    let mut b = tp.clone().into_bytes();
                    b[i] = bad;
                    let s = String::from_utf8(b).unwrap();
                    assert!(TraceContext::parse(&s).is_none(), "{s}");
                }
            }
        }
        let all = "00-0123456789abcdef0123456789abcdef-fedcba9876543210-ff";
        let ctx = TraceContext::parse(all).unwrap();
        assert_eq!(ctx.to_header(), all);
        assert_eq!(ctx.flags, 0xff);
        let non_ascii = all.replacen("01", "\u{e9}", 1);
        assert_eq!(non_ascii.len(), 55);
        assert!(TraceContext::parse(&non_ascii).is_none());
        assert_eq!(
            ctx.span_id,
            [0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10]
        );
    }

    #[test]
    fn malformed_starts_a_new_trace() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-zz-yy-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad}");
        }
        let fresh = TraceContext::continue_or_start(Some("garbage"));
        assert_eq!(TraceContext::parse(&fresh.to_header()), Some(fresh));
    }
}
