//! Accounts and users: levels, statuses and the validated strings users type in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a user-supplied value was refused. Each variant maps to one stable API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Username not 3–50 characters of `[A-Za-z0-9_]`.
    #[error("username must be 3 to 50 characters of letters, digits or underscore")]
    InvalidUsername,
    /// Phone not in E.164 form.
    #[error("phone number must be in international format, e.g. +15551234567")]
    InvalidPhone,
    /// Email not plausible.
    #[error("invalid email address")]
    InvalidEmail,
    /// Memo longer than [`Memo::MAX_CHARS`].
    #[error("memo is longer than {} characters", Memo::MAX_CHARS)]
    MemoTooLong,
    /// Text with control characters (other than newline and tab).
    #[error("text must not contain control characters")]
    ControlCharacters,
    /// Account level outside 0–3.
    #[error("account level must be 0, 1, 2 or 3")]
    InvalidLevel,
    /// Unknown account status.
    #[error("account status must be active, locked or closed")]
    InvalidStatus,
}

/// Account level: what a user has proven about themselves, which sets their limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AccountLevel {
    /// Device account or unverified: smallest limits.
    Zero,
    /// Phone verified.
    One,
    /// Identity verified.
    Two,
    /// Business / highest tier.
    Three,
}

impl AccountLevel {
    /// The level as a number 0–3 (as stored).
    pub fn number(self) -> i64 {
        match self {
            AccountLevel::Zero => 0,
            AccountLevel::One => 1,
            AccountLevel::Two => 2,
            AccountLevel::Three => 3,
        }
    }

    /// The level for a stored number.
    pub fn from_number(n: i64) -> Result<Self, ValidationError> {
        match n {
            0 => Ok(AccountLevel::Zero),
            1 => Ok(AccountLevel::One),
            2 => Ok(AccountLevel::Two),
            3 => Ok(AccountLevel::Three),
            _ => Err(ValidationError::InvalidLevel),
        }
    }
}

/// Whether an account may move money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccountStatus {
    /// Normal.
    Active,
    /// Frozen by an operator: can log in and read, cannot send or receive.
    Locked,
    /// Closed: cannot send or receive.
    Closed,
}

impl AccountStatus {
    /// Stored and displayed form.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Locked => "locked",
            AccountStatus::Closed => "closed",
        }
    }
}

impl FromStr for AccountStatus {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "active" => Ok(AccountStatus::Active),
            "locked" => Ok(AccountStatus::Locked),
            "closed" => Ok(AccountStatus::Closed),
            _ => Err(ValidationError::InvalidStatus),
        }
    }
}

/// A username: 3–50 characters of `[A-Za-z0-9_]`, unique case-insensitively. The case a user
/// chose is kept for display; [`Username::key`] is what uniqueness and look-ups use.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Username(String);

impl Username {
    /// Validates a username.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok_len = (3..=50).contains(&s.len());
        let ok_chars = s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok_len && ok_chars {
            Ok(Username(s.to_string()))
        } else {
            Err(ValidationError::InvalidUsername)
        }
    }
    /// As the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The case-folded form used for uniqueness and look-ups.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form: `+` and 7–15 digits, first digit not 0.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Phone(String);

impl Phone {
    /// Validates a phone number; spaces, dashes and parentheses are ignored.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let compact: String = s.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
        let digits = compact.strip_prefix('+').ok_or(ValidationError::InvalidPhone)?;
        let valid =
            (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if valid {
            Ok(Phone(compact))
        } else {
            Err(ValidationError::InvalidPhone)
        }
    }
    /// The normalized number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, lower-cased. Validation is deliberately plain: one `@`, a non-empty
/// local part, a dotted domain, no spaces, at most 254 characters; the code we send proves it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    /// Validates and lower-cases an email address.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let s = s.trim().to_ascii_lowercase();
        let valid = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && match s.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if valid {
            Ok(Email(s))
        } else {
            Err(ValidationError::InvalidEmail)
        }
    }
    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A payment memo: at most [`Memo::MAX_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Memo(String);

impl Memo {
    /// The longest memo accepted, in characters.
    pub const MAX_CHARS: usize = 1_000;

    /// Validates a memo: at most [`Memo::MAX_CHARS`] characters, no control characters
    /// except newline and tab (a NUL, for one, cannot be stored in PostgreSQL text).
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.chars().count() > Self::MAX_CHARS {
            Err(ValidationError::MemoTooLong)
        } else if crate::text::has_control_chars(s) {
            Err(ValidationError::ControlCharacters)
        } else {
            Ok(Memo(s.to_string()))
        }
    }
    /// The memo text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(51)).is_err());
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse("émile").is_err());
        let u = Username::parse("Alice_99").expect("valid");
        assert_eq!(u.key(), "alice_99");
        assert_eq!(u.as_str(), "Alice_99");
    }

    #[test]
    fn phones_and_emails() {
        assert_eq!(
            Phone::parse("+1 (555) 123-4567").map(|p| p.0),
            Ok("+15551234567".into())
        );
        assert!(Phone::parse("5551234567").is_err());
        assert!(Phone::parse("+0123456789").is_err());
        assert!(Phone::parse("+1234567890123456").is_err());
        assert_eq!(
            Email::parse(" Bob@Example.COM ").map(|e| e.0),
            Ok("bob@example.com".into())
        );
        for bad in ["bob", "bob@", "@x.com", "a@b", "a@@b.com", "a b@c.com", "a@.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memos_and_levels() {
        assert!(Memo::parse(&"é".repeat(1_000)).is_ok());
        assert_eq!(Memo::parse(&"x".repeat(1_001)), Err(ValidationError::MemoTooLong));
        assert_eq!(Memo::parse("bad\u{0}x"), Err(ValidationError::ControlCharacters));
        assert!(Memo::parse("two\nlines\tok").is_ok());
        assert_eq!(AccountLevel::from_number(2), Ok(AccountLevel::Two));
        assert!(AccountLevel::from_number(4).is_err());
        assert_eq!("LOCKED".parse::<AccountStatus>(), Ok(AccountStatus::Locked));
    }
}
