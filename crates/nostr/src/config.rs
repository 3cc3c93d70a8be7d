//! The relay's settings: the `[relay]` section of `flashd.toml`.

use serde::Deserialize;

/// Who may publish to the relay.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WritePolicy {
    /// Anyone.
    #[default]
    Open,
    /// Only pubkeys a Flash user set (`userUpdateNpub`), and the relay's own services.
    Users,
    /// Pubkeys that paid the admission fee (a Lightning invoice into the operator's Flash
    /// wallet), and the relay's own services; Flash users' pubkeys too unless
    /// `admission_free_for_users` is off.
    Paid,
}

/// Relay settings. Every limit is per connection unless its name says otherwise.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// Serve the relay at all.
    pub enabled: bool,
    /// The relay's name (NIP-11).
    pub name: String,
    /// What the relay is for (NIP-11).
    pub description: String,
    /// The operator's pubkey, hex (NIP-11), if any.
    pub operator_pubkey: Option<String>,
    /// How to reach the operator (NIP-11), if any.
    pub contact: Option<String>,
    /// The relay's public websocket URL (`wss://…`), which AUTH events must name. Defaults to
    /// the server's public URL with a websocket scheme.
    pub url: Option<String>,
    /// Who may publish.
    pub write_policy: WritePolicy,
    /// Under `write_policy = "paid"`: what admission costs a pubkey, satoshis, paid once.
    pub admission_sats: u64,
    /// Under `write_policy = "paid"`: the Flash user whose default (BTC) wallet receives the
    /// admission fees.
    pub admission_username: Option<String>,
    /// Under `write_policy = "paid"`: pubkeys Flash users linked write without paying.
    pub admission_free_for_users: bool,
    /// Largest websocket message accepted, bytes.
    pub max_message_bytes: usize,
    /// Most open subscriptions.
    pub max_subscriptions: usize,
    /// Most filters in one REQ or COUNT.
    pub max_filters: usize,
    /// Longest subscription id, characters.
    pub max_subid_length: usize,
    /// Most values in one filter (ids, authors, kinds and tag values together).
    pub max_filter_values: usize,
    /// Most events a filter returns; a larger or missing `limit` is cut to this.
    pub max_limit: u64,
    /// Most tags on one event.
    pub max_event_tags: usize,
    /// Events dated further in the future than this are refused, seconds.
    pub created_at_future_secs: u64,
    /// Events older than this are refused, seconds; `0` accepts any age.
    pub created_at_past_secs: u64,
    /// NIP-13 proof of work (leading zero bits of the id) every event needs; `0` for none.
    pub min_pow_difficulty: u8,
    /// NIP-29: events sent to a group dated more than this before now are refused (late
    /// publication), seconds; `0` accepts any age.
    pub group_late_publication_secs: u64,
    /// Require NIP-42 AUTH before any REQ or COUNT.
    pub auth_required: bool,
    /// Events one connection may publish per minute.
    pub events_per_minute: u32,
    /// Events one IP address may publish per minute, over all its connections.
    pub events_per_minute_per_ip: u32,
    /// Events one pubkey may publish per minute, over all connections.
    pub events_per_minute_per_pubkey: u32,
    /// REQ and COUNT messages one connection may send per minute.
    pub reqs_per_minute: u32,
    /// Websocket connections one IP address may hold at once.
    pub connections_per_ip: usize,
    /// Websocket connections the relay serves at once, over all addresses.
    pub max_connections: usize,
    /// Send zap receipts to relays on private or loopback addresses too (off: a zap request
    /// could otherwise make this server connect into its own network).
    pub zap_receipts_to_private_relays: bool,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            enabled: true,
            name: "Flash relay".into(),
            description: "The NOSTR relay of a Flash bank: direct messages, groups, zaps and wallet connect.".into(),
            operator_pubkey: None,
            contact: None,
            url: None,
            write_policy: WritePolicy::Open,
            admission_sats: 1_000,
            admission_username: None,
            admission_free_for_users: true,
            max_message_bytes: 128 * 1024,
            max_subscriptions: 64,
            max_filters: 16,
            max_subid_length: 64,
            max_filter_values: 1_000,
            max_limit: 1_000,
            max_event_tags: 2_000,
            created_at_future_secs: 15 * 60,
            created_at_past_secs: 0,
            min_pow_difficulty: 0,
            group_late_publication_secs: 60 * 60,
            auth_required: false,
            events_per_minute: 600,
            events_per_minute_per_ip: 3_000,
            events_per_minute_per_pubkey: 1_200,
            reqs_per_minute: 600,
            connections_per_ip: 200,
            max_connections: 20_000,
            zap_receipts_to_private_relays: false,
        }
    }
}

impl RelayConfig {
    /// Checks the settings that depend on each other.
    pub fn validate(&self) -> Result<(), String> {
        if self.write_policy == WritePolicy::Paid {
            if self.admission_sats == 0 {
                return Err("[relay] write_policy = \"paid\" needs admission_sats above 0".into());
            }
            let Some(username) = self.admission_username.as_deref().filter(|u| !u.trim().is_empty()) else {
                return Err(
                    "[relay] write_policy = \"paid\" needs admission_username: the Flash user whose wallet receives the fees"
                        .into(),
                );
            };
            if let Err(e) = flash_core::Username::parse(username) {
                return Err(format!(
                    "[relay] admission_username {username:?} is no Flash username: {e}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paid_relay_needs_a_price_and_a_wallet() {
        let paid = |sats, user: Option<&str>| RelayConfig {
            write_policy: WritePolicy::Paid,
            admission_sats: sats,
            admission_username: user.map(str::to_string),
            ..RelayConfig::default()
        };
        assert_eq!(RelayConfig::default().validate(), Ok(()));
        assert_eq!(paid(1_000, Some("relayop")).validate(), Ok(()));
        let no_user = paid(1_000, None).validate().expect_err("no wallet");
        assert!(no_user.contains("admission_username"), "{no_user}");
        assert!(paid(1_000, Some("  ")).validate().is_err());
        let bad = paid(1_000, Some("no spaces please"))
            .validate()
            .expect_err("not a username");
        assert!(bad.contains("no Flash username"), "{bad}");
        let free = paid(0, Some("relayop")).validate().expect_err("no price");
        assert!(free.contains("admission_sats"), "{free}");
    }
}
