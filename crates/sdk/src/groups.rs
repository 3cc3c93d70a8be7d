//! NIP-29 group chats on a relay that keeps groups (a Flash relay does): create, invite, join
//! with an invite code, post, read, leave, and the admins' moderation (add and remove
//! members, delete posts). A group lives on one relay; every event about it is sent there
//! with its `h` tag, and the relay decides who may do what (its refusal comes back as
//! [`GroupError::Refused`] with the relay's reason).
//!
//! An invite travels as text: `RELAY'GROUP?code=CODE` (NIP-29 names a group `host'id`; the
//! relay's whole URL is kept so a plain `ws://` relay works too).

use std::fmt;
use std::str::FromStr;

use nostr_sdk::prelude::{
    Alphabet, Event, EventBuilder, EventId, Filter, Kind, PublicKey, RelayUrl, SingleLetterTag, Tag, TagKind,
};
use rand::RngCore;

use crate::chat::{Messenger, RELAY_WAIT};
use crate::local::{LocalError, LocalGroupPost, LocalStore};

/// NIP-29's kinds: moderation (put-user, remove-user, edit-metadata, delete-event,
/// create-group, create-invite), the user's join and leave requests, and the chat message.
const PUT_USER: u16 = 9000;
const REMOVE_USER: u16 = 9001;
const EDIT_METADATA: u16 = 9002;
const DELETE_EVENT: u16 = 9005;
const CREATE_GROUP: u16 = 9007;
const CREATE_INVITE: u16 = 9009;
const JOIN_REQUEST: u16 = 9021;
const LEAVE_REQUEST: u16 = 9022;
/// Most posts read from a group at once.
const READ_LIMIT: usize = 500;

/// Why a group action failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The relay refused the event; its reason (`restricted: …`, `invalid: …`).
    #[error("the relay refused: {0}")]
    Refused(String),
    /// The relay could not be reached.
    #[error("the group's relay is unreachable: {0}")]
    Unreachable(String),
    /// An invite or group id that does not read.
    #[error("{0}")]
    Invalid(String),
    /// Building or signing the event failed.
    #[error("NOSTR: {0}")]
    Nostr(String),
    /// The local database failed.
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// A group: its relay and its id there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    /// The relay that keeps it.
    pub relay: RelayUrl,
    /// Its id on that relay (`[a-z0-9_-]`, at most 64).
    pub id: String,
}

impl GroupRef {
    /// A group on `relay` with id `id`, checked as NIP-29 wants it.
    pub fn new(relay: &str, id: &str) -> Result<GroupRef, GroupError> {
        let relay = RelayUrl::parse(relay).map_err(|_| GroupError::Invalid(format!("not a relay URL: {relay}")))?;
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(GroupError::Invalid(format!(
                "a group id is 1 to 64 of a-z, 0-9, - and _, not `{id}`"
            )));
        }
        Ok(GroupRef {
            relay,
            id: id.to_owned(),
        })
    }

    /// The group's `h` tag.
    fn tag(&self) -> Tag {
        tag(["h", &self.id])
    }
}

/// An invite to a group: the group and the code its admin made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInvite {
    /// The group.
    pub group: GroupRef,
    /// The code a join request carries.
    pub code: String,
}

impl fmt::Display for GroupInvite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}'{}?code={}", self.group.relay, self.group.id, self.code)
    }
}

impl FromStr for GroupInvite {
    type Err = GroupError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || GroupError::Invalid(format!("an invite reads RELAY'GROUP?code=CODE, not `{s}`"));
        let (relay, rest) = s.trim().rsplit_once('\'').ok_or_else(bad)?;
        let (id, code) = rest.split_once("?code=").ok_or_else(bad)?;
        if code.is_empty() || code.contains(char::is_whitespace) {
            return Err(bad());
        }
        Ok(GroupInvite {
            group: GroupRef::new(relay, id)?,
            code: code.to_owned(),
        })
    }
}

/// A tag from its parts: a name and its values.
fn tag<const N: usize>(parts: [&str; N]) -> Tag {
    let (name, values) = parts.split_first().map_or(("", &[][..]), |(n, v)| (*n, v));
    Tag::custom(TagKind::from(name), values.iter().copied())
}

impl Messenger {
    /// The relay pool, connected to `group`'s relay.
    async fn group_relay(&self, group: &GroupRef) -> Result<&nostr_sdk::prelude::Client, GroupError> {
        if !self.connect_now(&group.relay).await {
            return Err(GroupError::Unreachable(format!("{} does not answer", group.relay)));
        }
        Ok(self.client())
    }

    /// Signs an event of `kind` about `group` and has its relay take it.
    async fn group_send(
        &self,
        group: &GroupRef,
        kind: u16,
        content: &str,
        tags: Vec<Tag>,
    ) -> Result<Event, GroupError> {
        let mut all = vec![group.tag()];
        all.extend(tags);
        let event = EventBuilder::new(Kind::from(kind), content)
            .tags(all)
            .sign_with_keys(self.keys())
            .map_err(|e| GroupError::Nostr(e.to_string()))?;
        let client = self.group_relay(group).await?;
        let output = client
            .send_event_to([group.relay.clone()], &event)
            .await
            .map_err(|e| GroupError::Unreachable(e.to_string()))?;
        if output.success.contains(&group.relay) {
            return Ok(event);
        }
        let why = output.failed.get(&group.relay).cloned().unwrap_or_default();
        Err(GroupError::Refused(why))
    }

