//! NIP-01 messages on the wire: what a client sends, parsed strictly, and what the relay
//! answers, written as text. Refusals carry the standard machine-readable prefixes.

use std::fmt;

use nostr::{Event, Filter};
use serde_json::Value;

/// The standard prefix of a refusal (NIP-01), which clients act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// The message or event is malformed.
    Invalid,
    /// The sender is not allowed, whatever it sends.
    Blocked,
    /// The sender sends too much.
    RateLimited,
    /// Authenticate (NIP-42) first.
    AuthRequired,
    /// Not allowed by the relay's policy.
    Restricted,
    /// Not enough proof of work (NIP-13).
    Pow,
    /// The relay already has it.
    Duplicate,
    /// The relay failed.
    Error,
}

impl Prefix {
    /// The prefix as written, without the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Prefix::Invalid => "invalid",
            Prefix::Blocked => "blocked",
            Prefix::RateLimited => "rate-limited",
            Prefix::AuthRequired => "auth-required",
            Prefix::Restricted => "restricted",
            Prefix::Pow => "pow",
            Prefix::Duplicate => "duplicate",
            Prefix::Error => "error",
        }
    }
}

/// A refusal: `prefix: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// The machine-readable part.
    pub prefix: Prefix,
    /// What a person reads.
    pub message: String,
}

impl Reject {
    /// A refusal with this prefix.
    pub fn new(prefix: Prefix, message: impl Into<String>) -> Reject {
        Reject {
            prefix,
            message: message.into(),
        }
    }
    /// `invalid: …`.
    pub fn invalid(message: impl Into<String>) -> Reject {
        Reject::new(Prefix::Invalid, message)
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.prefix.as_str(), self.message)
    }
}

/// A message from a client.
#[derive(Debug)]
pub enum ClientMessage {
    /// `["EVENT", event]`: publish.
    Event(Box<Event>),
    /// `["REQ", id, filter…]`: stored events, then live ones.
    Req {
        /// Subscription id.
        id: String,
        /// At least one filter.
        filters: Vec<Filter>,
    },
    /// `["COUNT", id, filter…]` (NIP-45).
    Count {
        /// Query id.
        id: String,
        /// At least one filter.
        filters: Vec<Filter>,
    },
    /// `["CLOSE", id]`.
    Close(String),
    /// `["AUTH", event]` (NIP-42).
    Auth(Box<Event>),
}

/// Why a message could not be read, and whom to tell.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// Answer with a NOTICE: nothing identifies what it was about.
    Notice(Reject),
    /// Answer an EVENT with `OK id false`.
    Event {
        /// The id the event claimed.
        id: String,
        /// Why.
        reject: Reject,
    },
    /// Answer a REQ or COUNT with `CLOSED id`.
    Subscription {
        /// The subscription id.
        id: String,
        /// Why.
        reject: Reject,
    },
}

