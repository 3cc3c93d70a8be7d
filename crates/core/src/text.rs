//! Free text users type — names, titles, labels, comments — checked by one rule everywhere,
//! before it reaches the store: no control characters (a NUL, for one, cannot be stored in
//! PostgreSQL text, and the others are never meant), newline and tab only where text may run
//! over several lines, and a maximum length in characters. Also how text is put into a URI's
//! query ([`percent_encode`]).

/// Why a piece of free text was refused. Every variant is the API's `INVALID_INPUT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty (or only spaces) where a value is required.
    #[error("must not be empty")]
    Empty,
    /// Longer than allowed.
    #[error("must be at most {max_chars} characters")]
    TooLong {
        /// The most characters allowed.
        max_chars: usize,
    },
    /// A control character (NUL included) where none is allowed.
    #[error("must not contain control characters")]
    ControlCharacters,
}

/// True when `s` has a control character other than newline and tab.
pub fn has_control_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// A one-line label (a connection's or a key's name, a link's title): trimmed, 1 to
/// `max_chars` characters, no control characters at all. Returns the trimmed text.
pub fn label(s: &str, max_chars: usize) -> Result<&str, TextError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(TextError::Empty);
    }
    if s.chars().any(char::is_control) {
        return Err(TextError::ControlCharacters);
    }
    if s.chars().count() > max_chars {
        return Err(TextError::TooLong { max_chars });
    }
    Ok(s)
}

/// Free text that may run over several lines (a comment, a memo): at most `max_chars`
/// characters, no control characters but newline and tab; empty is allowed. Returned as is.
pub fn multiline(s: &str, max_chars: usize) -> Result<&str, TextError> {
    if has_control_chars(s) {
        return Err(TextError::ControlCharacters);
    }
    if s.chars().count() > max_chars {
        return Err(TextError::TooLong { max_chars });
    }
    Ok(s)
}

/// `%`-encodes every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`): a
/// value (a URL, a relay address) to put inside a URI's query.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_one_trimmed_printable_line() {
        assert_eq!(label("  zapper ", 10), Ok("zapper"));
        assert_eq!(label("   ", 10), Err(TextError::Empty));
        assert_eq!(label("a\u{0}b", 10), Err(TextError::ControlCharacters));
        assert_eq!(label("two\nlines", 10), Err(TextError::ControlCharacters));
        assert_eq!(label("\u{7f}", 10), Err(TextError::ControlCharacters));
        assert_eq!(label(&"é".repeat(10), 10).map(str::len), Ok(20));
        assert_eq!(label(&"é".repeat(11), 10), Err(TextError::TooLong { max_chars: 10 }));
    }

    #[test]
    fn multiline_text_keeps_newlines_and_tabs_only() {
        assert_eq!(multiline("", 5), Ok(""));
        assert_eq!(multiline("a\nb\tc", 5), Ok("a\nb\tc"));
        assert_eq!(multiline("a\u{0}", 5), Err(TextError::ControlCharacters));
        assert_eq!(multiline("a\rb", 5), Err(TextError::ControlCharacters));
        assert_eq!(multiline("abcdef", 5), Err(TextError::TooLong { max_chars: 5 }));
    }

    #[test]
    fn percent_encode_keeps_only_unreserved_characters() {
        assert_eq!(
            percent_encode("https://a.b/c?d=e f~_-.é"),
            "https%3A%2F%2Fa.b%2Fc%3Fd%3De%20f~_-.%C3%A9"
        );
    }
}
