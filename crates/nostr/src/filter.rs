//! NIP-01 filters: checked against the relay's limits, turned into store queries for stored
//! events, and matched against live ones the same way (NIP-50 search included).

use flash_store::{EventQuery, NewEvent};
use nostr::filter::MatchEventOptions;
use nostr::{Event, Filter, Kind};

use crate::protocol::Reject;

/// The kind of a NIP-59 gift wrap: served only to the pubkey it is addressed to.
pub const GIFT_WRAP: u16 = 1059;

/// Whether an event of this kind has text content worth searching (NIP-50). Encrypted and
/// wallet-connect kinds do not.
pub fn searchable(kind: u16) -> bool {
    !matches!(kind, 4 | 13 | 1059 | 1060 | 22242 | 23194..=23197 | 24133)
}

/// Whether `c` separates search words: white space, and NUL (which the store's search text
/// holds as a space).
fn separates(c: char) -> bool {
    c.is_whitespace() || c == '\0'
}

/// Most words of a NIP-50 query that count; the rest are ignored (each word is one condition of
/// the store's query, and SQLite refuses expressions much deeper than a few hundred).
pub const SEARCH_WORDS_MAX: usize = 32;

/// The words of a NIP-50 query, lower-cased, the first [`SEARCH_WORDS_MAX`] of them; `key:value`
/// extensions are not words.
pub fn words(search: &str) -> Vec<String> {
    search
        .split(separates)
        .filter(|w| !w.is_empty() && !w.contains(':'))
        .take(SEARCH_WORDS_MAX)
        .map(str::to_lowercase)
        .collect()
}

/// Refuses filters that ask for more values than the relay looks up at once.
pub fn check(filter: &Filter, max_values: usize) -> Result<(), Reject> {
    let values = filter.ids.as_ref().map_or(0, |s| s.len())
        + filter.authors.as_ref().map_or(0, |s| s.len())
        + filter.kinds.as_ref().map_or(0, |s| s.len())
        + filter.generic_tags.values().map(|v| v.len()).sum::<usize>();
    if values > max_values {
        return Err(Reject::invalid(format!(
            "a filter may list at most {max_values} ids, authors, kinds and tag values"
        )));
    }
    if filter.generic_tags.values().flatten().any(|v| v.contains('\0')) {
        return Err(Reject::invalid("tag values must not contain NUL (U+0000)"));
    }
    Ok(())
}

/// The store query for one filter; `limit` is capped at `max_limit`.
pub fn query(filter: &Filter, max_limit: u64) -> EventQuery {
    EventQuery {
        ids: filter.ids.iter().flatten().map(|id| id.to_hex()).collect(),
        authors: filter.authors.iter().flatten().map(|pk| pk.to_hex()).collect(),
        kinds: filter.kinds.iter().flatten().map(|k| i64::from(k.as_u16())).collect(),
        tags: filter
            .generic_tags
            .iter()
            .map(|(name, values)| (name.to_string(), values.iter().cloned().collect()))
            .collect(),
        since: filter.since.map(|t| clamp_secs(t.as_secs())),
        until: filter.until.map(|t| clamp_secs(t.as_secs())),
        words: filter.search.as_deref().map(words).unwrap_or_default(),
        limit: filter.limit.map_or(max_limit, |l| (l as u64).min(max_limit)),
    }
}

/// Seconds as the store keeps them.
pub fn clamp_secs(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Whether a live event matches a filter, by the same rules as a store query.
pub fn matches(filter: &Filter, event: &Event) -> bool {
    let opts = MatchEventOptions::new().nip50(false);
    if !filter.match_event(event, opts) {
        return false;
    }
    match filter.search.as_deref().map(words) {
        None => true,
        Some(words) => {
            let content = event.content.to_lowercase();
            searchable(event.kind.as_u16()) && words.iter().all(|w| content.contains(w.as_str()))
        }
    }
}

/// Whether any filter asks for gift wraps by kind.
pub fn asks_for_gift_wraps(filters: &[Filter]) -> bool {
    filters
        .iter()
        .any(|f| f.kinds.as_ref().is_some_and(|k| k.contains(&Kind::GiftWrap)))
}

/// An event as the store keeps it: its replaceable address, expiry, search text, indexed
/// tags and, for a deletion request, what it deletes.
pub fn stored(event: &Event, raw: String) -> NewEvent {
    let kind = event.kind.as_u16();
    let d_tag = if event.kind.is_replaceable() {
        Some(String::new())
    } else if event.kind.is_addressable() {
        Some(event.tags.identifier().unwrap_or_default().to_string())
    } else {
        None
    };
    let mut tags: Vec<(String, String)> = event
        .tags
        .iter()
        .filter_map(|t| match t.as_slice() {
            [name, value, ..] if name.len() == 1 && name.bytes().all(|b| b.is_ascii_alphabetic()) => {
                Some((name.clone(), value.clone()))
            }
            _ => None,
        })
        .collect();
    tags.sort();
    tags.dedup();
    NewEvent {
        id: event.id.to_hex(),
        pubkey: event.pubkey.to_hex(),
        kind: i64::from(kind),
        created_at: clamp_secs(event.created_at.as_secs()),
        d_tag,
        expires_at: event.tags.expiration().map(|t| clamp_secs(t.as_secs())),
        // NUL cannot be kept in PostgreSQL text; it separates words like a space.
        search: searchable(kind).then(|| event.content.to_lowercase().replace('\0', " ")),
        tags,
        raw,
        deletes: if event.kind == Kind::EventDeletion {
            deletion_targets(event)
        } else {
            vec![]
        },
    }
}

/// What a deletion request deletes: `e` tags, and `a` tags naming the author's own events.
fn deletion_targets(event: &Event) -> Vec<flash_store::DeleteTarget> {
    let author = event.pubkey.to_hex();
    event
        .tags
        .iter()
        .filter_map(|t| match t.as_slice() {
            [name, id, ..] if name == "e" && id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(flash_store::DeleteTarget::Event(id.to_lowercase()))
            }
            [name, address, ..] if name == "a" => {
                let mut parts = address.splitn(3, ':');
                let (kind, pubkey, d) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
                (pubkey == author).then_some(())?;
                Some(flash_store::DeleteTarget::Address {
                    kind: kind.parse().ok()?,
                    d_tag: d.to_string(),
                })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_skip_extensions() {
        assert_eq!(words("Bitcoin  bank include:spam"), vec!["bitcoin", "bank"]);
    }

    #[test]
    fn search_words_are_capped() {
        let many: Vec<String> = (0..1_000).map(|i| format!("w{i}")).collect();
        let words = words(&many.join(" "));
        assert_eq!(words.len(), SEARCH_WORDS_MAX);
        assert_eq!(words.last().map(String::as_str), Some("w31"));
    }

    #[test]
    fn limits_are_capped() {
        let f = Filter::new().limit(5_000);
        assert_eq!(query(&f, 1_000).limit, 1_000);
        assert_eq!(query(&Filter::new(), 500).limit, 500);
        assert_eq!(query(&Filter::new().limit(3), 500).limit, 3);
    }
}