/// Parses one client message. Subscription ids longer than `max_subid` are refused here.
pub fn parse(text: &str, max_subid: usize) -> Result<ClientMessage, Unreadable> {
    let notice = |m: String| Unreadable::Notice(Reject::invalid(m));
    let value: Value = serde_json::from_str(text).map_err(|e| notice(format!("not JSON: {e}")))?;
    let Value::Array(mut parts) = value else {
        return Err(notice("a message is a JSON array".into()));
    };
    if parts.is_empty() {
        return Err(notice("empty message".into()));
    }
    let verb = match parts.remove(0) {
        Value::String(v) => v,
        _ => return Err(notice("the first element must be a string".into())),
    };
    match verb.as_str() {
        "EVENT" | "AUTH" => {
            let [raw] = <[Value; 1]>::try_from(parts).map_err(|_| notice(format!("{verb} takes one event")))?;
            let id = raw.get("id").and_then(Value::as_str).map(str::to_string);
            let event = serde_json::from_value::<Event>(raw).map_err(|e| {
                let reject = Reject::invalid(format!("malformed event: {e}"));
                match &id {
                    Some(id) => Unreadable::Event { id: id.clone(), reject },
                    None => Unreadable::Notice(reject),
                }
            })?;
            Ok(if verb == "EVENT" {
                ClientMessage::Event(Box::new(event))
            } else {
                ClientMessage::Auth(Box::new(event))
            })
        }
        "REQ" | "COUNT" => {
            let id = subscription_id(&mut parts, max_subid)?;
            let closed = |m: String| Unreadable::Subscription {
                id: id.clone(),
                reject: Reject::invalid(m),
            };
            if parts.is_empty() {
                return Err(closed(format!("{verb} needs at least one filter")));
            }
            let filters = parts
                .into_iter()
                .map(|f| {
                    if !f.is_object() {
                        return Err(closed("a filter is a JSON object".into()));
                    }
                    serde_json::from_value::<Filter>(f).map_err(|e| closed(format!("bad filter: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if verb == "REQ" {
                ClientMessage::Req { id, filters }
            } else {
                ClientMessage::Count { id, filters }
            })
        }
        "CLOSE" => {
            let id = subscription_id(&mut parts, max_subid)?;
            Ok(ClientMessage::Close(id))
        }
        other => Err(notice(format!("unknown message type {other:?}"))),
    }
}

/// Takes the subscription id off the front of a message.
fn subscription_id(parts: &mut Vec<Value>, max: usize) -> Result<String, Unreadable> {
    if parts.is_empty() {
        return Err(Unreadable::Notice(Reject::invalid("missing subscription id")));
    }
    match parts.remove(0) {
        Value::String(id) if id.is_empty() => Err(Unreadable::Notice(Reject::invalid("empty subscription id"))),
        Value::String(id) if id.chars().count() > max => Err(Unreadable::Notice(Reject::invalid(format!(
            "subscription ids are at most {max} characters"
        )))),
        Value::String(id) => Ok(id),
        _ => Err(Unreadable::Notice(Reject::invalid(
            "the subscription id must be a string",
        ))),
    }
}

/// A JSON string literal.
fn quoted(s: &str) -> String {
    Value::from(s).to_string()
}

/// `["EVENT", sub, event]`, around an event already serialized.
pub fn event(sub: &str, raw: &str) -> String {
    format!("[\"EVENT\",{},{raw}]", quoted(sub))
}

/// `["OK", id, accepted, message]`.
pub fn ok(id: &str, result: Result<(), &Reject>) -> String {
    match result {
        Ok(()) => format!("[\"OK\",{},true,\"\"]", quoted(id)),
        Err(r) => format!("[\"OK\",{},false,{}]", quoted(id), quoted(&r.to_string())),
    }
}

/// `["OK", id, true, message]`: accepted, with a note (a duplicate).
pub fn ok_with(id: &str, message: &str) -> String {
    format!("[\"OK\",{},true,{}]", quoted(id), quoted(message))
}

/// `["EOSE", sub]`.
pub fn eose(sub: &str) -> String {
    format!("[\"EOSE\",{}]", quoted(sub))
}

/// `["CLOSED", sub, message]`.
pub fn closed(sub: &str, reject: &Reject) -> String {
    format!("[\"CLOSED\",{},{}]", quoted(sub), quoted(&reject.to_string()))
}

/// `["NOTICE", message]`.
pub fn notice(reject: &Reject) -> String {
    format!("[\"NOTICE\",{}]", quoted(&reject.to_string()))
}

/// `["AUTH", challenge]`.
pub fn auth(challenge: &str) -> String {
    format!("[\"AUTH\",{}]", quoted(challenge))
}

/// `["COUNT", sub, {"count": n}]`.
pub fn count(sub: &str, n: u64) -> String {
    format!("[\"COUNT\",{},{{\"count\":{n}}}]", quoted(sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_messages_are_told_apart() {
        assert!(matches!(parse("nope", 64), Err(Unreadable::Notice(r)) if r.prefix == Prefix::Invalid));
        assert!(matches!(parse("{}", 64), Err(Unreadable::Notice(_))));
        assert!(matches!(parse("[]", 64), Err(Unreadable::Notice(_))));
        assert!(matches!(parse("[\"HELLO\"]", 64), Err(Unreadable::Notice(_))));
        assert!(matches!(parse("[\"REQ\",\"s\"]", 64), Err(Unreadable::Subscription { id, .. }) if id == "s"));
        assert!(matches!(
            parse("[\"REQ\",\"s\",5]", 64),
            Err(Unreadable::Subscription { .. })
        ));
        assert!(matches!(
            parse("[\"REQ\",\"s\",{\"ids\":[\"zz\"]}]", 64),
            Err(Unreadable::Subscription { .. })
        ));
        assert!(matches!(
            parse(&format!("[\"REQ\",\"{}\",{{}}]", "x".repeat(65)), 64),
            Err(Unreadable::Notice(_))
        ));
        assert!(matches!(
            parse("[\"EVENT\",{\"id\":\"ab\",\"kind\":1}]", 64),
            Err(Unreadable::Event { id, .. }) if id == "ab"
        ));
        assert!(matches!(parse("[\"CLOSE\",\"s\"]", 64), Ok(ClientMessage::Close(id)) if id == "s"));
        assert!(
            matches!(parse("[\"COUNT\",\"c\",{},{\"kinds\":[1]}]", 64), Ok(ClientMessage::Count { filters, .. }) if filters.len() == 2)
        );
    }

    #[test]
    fn answers_escape_what_clients_sent() {
        assert_eq!(eose("a\"b"), r#"["EOSE","a\"b"]"#);
        assert_eq!(
            ok("ff", Err(&Reject::new(Prefix::Pow, "need 20 bits"))),
            r#"["OK","ff",false,"pow: need 20 bits"]"#
        );
        assert_eq!(count("q", 7), r#"["COUNT","q",{"count":7}]"#);
    }
}
