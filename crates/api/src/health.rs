//! `/healthz`, `/readyz` and `/metrics`.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::ApiState;

pub(crate) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Liveness, and what this server is running on. Simulated rails are named here.
async fn healthz(State(state): State<ApiState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "network": state.bank.config().network.as_str(),
        "database": state.info.backend,
        "simulated": state.info.simulated_rails,
        "prices": state.prices.name(),
    }))
}

/// Readiness: the database answers.
async fn readyz(State(state): State<ApiState>) -> Response {
    match state.bank.ping().await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({ "status": "ready" }))).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            let body = serde_json::json!({ "status": "unavailable", "reason": "database unreachable" });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let mut out = String::new();
    state.metrics.render(&mut out);
    let stats = state.bank.ledger_stats();
    out.push_str(
        "# HELP flash_ledger_journals_total Journals posted since start.\n# TYPE flash_ledger_journals_total counter\n",
    );
    let _ = writeln!(out, "flash_ledger_journals_total {}", stats.journals());
    out.push_str("# HELP flash_ledger_batches_total Ledger batches committed since start.\n# TYPE flash_ledger_batches_total counter\n");
    let _ = writeln!(out, "flash_ledger_batches_total {}", stats.batches());
    if let Some(bytes) = state.bank.sqlite_wal_bytes() {
        let name = "flash_store_sqlite_wal_bytes";
        let _ = writeln!(
            out,
            "# HELP {name} Size of the SQLite write-ahead log file.\n# TYPE {name} gauge\n{name} {bytes}"
        );
    }
    match state.bank.wallet_totals().await {
        Ok(totals) => {
            out.push_str("# HELP flash_wallet_balance_total Sum of user wallet balances (minor units).\n");
            out.push_str("# TYPE flash_wallet_balance_total gauge\n");
            for (currency, total) in totals {
                let _ = writeln!(out, "flash_wallet_balance_total{{currency=\"{currency}\"}} {total}");
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: wallet totals unavailable"),
    }
    if let Some(r) = state.bank.liquidity_report() {
        let gauges = [
            (
                "flash_lightning_outbound_sats",
                "Satoshis the node can send.",
                r.outbound_sats,
            ),
            (
                "flash_lightning_inbound_sats",
                "Satoshis the node can receive.",
                r.inbound_sats,
            ),
            (
                "flash_lightning_active_channels",
                "Usable channels.",
                r.active_channels as u64,
            ),
            (
                "flash_lightning_liquidity_in_policy",
                "1 when liquidity is within policy.",
                u64::from(r.in_policy()),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        if let Some(onchain) = r.onchain_sats {
            let name = "flash_lightning_onchain_sats";
            let _ = writeln!(
                out,
                "# HELP {name} The node's confirmed on-chain funds.\n# TYPE {name} gauge\n{name} {onchain}"
            );
        }
    }
    if let Ok(s) = state.bank.onchain_status().await {
        let mut gauges = vec![
            (
                "flash_onchain_pending_deposits",
                "Deposits seen, not yet credited.",
                s.totals.pending_deposits,
            ),
            (
                "flash_onchain_pending_deposit_sats",
                "Satoshis of pending deposits.",
                s.totals.pending_deposit_sats,
            ),
            (
                "flash_onchain_queued_payouts",
                "Payouts held, not yet broadcast.",
                s.totals.queued_payouts,
            ),
            (
                "flash_onchain_queued_payout_sats",
                "Satoshis of queued payouts.",
                s.totals.queued_payout_sats,
            ),
        ];
        if let Some((tip, confirmed, _)) = s.hot {
            gauges.push((
                "flash_onchain_hot_balance_sats",
                "The hot wallet's confirmed coins.",
                confirmed,
            ));
            gauges.push((
                "flash_onchain_tip_height",
                "The chain tip as of the last watcher pass.",
                i64::from(tip),
            ));
        }
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
    }
    if let Some(relay) = &state.relay {
        let s = relay.stats();
        let counters = [
            (
                "flash_relay_events_saved_total",
                "Events the relay stored.",
                s.saved.load(Ordering::Relaxed),
            ),
            (
                "flash_relay_events_relayed_total",
                "Ephemeral events the relay passed on.",
                s.relayed.load(Ordering::Relaxed),
            ),
            (
                "flash_relay_events_refused_total",
                "Events the relay refused.",
                s.refused.load(Ordering::Relaxed),
            ),
            (
                "flash_relay_queries_total",
                "REQ and COUNT messages answered.",
                s.queries.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        let name = "flash_relay_connections";
        let open = s.connections.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP {name} Open relay websocket connections.\n# TYPE {name} gauge\n{name} {open}"
        );
    }
    if let Some(mint) = &state.mint {
        match mint.status().await {
            Ok(s) => {
                let gauges = [
                    (
                        "flash_mint_outstanding_sats",
                        "Ecash in circulation: notes issued, not spent and not pending in a melt.",
                        s.notes.outstanding(),
                    ),
                    ("flash_mint_pending_sats", "Notes pending in melts.", s.notes.pending),
                    (
                        "flash_mint_quotes_paid_sats",
                        "Mint quotes paid, not yet issued.",
                        s.notes.quotes_paid,
                    ),
                    (
                        "flash_mint_balanced",
                        "1 when the notes agree with mint:outstanding and mint:quotes.",
                        i64::from(s.balanced()),
                    ),
                ];
                for (name, help, value) in gauges {
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: mint status unavailable"),
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
