//! NIP-29 relay-based groups: each group's settings, members with their roles, and invite
//! codes. The relay decides who may do what; these rows are the state it decides from.

use crate::sql::{params, Row};
use crate::{Store, StoreError};

/// A group's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    /// The group id (`[a-z0-9_-]`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub about: String,
    /// Picture URL.
    pub picture: String,
    /// Only members read its events.
    pub private: bool,
    /// Join requests need an invite code.
    pub closed: bool,
    /// Only members write to it.
    pub restricted: bool,
}

fn group(r: &Row) -> Result<GroupRecord, StoreError> {
    Ok(GroupRecord {
        id: r.text(0)?,
        name: r.text(1)?,
        about: r.text(2)?,
        picture: r.text(3)?,
        private: r.int(4)? == 1,
        closed: r.int(5)? == 1,
        restricted: r.int(6)? == 1,
    })
}

impl Store {
    /// A group, if it exists.
    pub async fn nostr_group(&self, id: &str) -> Result<Option<GroupRecord>, StoreError> {
        self.db
            .query_opt(
                "SELECT id, name, about, picture, private, closed, restricted FROM nostr_groups WHERE id = $1",
                params![id],
            )
            .await?
            .as_ref()
            .map(group)
            .transpose()
    }

    /// Creates a group with `creator` as its admin; false if the id is taken.
    pub async fn nostr_group_create(&self, g: &GroupRecord, creator: &str) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let changed = self
            .db
            .script(vec![
                (
                    "INSERT INTO nostr_groups (id, name, about, picture, private, closed, restricted, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
                        .to_string(),
                    params![
                        g.id.as_str(),
                        g.name.as_str(),
                        g.about.as_str(),
                        g.picture.as_str(),
                        i64::from(g.private),
                        i64::from(g.closed),
                        i64::from(g.restricted),
                        now
                    ],
                ),
                (
                    "INSERT INTO nostr_group_members (group_id, pubkey, roles, added_at) \
                     SELECT $1, $2, 'admin', $3 WHERE NOT EXISTS \
                     (SELECT 1 FROM nostr_group_members WHERE group_id = $1)"
                        .to_string(),
                    params![g.id.as_str(), creator, now],
                ),
            ])
            .await?;
        Ok(changed.first() == Some(&1))
    }

    /// Replaces a group's settings.
    pub async fn nostr_group_update(&self, g: &GroupRecord) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE nostr_groups SET name = $2, about = $3, picture = $4, private = $5, closed = $6, \
                 restricted = $7 WHERE id = $1",
                params![
                    g.id.as_str(),
                    g.name.as_str(),
                    g.about.as_str(),
                    g.picture.as_str(),
                    i64::from(g.private),
                    i64::from(g.closed),
                    i64::from(g.restricted)
                ],
            )
            .await
            .map(|_| ())
    }

    /// Deletes a group, its members and invites.
    pub async fn nostr_group_delete(&self, id: &str) -> Result<(), StoreError> {
        self.db
            .script(vec![
                (
                    "DELETE FROM nostr_group_invites WHERE group_id = $1".to_string(),
                    params![id],
                ),
                (
                    "DELETE FROM nostr_group_members WHERE group_id = $1".to_string(),
                    params![id],
                ),
                ("DELETE FROM nostr_groups WHERE id = $1".to_string(), params![id]),
            ])
            .await
            .map(|_| ())
    }

    /// A group's members and their roles (space-separated; empty for a plain member).
    pub async fn nostr_group_members(&self, id: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.db
            .query(
                "SELECT pubkey, roles FROM nostr_group_members WHERE group_id = $1 ORDER BY added_at, pubkey",
                params![id],
            )
            .await?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?)))
            .collect()
    }

    /// A member's roles, if `pubkey` is a member.
    pub async fn nostr_group_roles(&self, id: &str, pubkey: &str) -> Result<Option<String>, StoreError> {
        self.db
            .query_opt(
                "SELECT roles FROM nostr_group_members WHERE group_id = $1 AND pubkey = $2",
                params![id, pubkey],
            )
            .await?
            .map(|r| r.text(0))
            .transpose()
    }

    /// Adds a member, or sets an existing member's roles.
    pub async fn nostr_group_put(&self, id: &str, pubkey: &str, roles: &str) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO nostr_group_members (group_id, pubkey, roles, added_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (group_id, pubkey) DO UPDATE SET roles = excluded.roles",
                params![id, pubkey, roles, self.now_ms()],
            )
            .await
            .map(|_| ())
    }

    /// Removes a member; false if `pubkey` was none.
    pub async fn nostr_group_remove(&self, id: &str, pubkey: &str) -> Result<bool, StoreError> {
        let changed = self
            .db
            .execute(
                "DELETE FROM nostr_group_members WHERE group_id = $1 AND pubkey = $2",
                params![id, pubkey],
            )
            .await?;
        Ok(changed == 1)
    }

    /// Records an invite code for a group.
    pub async fn nostr_group_invite(&self, id: &str, code: &str) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO nostr_group_invites (group_id, code, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                params![id, code, self.now_ms()],
            )
            .await
            .map(|_| ())
    }

    /// Whether `code` is an invite code of the group.
    pub async fn nostr_group_invited(&self, id: &str, code: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .query_opt(
                "SELECT 1 FROM nostr_group_invites WHERE group_id = $1 AND code = $2",
                params![id, code],
            )
            .await?
            .is_some())
    }

    /// Whether a reader authenticated as `pubkeys` may read the group's events: it is not
    /// private, does not exist, or one of them is a member.
    pub async fn nostr_group_readable(&self, id: &str, pubkeys: &[String]) -> Result<bool, StoreError> {
        let Some(g) = self.nostr_group(id).await? else {
            return Ok(true);
        };
        if !g.private {
            return Ok(true);
        }
        for pk in pubkeys {
            if self.nostr_group_roles(id, pk).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Deletes an event of a group (a moderator's `delete-event`); false if the group has no
    /// such event.
    pub async fn nostr_group_delete_event(&self, group: &str, event_id: &str) -> Result<bool, StoreError> {
        let changed = self
            .db
            .script(vec![
                (
                    "DELETE FROM nostr_events WHERE id = $1 AND id IN \
                     (SELECT event_id FROM nostr_tags WHERE name = 'h' AND value = $2)"
                        .to_string(),
                    params![event_id, group],
                ),
                (
                    "DELETE FROM nostr_tags WHERE event_id = $1 AND NOT EXISTS \
                     (SELECT 1 FROM nostr_events WHERE id = $1)"
                        .to_string(),
                    params![event_id],
                ),
            ])
            .await?;
        Ok(changed.first() == Some(&1))
    }

    /// Whether the relay holds an event of group `id` whose id starts with `prefix` (lowercase
    /// hex; a NIP-29 timeline reference).
    pub async fn nostr_group_has_event(&self, id: &str, prefix: &str) -> Result<bool, StoreError> {
        // Every id starting with `prefix` sorts between it and `prefix` + "g" (ids are hex).
        let upper = format!("{prefix}g");
        Ok(self
            .db
            .query_opt(
                "SELECT 1 FROM nostr_tags WHERE event_id >= $1 AND event_id < $2 AND name = 'h' AND value = $3 LIMIT 1",
                params![prefix, upper, id],
            )
            .await?
            .is_some())
    }
}
