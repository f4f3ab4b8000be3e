//! "Did you mean ...?" suggestions for misspelt keys and names.

/// Names longer than this (characters) get no suggestion: no real key is that long, and the
/// edit distance costs the product of the two lengths.
const MAX_NAME: usize = 100;
/// The most candidates compared for one name. Schemas have a few dozen keys; only hostile
/// input (20,000 binders) has more, and comparing each unknown key with all of them would be
/// quadratic.
const MAX_CANDIDATES: usize = 256;

/// The hint an issue ends with, ``" (did you mean `x`?)"``, or nothing without a suggestion:
/// the one spelling of it.
pub fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// The candidate closest to `input` if it is close enough to be a plausible typo, compared
/// case-insensitively and ignoring `-`/`_` (so relaxed spellings are not penalised).
pub fn suggest<'a, I>(input: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let norm = super::tree::relaxed;
    let wanted = norm(input);
    let wanted_len = wanted.chars().count();
    if wanted.is_empty() || wanted_len > MAX_NAME {
        return None;
    }
    let mut best: Option<(f64, &str)> = None;
    for cand in candidates.into_iter().take(MAX_CANDIDATES) {
        if cand.len() > MAX_NAME * 4 {
            continue;
        }
        let c = norm(cand);
        let c_len = c.chars().count();
        let max_len = wanted_len.max(c_len);
        if !could_be_close(wanted_len, c_len) {
            continue;
        }
        let jw = strsim::jaro_winkler(&wanted, &c);
        let lev = strsim::levenshtein(&wanted, &c);
        // Accept a small edit distance relative to the length, or a very high Jaro-Winkler
        // similarity for longer names.
        let close = lev <= 2.max(max_len / 4) && lev < max_len || jw >= 0.93;
        if !close {
            continue;
        }
        let score = jw - lev as f64 * 0.01;
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, cand));
        }
    }
    best.map(|(_, c)| c.to_owned())
}

/// Whether two names of these lengths can pass the closeness test below, so that the cost of
/// the string metrics is paid only for plausible candidates. The edit distance is at least
/// the length difference; Jaro is at most `(2 + short/long) / 3` and the Winkler prefix bonus
/// adds at most 0.4 of the rest, so `jw >= 0.93` needs `short/long >= 0.65`.
fn could_be_close(a: usize, b: usize) -> bool {
    let (short, long) = (a.min(b), a.max(b));
    long - short <= 2.max(long / 4) || short * 100 >= long * 65
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = [
            "max-attempts",
            "concurrency",
            "partitioned",
            "back-off-multiplier",
        ];
        assert_eq!(
            suggest("max-atempts", keys).as_deref(),
            Some("max-attempts")
        );
        assert_eq!(suggest("maxAtempts", keys).as_deref(), Some("max-attempts"));
        assert_eq!(suggest("concurency", keys).as_deref(), Some("concurrency"));
        assert_eq!(suggest("zzz", keys), None);
        assert_eq!(
            suggest("bindngs", ["bindings", "binders"]).as_deref(),
            Some("bindings")
        );
        assert_eq!(
            suggest("rabit", ["memory", "kafka", "rabbit", "sqs"]).as_deref(),
            Some("rabbit")
        );
        assert_eq!(suggest(&"x".repeat(MAX_NAME + 1), ["x"]), None);
    }
}
