//! NIP-29 relay-based groups. The relay keeps each group's settings and members (with roles)
//! in the store, checks every event sent to a group (its `h` tag) against them, carries out
//! moderation events (9000–9009) and join/leave requests (9021/9022), and signs the group's
//! state as addressable events 39000–39003 with its service key.
//!
//! Policy: whoever creates a group (9007) is its `admin`. Admins may do everything; a
//! `moderator` may add plain members, remove members who are not admins and delete events.
//! Groups are created public, open and restricted (only members write); `edit-metadata` sets
//! `private`/`public`, `closed`/`open` and `restricted`/`unrestricted`.

use flash_store::GroupRecord;
use nostr::{Event, EventBuilder, Kind, Tag, TagKind};

use crate::protocol::{Prefix, Reject};
use crate::relay::{store_failed, Relay};

const PUT_USER: u16 = 9000;
const REMOVE_USER: u16 = 9001;
const EDIT_METADATA: u16 = 9002;
const DELETE_EVENT: u16 = 9005;
const CREATE_GROUP: u16 = 9007;
const DELETE_GROUP: u16 = 9008;
const CREATE_INVITE: u16 = 9009;
const JOIN: u16 = 9021;
const LEAVE: u16 = 9022;
/// Most timeline references (`previous`) one event may carry.
const PREVIOUS_MAX: usize = 50;
/// The relay-signed state kinds: metadata, admins, members, roles.
const STATE_KINDS: std::ops::RangeInclusive<u16> = 39_000..=39_003;
/// The roles this relay knows, with what they may do.
const ROLES: &[(&str, &str)] = &[
    (
        "admin",
        "everything: members, roles, metadata, invites, deleting events and the group",
    ),
    (
        "moderator",
        "add plain members, remove members who are not admins, delete events",
    ),
];

/// What an accepted group event changes, carried out once the event is stored.
#[derive(Debug)]
pub(crate) enum Change {
    /// A new group.
    Create(GroupRecord, String),
    /// New settings.
    Edit(GroupRecord),
    /// A member added, or their roles set.
    Put(String, String, String),
    /// A member removed (by a moderator, or leaving: then the relay says so with a 9001).
    Remove(String, String, bool),
    /// An event of the group deleted.
    DeleteEvent(String, String),
    /// The group deleted.
    DeleteGroup(String),
    /// An invite code.
    Invite(String, String),
}

fn tag_values<'a>(event: &'a Event, name: &'a str) -> impl Iterator<Item = &'a [String]> + 'a {
    event
        .tags
        .iter()
        .map(|t| t.as_slice())
        .filter(move |t| t.first().map(String::as_str) == Some(name))
}

fn first_value(event: &Event, name: &str) -> Option<String> {
    tag_values(event, name).next().and_then(|t| t.get(1)).cloned()
}

/// The group an event is sent to, if any.
pub(crate) fn group_of(event: &Event) -> Option<String> {
    first_value(event, "h")
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn restricted(message: impl Into<String>) -> Reject {
    Reject::new(Prefix::Restricted, message)
}

/// Timeline references: every `previous` value must be the first 8 hex characters of an event
/// of this group that the relay holds (so a message cannot be replayed out of context into
/// a fork of the group elsewhere).
async fn check_previous(relay: &Relay, group: &str, event: &Event) -> Result<(), Reject> {
    let refs: Vec<&String> = tag_values(event, "previous").flat_map(|t| t.iter().skip(1)).collect();
    if refs.len() > PREVIOUS_MAX {
        return Err(Reject::invalid(format!("at most {PREVIOUS_MAX} timeline references")));
    }
    for prefix in refs {
        if prefix.len() != 8 || !prefix.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Reject::invalid("timeline references are 8 lowercase hex characters"));
        }
        let known = relay
            .store()
            .nostr_group_has_event(group, prefix)
            .await
            .map_err(store_failed)?;
        if !known {
            return Err(Reject::invalid(format!(
                "timeline reference {prefix} is to no event of this group here"
            )));
        }
    }
    Ok(())
}

