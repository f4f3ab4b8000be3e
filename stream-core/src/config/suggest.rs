//! "Did you mean ...?" suggestions for misspelt keys and names.

/// The candidate closest to `input` if it is close enough to be a plausible typo, compared
/// case-insensitively and ignoring `-`/`_` (so relaxed spellings are not penalised).
pub fn suggest<'a, I>(input: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = norm(input);
    if wanted.is_empty() {
        return None;
    }
    let mut best: Option<(f64, &str)> = None;
    for cand in candidates {
        let c = norm(cand);
        let jw = strsim::jaro_winkler(&wanted, &c);
        let lev = strsim::levenshtein(&wanted, &c);
        let max_len = wanted.chars().count().max(c.chars().count());
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
    }
}
