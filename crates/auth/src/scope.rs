//! Scopes carried by sessions and API keys.
//!
//! - `read`: queries (balances, transactions, invoices, settings; nothing changes).
//! - `receive`: create invoices, on-chain addresses and other ways to be paid.
//! - `write`: send payments and change settings.
//!
//! Implication, encoded in [`Scope::implies`] and [`Scopes::allows`]:
//! `write` ⊇ `receive` (anything that may spend may also ask to be paid), and
//! `read` stands alone. In particular `write` does **not** grant `read`: a key
//! that should see balances and history must list `read` explicitly.
//!
//! Text form: lowercase names, comma-separated in canonical order
//! (`"read,receive,write"`). Parsing is case-insensitive, ignores surrounding
//! whitespace and empty items, and accepts duplicates.

use std::fmt;
use std::str::FromStr;

/// One permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Scope {
    /// Queries only.
    Read,
    /// Create invoices and addresses.
    Receive,
    /// Send payments and change settings; implies [`Scope::Receive`].
    Write,
}

/// A scope name that is not `read`, `receive` or `write`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?} (expected read, receive or write)")]
pub struct ParseScopeError(pub String);

impl Scope {
    /// Every scope, in canonical order.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Receive, Scope::Write];

    /// The lowercase name: `"read"`, `"receive"` or `"write"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Receive => "receive",
            Scope::Write => "write",
        }
    }

    /// Whether holding `self` grants `required` (`write` grants `receive`).
    pub const fn implies(self, required: Scope) -> bool {
        matches!(
            (self, required),
            (Scope::Read, Scope::Read)
                | (Scope::Receive, Scope::Receive)
                | (Scope::Write, Scope::Write)
                | (Scope::Write, Scope::Receive)
        )
    }

    const fn bit(self) -> u8 {
        match self {
            Scope::Read => 1,
            Scope::Receive => 2,
            Scope::Write => 4,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ParseScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Scope::ALL
            .into_iter()
            .find(|sc| sc.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| ParseScopeError(truncate(t)))
    }
}

impl TryFrom<String> for Scope {
    type Error = ParseScopeError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Scope> for &'static str {
    fn from(s: Scope) -> Self {
        s.as_str()
    }
}