/// Checks an event against the groups' rules; what it will change once stored.
pub(crate) async fn admit(relay: &Relay, event: &Event) -> Result<Option<Change>, Reject> {
    let kind = event.kind.as_u16();
    if STATE_KINDS.contains(&kind) {
        return if event.pubkey == relay.service_keys().public_key() {
            Ok(None)
        } else {
            Err(restricted("group state is signed by the relay only"))
        };
    }
    let Some(id) = group_of(event) else {
        return if matches!(kind, PUT_USER..=CREATE_INVITE | JOIN | LEAVE) {
            Err(Reject::invalid("group events need an h tag"))
        } else {
            Ok(None)
        };
    };
    let late = relay.config().group_late_publication_secs;
    let now = nostr::Timestamp::now().as_secs();
    if late > 0 && event.created_at.as_secs() < now.saturating_sub(late) {
        return Err(Reject::invalid(format!(
            "late publication: events to a group must be dated within {late} s of now"
        )));
    }
    let store = relay.store();
    let author = event.pubkey.to_hex();
    if kind == CREATE_GROUP {
        if !valid_id(&id) {
            return Err(Reject::invalid("group ids are 1 to 64 of a-z, 0-9, - and _"));
        }
        if store.nostr_group(&id).await.map_err(store_failed)?.is_some() {
            return Err(Reject::new(Prefix::Duplicate, "this group exists"));
        }
        let group = GroupRecord {
            id: id.clone(),
            name: id.clone(),
            about: String::new(),
            picture: String::new(),
            private: false,
            closed: false,
            restricted: true,
        };
        return Ok(Some(Change::Create(group, author)));
    }
    let Some(group) = store.nostr_group(&id).await.map_err(store_failed)? else {
        return Err(Reject::invalid("no such group on this relay"));
    };
    check_previous(relay, &id, event).await?;
    let roles = store.nostr_group_roles(&id, &author).await.map_err(store_failed)?;
    let has = |role: &str| {
        roles
            .as_deref()
            .is_some_and(|r| r.split_whitespace().any(|x| x == role))
    };
    let admin = has("admin");
    let moderator = admin || has("moderator");
    match kind {
        JOIN => {
            if roles.is_some() {
                return Err(Reject::new(Prefix::Duplicate, "already a member"));
            }
            if group.closed {
                let code = first_value(event, "code").unwrap_or_default();
                if code.is_empty() || !store.nostr_group_invited(&id, &code).await.map_err(store_failed)? {
                    return Err(restricted("this group is closed: join with an invite code"));
                }
            }
            Ok(Some(Change::Put(id, author, String::new())))
        }
        LEAVE => {
            if roles.is_none() {
                return Err(Reject::invalid("not a member"));
            }
            Ok(Some(Change::Remove(id, author, true)))
        }
        PUT_USER => {
            let target = tag_values(event, "p")
                .next()
                .map(<[String]>::to_vec)
                .unwrap_or_default();
            let (Some(pubkey), new_roles) = (target.get(1).cloned(), target.get(2..).unwrap_or_default().join(" "))
            else {
                return Err(Reject::invalid("put-user needs a p tag"));
            };
            if nostr::PublicKey::from_hex(&pubkey).is_err() {
                return Err(Reject::invalid("put-user needs a p tag with a pubkey"));
            }
            let unknown = new_roles
                .split_whitespace()
                .find(|r| !ROLES.iter().any(|(name, _)| name == r));
            if let Some(role) = unknown {
                return Err(Reject::invalid(format!("unknown role {role:?}: admin or moderator")));
            }
            if !(admin || (moderator && new_roles.is_empty())) {
                return Err(restricted("only admins give roles; moderators add plain members"));
            }
            Ok(Some(Change::Put(id, pubkey, new_roles)))
        }
        REMOVE_USER => {
            let Some(pubkey) = first_value(event, "p") else {
                return Err(Reject::invalid("remove-user needs a p tag"));
            };
            let target_roles = store.nostr_group_roles(&id, &pubkey).await.map_err(store_failed)?;
            let target_admin = target_roles
                .as_deref()
                .is_some_and(|r| r.split_whitespace().any(|x| x == "admin"));
            if !(admin || (moderator && !target_admin)) {
                return Err(restricted("only admins remove admins; only moderators remove members"));
            }
            Ok(Some(Change::Remove(id, pubkey, false)))
        }
        DELETE_EVENT => {
            let Some(target) = first_value(event, "e") else {
                return Err(Reject::invalid("delete-event needs an e tag"));
            };
            if !moderator {
                return Err(restricted("only moderators delete events"));
            }
            Ok(Some(Change::DeleteEvent(id, target)))
        }
        EDIT_METADATA | DELETE_GROUP | CREATE_INVITE if !admin => Err(restricted("only admins do that")),
        EDIT_METADATA => {
            let mut g = group;
            if let Some(name) = first_value(event, "name") {
                g.name = name;
            }
            if let Some(about) = first_value(event, "about") {
                g.about = about;
            }
            if let Some(picture) = first_value(event, "picture") {
                g.picture = picture;
            }
            let flag = |name: &str| tag_values(event, name).next().is_some();
            g.private = (g.private || flag("private")) && !flag("public");
            g.closed = (g.closed || flag("closed")) && !flag("open");
            g.restricted = (g.restricted || flag("restricted")) && !flag("unrestricted");
            Ok(Some(Change::Edit(g)))
        }
        DELETE_GROUP => Ok(Some(Change::DeleteGroup(id))),
        CREATE_INVITE => {
            let Some(code) = first_value(event, "code").filter(|c| !c.is_empty() && c.len() <= 128) else {
                return Err(Reject::invalid("create-invite needs a code tag"));
            };
            Ok(Some(Change::Invite(id, code)))
        }
        _ if (PUT_USER..=9_020).contains(&kind) => Err(Reject::invalid("this moderation kind is not supported")),
        _ if group.restricted && roles.is_none() => Err(restricted("only members write to this group")),
        _ => Ok(None),
    }
}

