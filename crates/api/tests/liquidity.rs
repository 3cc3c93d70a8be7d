//! The liquidity manager over the `dev` simulator's channels, through the operator API:
//! alerts when liquidity leaves the policy, opens a channel to a preferred peer within on-chain
//! funds and the daily budget, records every action, and reports on `/metrics`. On SQLite and
//! PostgreSQL.

mod common;

use common::*;
use flash_bank::{LiquidityConfig, PreferredPeer};
use flash_lightning::{DEV_CHANNEL_SATS, DEV_ONCHAIN_SATS};
use serde_json::json;

flash_store::on_both_backends!(low_outbound_alerts_then_opens_a_channel_once_within_policy);

const CHECK: &str = "mutation { lightningLiquidityCheck { errors { code message } liquidity { inPolicy issues \
    activeChannels outbound inbound outboundPercent onchain actions { kind peer amount ok detail } } } }";

async fn low_outbound_alerts_then_opens_a_channel_once_within_policy(backend: Backend) {
    let peer = format!("03{}", "cd".repeat(32));
    let s = TestServer::start_with(backend, |c| {
        c.liquidity = LiquidityConfig {
            // The simulator starts at 50% outbound: out of this policy.
            min_outbound_percent: 60,
            min_inbound_percent: 10,
            preferred_peers: vec![PreferredPeer {
                pubkey: peer.clone(),
                address: Some("127.0.0.1:9735".into()),
            }],
            max_channel_sats: 50_000_000,
            daily_budget_sats: 60_000_000,
            ..LiquidityConfig::default()
        }
    })
    .await;
    let before = s
        .admin("{ lightningLiquidity { inPolicy actions { kind } } }", json!({}))
        .await;
    assert_eq!(
        data(&before, "lightningLiquidity")["inPolicy"],
        json!(null),
        "no check yet"
    );

    let r = s.admin(CHECK, json!({})).await;
    let first = &data(&r, "lightningLiquidityCheck")["liquidity"];
    assert_eq!(first["inPolicy"], false, "{first}");
    assert_eq!(first["issues"], json!(["OUTBOUND_LOW"]));
    assert_eq!(first["outboundPercent"], 50);
    assert_eq!(first["onchain"], DEV_ONCHAIN_SATS);
    let kinds: Vec<&str> = first["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, vec!["CHANNEL_OPEN", "ALERT"], "newest first");
    let open = &first["actions"][0];
    assert_eq!(
        (open["peer"].as_str(), open["amount"].as_i64(), open["ok"].as_bool()),
        (Some(peer.as_str()), Some(50_000_000), Some(true)),
        "{open}"
    );

    // The channel is there: outbound is now (100M + 50M) / 250M = 60%.
    let r = s.admin(CHECK, json!({})).await;
    let second = &data(&r, "lightningLiquidityCheck")["liquidity"];
    assert_eq!(second["inPolicy"], true, "{second}");
    assert_eq!(second["activeChannels"], 2);
    assert_eq!(second["outbound"], DEV_CHANNEL_SATS / 2 + 50_000_000);
    assert_eq!(second["onchain"], DEV_ONCHAIN_SATS - 50_000_000);
    assert_eq!(
        second["actions"].as_array().map(Vec::len),
        Some(2),
        "nothing more to do"
    );

    let metrics = s.get("/metrics", &[]).await.text;
    assert!(metrics.contains("flash_lightning_liquidity_in_policy 1"), "{metrics}");
    assert!(metrics.contains(&format!(
        "flash_lightning_outbound_sats {}",
        DEV_CHANNEL_SATS / 2 + 50_000_000
    )));

    // Users cannot see or trigger it.
    let user = s.member().await;
    let r = s
        .graphql_at(
            "/admin/graphql",
            Some(&user.token),
            "mutation { lightningLiquidityCheck { errors { code } } }",
            json!({}),
        )
        .await;
    assert!(has_top_errors(&r), "{r}");
    assert!(r["data"].is_null(), "{r}");
}