    /// Creates `group` on its relay, named `name`, made closed (joining takes an invite) when
    /// `closed`; the user is its admin. Remembered locally.
    pub async fn group_create(
        &self,
        store: &mut LocalStore,
        group: &GroupRef,
        name: &str,
        closed: bool,
    ) -> Result<(), GroupError> {
        self.group_send(group, CREATE_GROUP, "", vec![]).await?;
        let mut meta = vec![tag(["name", name])];
        if closed {
            meta.push(tag(["closed"]));
        }
        self.group_send(group, EDIT_METADATA, "", meta).await?;
        store.save_group(group.relay.as_str(), &group.id, name)?;
        Ok(())
    }

    /// Makes an invite code for `group` (admins only).
    pub async fn group_invite(&self, group: &GroupRef) -> Result<GroupInvite, GroupError> {
        let mut bytes = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut bytes);
        let code: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.group_send(group, CREATE_INVITE, "", vec![tag(["code", &code])])
            .await?;
        Ok(GroupInvite {
            group: group.clone(),
            code,
        })
    }

    /// Asks to join the invite's group with its code; remembered locally once the relay
    /// took it (an open group needs no code: give an invite with any).
    pub async fn group_join(&self, store: &mut LocalStore, invite: &GroupInvite) -> Result<(), GroupError> {
        let group = &invite.group;
        self.group_send(group, JOIN_REQUEST, "", vec![tag(["code", &invite.code])])
            .await?;
        store.save_group(group.relay.as_str(), &group.id, &group.id)?;
        Ok(())
    }

    /// Posts `text` to `group` (a NIP-29 chat message, kind 9); its event id.
    pub async fn group_post(&self, group: &GroupRef, text: &str) -> Result<EventId, GroupError> {
        Ok(self
            .group_send(group, Kind::ChatMessage.as_u16(), text, vec![])
            .await?
            .id)
    }

    /// Reads `group`'s posts from its relay into the local database (posts its admins
    /// deleted are dropped here too); the group's posts, oldest first.
    pub async fn group_read(
        &self,
        store: &mut LocalStore,
        group: &GroupRef,
    ) -> Result<Vec<LocalGroupPost>, GroupError> {
        let client = self.group_relay(group).await?;
        let filter = Filter::new()
            .kinds([Kind::ChatMessage, Kind::from(DELETE_EVENT)])
            .custom_tag(SingleLetterTag::lowercase(Alphabet::H), &group.id)
            .limit(READ_LIMIT);
        let events = client
            .fetch_events_from([group.relay.clone()], filter, RELAY_WAIT)
            .await
            .map_err(|e| GroupError::Unreachable(e.to_string()))?;
        let mut posts = Vec::new();
        let mut deleted = Vec::new();
        for event in events.iter() {
            if event.kind == Kind::ChatMessage {
                posts.push(LocalGroupPost {
                    id: event.id.to_hex(),
                    author: event.pubkey.to_hex(),
                    created_at: i64::try_from(event.created_at.as_secs()).unwrap_or(i64::MAX),
                    content: event.content.clone(),
                });
            } else {
                deleted.extend(event.tags.event_ids().map(EventId::to_hex));
            }
        }
        store.save_group_posts(group.relay.as_str(), &group.id, &posts, &deleted)?;
        Ok(store.group_posts(group.relay.as_str(), &group.id)?)
    }

    /// Leaves `group`: the relay removes the user, and it is forgotten locally.
    pub async fn group_leave(&self, store: &mut LocalStore, group: &GroupRef) -> Result<(), GroupError> {
        self.group_send(group, LEAVE_REQUEST, "", vec![]).await?;
        store.forget_group(group.relay.as_str(), &group.id)?;
        Ok(())
    }

    /// Adds `member` to `group` (admins and moderators).
    pub async fn group_add(&self, group: &GroupRef, member: PublicKey) -> Result<(), GroupError> {
        self.group_send(group, PUT_USER, "", vec![tag(["p", &member.to_hex()])])
            .await
            .map(|_| ())
    }

    /// Removes `member` from `group` (admins; moderators for plain members).
    pub async fn group_remove(&self, group: &GroupRef, member: PublicKey) -> Result<(), GroupError> {
        self.group_send(group, REMOVE_USER, "", vec![tag(["p", &member.to_hex()])])
            .await
            .map(|_| ())
    }

    /// Deletes a post from `group` (admins and moderators).
    pub async fn group_delete_post(&self, group: &GroupRef, post: EventId) -> Result<(), GroupError> {
        self.group_send(group, DELETE_EVENT, "", vec![tag(["e", &post.to_hex()])])
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invites_read_back_and_bad_ones_are_refused() {
        let invite: GroupInvite = "ws://127.0.0.1:8080'climbers?code=ab12".parse().expect("invite");
        assert_eq!(invite.group.id, "climbers");
        assert_eq!(invite.code, "ab12");
        assert_eq!(invite.to_string().parse::<GroupInvite>().expect("again"), invite);
        for bad in [
            "climbers?code=ab12",
            "ws://127.0.0.1:8080'climbers",
            "ws://127.0.0.1:8080'Climbers?code=ab12",
            "ws://127.0.0.1:8080'climbers?code=",
            "not a url'climbers?code=x",
        ] {
            assert!(bad.parse::<GroupInvite>().is_err(), "{bad}");
        }
        assert!(GroupRef::new("wss://relay.example.com", &"a".repeat(65)).is_err());
    }
}
