//! Tokenizing free text for the full-text indexes (incident titles and descriptions, the
//! known-error database).
//!
//! Latin text splits into lowercase words. Scripts written without spaces (Chinese,
//! Japanese, Korean) index every character and every pair of adjacent characters, so a
//! query of one character or of a word of any length finds its documents. The index gives
//! candidates; callers confirm a match with [`matches`].

use std::collections::BTreeSet;

/// Longest token kept, in bytes; longer words are cut (at a character boundary).
const MAX_TOKEN_BYTES: usize = 48;

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F) // Extensions B..
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_TOKEN_BYTES {
        let mut end = MAX_TOKEN_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Splits `text` into runs: (is_cjk, run).
fn runs(text: &str) -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = Vec::new();
    for c in text.chars() {
        let class = if is_cjk(c) {
            Some(true)
        } else if c.is_alphanumeric() {
            Some(false)
        } else {
            None
        };
        match (class, out.last_mut()) {
            (Some(k), Some((last_k, run))) if *last_k == k && !run.is_empty() => {
                run.extend(c.to_lowercase())
            }
            (Some(k), _) => out.push((k, c.to_lowercase().collect())),
            (None, Some((_, run))) if !run.is_empty() => out.push((false, String::new())),
            (None, _) => {}
        }
    }
    out.retain(|(_, r)| !r.is_empty());
    out
}

/// Every token under which a document containing `text` is indexed.
pub fn index_tokens(text: &str) -> BTreeSet<String> {
    let mut tokens = BTreeSet::new();
    for (cjk, run) in runs(text) {
        if cjk {
            let chars: Vec<char> = run.chars().collect();
            for (i, c) in chars.iter().enumerate() {
                tokens.insert(c.to_string());
                if let Some(next) = chars.get(i + 1) {
                    tokens.insert(format!("{c}{next}"));
                }
            }
        } else {
            tokens.insert(truncate(run));
        }
    }
    tokens
}

/// The tokens a query must all be indexed under: words, and for CJK runs the character
/// pairs (or the single character of a one-character run).
pub fn query_tokens(query: &str) -> BTreeSet<String> {
    let mut tokens = BTreeSet::new();
    for (cjk, run) in runs(query) {
        if cjk {
            let chars: Vec<char> = run.chars().collect();
            if chars.len() == 1 {
                tokens.insert(run);
            } else {
                for pair in chars.windows(2) {
                    tokens.insert(pair.iter().collect());
                }
            }
        } else {
            tokens.insert(truncate(run));
        }
    }
    tokens
}

/// Whether `text` really matches `query`: every query word appears as a word (Latin) or as a
/// substring (CJK), case-insensitively.
pub fn matches(text: &str, query: &str) -> bool {
    let doc = runs(text);
    runs(query).iter().all(|(cjk, q)| {
        if *cjk {
            doc.iter().any(|(k, run)| *k && run.contains(q.as_str()))
        } else {
            let q = truncate(q.clone());
            doc.iter().any(|(k, run)| !*k && truncate(run.clone()) == q)
        }
    })
}

/// `text` as one line of at most `max` characters, for a title that goes into subject
/// lines, SMS and chat headers: control characters and line breaks become spaces, and the
/// ends are trimmed.
pub fn one_line(text: &str, max: usize) -> String {
    text.trim_matches(|c: char| c.is_whitespace() || c.is_control())
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn latin_words_lowercase() {
        assert_eq!(
            index_tokens("Database latency, DB-01 high!"),
            set(&["database", "latency", "db", "01", "high"])
        );
        assert!(matches("Database latency high", "LATENCY database"));
        assert!(!matches("Database latency high", "latenc"));
    }

    #[test]
    fn cjk_unigrams_and_bigrams() {
        let t = index_tokens("系统性能问题");
        for tok in ["系", "系统", "统性", "性能", "能问", "问题", "题"] {
            assert!(t.contains(tok), "{tok}");
        }
        assert_eq!(query_tokens("性能"), set(&["性能"]));
        assert_eq!(query_tokens("慢"), set(&["慢"]));
        assert_eq!(query_tokens("系统性能"), set(&["系统", "统性", "性能"]));
        assert!(query_tokens("系统性能").is_subset(&t));
        assert!(matches("系统性能问题", "性能"));
        assert!(!matches("系统性能问题", "能系"));
        assert!(matches("用户报告系统响应缓慢", "响应 缓慢"));
    }

    #[test]
    fn mixed_scripts_split() {
        assert_eq!(index_tokens("API网关"), set(&["api", "网", "网关", "关"]));
        assert!(index_tokens("").is_empty());
        assert!(query_tokens("  ,. ").is_empty());
    }

    #[test]
    fn long_tokens_are_cut_at_a_char_boundary() {
        let word = "é".repeat(40);
        let tokens = index_tokens(&word);
        let tok = tokens.iter().next().expect("one token");
        assert!(tok.len() <= MAX_TOKEN_BYTES);
        assert!(matches(&word, &word));
    }
}