/// Carries out a change of an event now stored, and signs the group's new state.
pub(crate) async fn apply(relay: &Relay, change: Change) {
    let store = relay.store();
    let result = match &change {
        Change::Create(g, creator) => store.nostr_group_create(g, creator).await.map(|_| ()),
        Change::Edit(g) => store.nostr_group_update(g).await,
        Change::Put(id, pubkey, roles) => store.nostr_group_put(id, pubkey, roles).await,
        Change::Remove(id, pubkey, _) => store.nostr_group_remove(id, pubkey).await.map(|_| ()),
        Change::DeleteEvent(id, target) => store.nostr_group_delete_event(id, target).await.map(|_| ()),
        Change::DeleteGroup(id) => store.nostr_group_delete(id).await,
        Change::Invite(id, code) => store.nostr_group_invite(id, code).await,
    };
    if let Err(e) = result {
        tracing::error!(error = %e, ?change, "groups: could not apply a change");
        return;
    }
    let id = match &change {
        Change::Create(g, _) | Change::Edit(g) => g.id.clone(),
        Change::Put(id, ..)
        | Change::Remove(id, ..)
        | Change::DeleteEvent(id, _)
        | Change::DeleteGroup(id)
        | Change::Invite(id, _) => id.clone(),
    };
    if let Change::Remove(_, pubkey, true) = &change {
        // A leave request: the relay removes the member itself, and says so.
        let removal = EventBuilder::new(Kind::Custom(REMOVE_USER), "left the group").tags([
            Tag::custom(TagKind::custom("h"), [id.clone()]),
            Tag::custom(TagKind::custom("p"), [pubkey.clone()]),
        ]);
        relay.sign_and_keep(removal).await;
    }
    if matches!(change, Change::Invite(..) | Change::DeleteEvent(..)) {
        return;
    }
    for state in state_events(relay, &id).await {
        relay.sign_and_keep(state).await;
    }
}

/// The group's state as the relay signs it: metadata, admins, members, roles (or, for a group
/// deleted, an empty metadata event).
async fn state_events(relay: &Relay, id: &str) -> Vec<EventBuilder> {
    let store = relay.store();
    let d = Tag::identifier(id);
    let Ok(Some(g)) = store.nostr_group(id).await else {
        return vec![EventBuilder::new(Kind::Custom(39_000), "")
            .tag(d)
            .tag(Tag::custom(TagKind::custom("deleted"), Vec::<String>::new()))];
    };
    let Ok(members) = store.nostr_group_members(id).await else {
        return vec![];
    };
    let flag =
        |on: bool, yes: &str, no: &str| Tag::custom(TagKind::custom(if on { yes } else { no }), Vec::<String>::new());
    let metadata = EventBuilder::new(Kind::Custom(39_000), "").tags([
        d.clone(),
        Tag::custom(TagKind::custom("name"), [g.name.clone()]),
        Tag::custom(TagKind::custom("about"), [g.about.clone()]),
        Tag::custom(TagKind::custom("picture"), [g.picture.clone()]),
        flag(g.private, "private", "public"),
        flag(g.closed, "closed", "open"),
        flag(g.restricted, "restricted", "unrestricted"),
    ]);
    let admins = EventBuilder::new(Kind::Custom(39_001), format!("admins of {}", g.name))
        .tag(d.clone())
        .tags(
            members
                .iter()
                .filter(|(_, roles)| !roles.is_empty())
                .map(|(pk, roles)| {
                    let mut values = vec![pk.clone()];
                    values.extend(roles.split_whitespace().map(str::to_string));
                    Tag::custom(TagKind::custom("p"), values)
                }),
        );
    let everyone = EventBuilder::new(Kind::Custom(39_002), format!("members of {}", g.name))
        .tag(d.clone())
        .tags(
            members
                .iter()
                .map(|(pk, _)| Tag::custom(TagKind::custom("p"), [pk.clone()])),
        );
    let roles = EventBuilder::new(Kind::Custom(39_003), "roles of this relay's groups")
        .tag(d)
        .tags(
            ROLES
                .iter()
                .map(|(name, what)| Tag::custom(TagKind::custom("role"), [name.to_string(), what.to_string()])),
        );
    vec![metadata, admins, everyone, roles]
}