/// Keep error messages short when the input is junk.
fn truncate(s: &str) -> String {
    const MAX: usize = 32;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// A set of scopes (a 3-bit set). Displays as `"read,write"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scopes(u8);

impl Scopes {
    /// No scope at all.
    pub const fn empty() -> Self {
        Scopes(0)
    }

    /// `read`, `receive` and `write`.
    pub const fn all() -> Self {
        Scopes(Scope::Read.bit() | Scope::Receive.bit() | Scope::Write.bit())
    }

    /// This set plus `scope`.
    pub const fn with(self, scope: Scope) -> Self {
        Scopes(self.0 | scope.bit())
    }

    /// Add `scope`.
    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    /// Remove `scope`.
    pub fn remove(&mut self, scope: Scope) {
        self.0 &= !scope.bit();
    }

    /// Whether `scope` is literally in the set (no implication).
    pub const fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether the set grants `required`, counting implication
    /// (`write` grants `receive`; nothing grants `read` but `read`).
    pub const fn allows(self, required: Scope) -> bool {
        let mut i = 0;
        while i < Scope::ALL.len() {
            let held = Scope::ALL[i];
            if self.contains(held) && held.implies(required) {
                return true;
            }
            i += 1;
        }
        false
    }

    /// Whether every scope in `other` is granted by this set (with implication).
    pub fn allows_all(self, other: Scopes) -> bool {
        other.iter().all(|s| self.allows(s))
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of scopes listed.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The listed scopes, in canonical order.
    pub fn iter(self) -> ScopesIter {
        ScopesIter { set: self, next: 0 }
    }
}

impl From<Scope> for Scopes {
    fn from(s: Scope) -> Self {
        Scopes::empty().with(s)
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(Scopes::empty(), Scopes::with)
    }
}

impl IntoIterator for Scopes {
    type Item = Scope;
    type IntoIter = ScopesIter;

    fn into_iter(self) -> ScopesIter {
        self.iter()
    }
}

/// Iterator over the scopes of a [`Scopes`], in canonical order.
#[derive(Debug, Clone)]
pub struct ScopesIter {
    set: Scopes,
    next: usize,
}

impl Iterator for ScopesIter {
    type Item = Scope;

    fn next(&mut self) -> Option<Scope> {
        while let Some(&s) = Scope::ALL.get(self.next) {
            self.next += 1;
            if self.set.contains(s) {
                return Some(s);
            }
        }
        None
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for Scopes {
    type Err = ParseScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(Scope::from_str)
            .collect()
    }
}

impl TryFrom<String> for Scopes {
    type Error = ParseScopeError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Scopes> for String {
    fn from(s: Scopes) -> Self {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Scope::*;

    #[test]
    fn scope_names_roundtrip_case_insensitively() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>(), Ok(s));
            assert_eq!(s.as_str().to_uppercase().parse::<Scope>(), Ok(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(" Write ".parse::<Scope>(), Ok(Write));
        assert_eq!("admin".parse::<Scope>(), Err(ParseScopeError("admin".into())));
        assert!("".parse::<Scope>().is_err());
        let long = "x".repeat(1000);
        let err = long.parse::<Scope>().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.len() < 100, "{err}");
    }

    #[test]
    fn scopes_display_and_parse() {
        let s: Scopes = [Write, Read].into_iter().collect();
        assert_eq!(s.to_string(), "read,write");
        assert_eq!("write,read".parse::<Scopes>(), Ok(s));
        assert_eq!(" READ , write,, read ".parse::<Scopes>(), Ok(s));
        assert_eq!(Scopes::all().to_string(), "read,receive,write");
        assert_eq!("read,receive,write".parse::<Scopes>(), Ok(Scopes::all()));
        assert_eq!("".parse::<Scopes>(), Ok(Scopes::empty()));
        assert_eq!(Scopes::empty().to_string(), "");
        assert_eq!("read,pay".parse::<Scopes>(), Err(ParseScopeError("pay".into())));
    }

    #[test]
    fn scopes_set_operations() {
        let mut s = Scopes::empty();
        assert!(s.is_empty());
        s.insert(Receive);
        s.insert(Receive);
        assert_eq!(s.len(), 1);
        assert!(s.contains(Receive));
        assert!(!s.contains(Read));
        s.insert(Read);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![Read, Receive]);
        assert_eq!(s.into_iter().count(), 2);
        s.remove(Read);
        assert_eq!(s, Scopes::from(Receive));
        assert_eq!(Scopes::all().len(), 3);
        assert_eq!(Scopes::all().iter().collect::<Vec<_>>(), Scope::ALL.to_vec());
    }

    #[test]
    fn implication_rules() {
        // write ⊇ receive; read separate.
        let w = Scopes::from(Write);
        assert!(w.allows(Write));
        assert!(w.allows(Receive));
        assert!(!w.allows(Read));
        assert!(!w.contains(Receive));

        let r = Scopes::from(Receive);
        assert!(r.allows(Receive));
        assert!(!r.allows(Write));
        assert!(!r.allows(Read));

        let rd = Scopes::from(Read);
        assert!(rd.allows(Read));
        assert!(!rd.allows(Receive));
        assert!(!rd.allows(Write));

        assert!(!Scopes::empty().allows(Read));
        for s in Scope::ALL {
            assert!(Scopes::all().allows(s));
            assert!(s.implies(s));
        }
        assert!(Write.implies(Receive));
        assert!(!Receive.implies(Write));
        assert!(!Write.implies(Read));
        assert!(!Read.implies(Write));

        assert!(w.allows_all("receive,write".parse().unwrap_or_default()));
        assert!(!w.allows_all(Scopes::all()));
    }

    #[test]
    fn serde_uses_text_forms() {
        use serde::de::value::{Error, StrDeserializer};
        use serde::de::IntoDeserializer;
        use serde::Deserialize;

        let de: StrDeserializer<'_, Error> = "Read".into_deserializer();
        assert_eq!(Scope::deserialize(de), Ok(Read));
        let de: StrDeserializer<'_, Error> = "write , read".into_deserializer();
        assert_eq!(Scopes::deserialize(de), Ok(Scopes::from(Read).with(Write)));
        let de: StrDeserializer<'_, Error> = "root".into_deserializer();
        assert!(Scopes::deserialize(de).is_err());
        assert_eq!(String::from(Scopes::all()), "read,receive,write");
        assert_eq!(<&'static str>::from(Receive), "receive");
    }
}
