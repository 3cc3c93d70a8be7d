//! NUT-17 WebSocket subscriptions on `/v1/ws`: JSON-RPC 2.0 `subscribe` / `unsubscribe` to
//! mint quotes, melt quotes and note states. A subscriber gets the current state of each
//! object at once, then a notification whenever it changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cashu::nuts::nut17::ws::{WsMethodRequest, WsRequest};
use flash_mint::{Mint, Watch};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

/// Most subscriptions one connection may hold.
const SUBSCRIPTIONS_MAX: usize = 32;
/// Most objects (filters, all subscriptions together) one connection may watch.
const FILTERS_MAX: usize = 100;
/// Most WebSocket connections this process serves at once.
const CONNECTIONS_MAX: usize = 1_000;
/// Longest request accepted, bytes.
const REQUEST_MAX_BYTES: usize = 64 * 1024;
/// How often states changed elsewhere (the Lightning worker, another node) are looked up.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Changes on this node are looked at no more often than this (a burst is one read).
const REFRESH_MIN: Duration = Duration::from_millis(200);

/// Connections being served.
static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

/// Holds one of the [`CONNECTIONS_MAX`] places while a connection lives.
struct Place;

impl Place {
    fn take() -> Option<Place> {
        let taken = CONNECTIONS.fetch_add(1, Ordering::SeqCst);
        if taken >= CONNECTIONS_MAX {
            CONNECTIONS.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Place)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        CONNECTIONS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// JSON-RPC: invalid request.
const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC: invalid params.
const INVALID_PARAMS: i32 = -32602;

/// GET `/v1/ws`.
pub(crate) async fn upgrade(State(mint): State<Mint>, ws: WebSocketUpgrade) -> Response {
    let Some(place) = Place::take() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many subscription connections").into_response();
    };
    ws.max_message_size(REQUEST_MAX_BYTES)
        .on_upgrade(move |socket| async move {
            serve(mint, socket).await;
            drop(place);
        })
}

/// One subscription: what it watches, and what was last sent per object.
struct Subscription {
    watch: Watch,
    filters: Vec<String>,
    sent: HashMap<String, Value>,
}

async fn serve(mint: Mint, mut socket: WebSocket) {
    let mut subs: HashMap<String, Subscription> = HashMap::new();
    let mut changes = mint.changes();
    let mut tick = tokio::time::interval(REFRESH_MIN);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut dirty, mut last) = (false, tokio::time::Instant::now());
    loop {
        let due = tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let replies = handle(&mint, &mut subs, text.as_str()).await;
                    for reply in replies {
                        if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                    false
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => false,
            },
            change = changes.recv() => {
                dirty |= !matches!(change, Err(RecvError::Closed));
                false
            }
            _ = tick.tick() => !subs.is_empty() && (dirty || last.elapsed() >= POLL_EVERY),
        };
        if due {
            (dirty, last) = (false, tokio::time::Instant::now());
            for note in notifications(&mint, &mut subs).await {
                if socket.send(Message::Text(note.to_string().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn error(id: Value, code: i32, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "error": { "code": code, "message": message }, "id": id })
}

/// Answers one request: the response, then (for a subscribe) the current states.
async fn handle(mint: &Mint, subs: &mut HashMap<String, Subscription>, text: &str) -> Vec<Value> {
    let raw: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return vec![error(Value::Null, INVALID_REQUEST, "not JSON")],
    };
    let id = raw.get("id").cloned().unwrap_or(Value::Null);
    let req: WsRequest<String> = match serde_json::from_value(raw) {
        Ok(r) => r,
        Err(e) => return vec![error(id, INVALID_REQUEST, &format!("invalid request: {e}"))],
    };
    let ok = |sub_id: &str| json!({ "jsonrpc": "2.0", "result": { "status": "OK", "subId": sub_id }, "id": req.id });
    match req.method {
        WsMethodRequest::Subscribe(params) => {
            let Some(watch) = Watch::from_kind(&params.kind) else {
                return vec![error(id, INVALID_PARAMS, "kind not supported")];
            };
            let mut filters = params.filters;
            filters.sort();
            filters.dedup();
            let others: usize = subs
                .iter()
                .filter(|(k, _)| **k != params.id)
                .map(|(_, s)| s.filters.len())
                .sum();
            if filters.is_empty() || others + filters.len() > FILTERS_MAX {
                return vec![error(id, INVALID_PARAMS, "1 to 100 filters on one connection")];
            }
            if subs.len() >= SUBSCRIPTIONS_MAX && !subs.contains_key(&params.id) {
                return vec![error(id, INVALID_PARAMS, "too many subscriptions on this connection")];
            }
            let mut sub = Subscription {
                watch,
                filters,
                sent: HashMap::new(),
            };
            let mut out = vec![ok(&params.id)];
            match mint.watched(sub.watch, &sub.filters).await {
                Ok(states) => {
                    for (filter, payload) in states {
                        out.push(notification(&params.id, &payload));
                        sub.sent.insert(filter, payload);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "subscription state lookup failed"),
            }
            subs.insert(params.id, sub);
            out
        }
        WsMethodRequest::Unsubscribe(params) => match subs.remove(&params.sub_id) {
            Some(_) => vec![ok(&params.sub_id)],
            None => vec![error(id, INVALID_PARAMS, "no such subscription")],
        },
    }
}

fn notification(sub_id: &str, payload: &Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": "subscribe", "params": { "subId": sub_id, "payload": payload } })
}

/// The notifications due: every watched object whose state differs from what was sent.
async fn notifications(mint: &Mint, subs: &mut HashMap<String, Subscription>) -> Vec<Value> {
    let mut out = Vec::new();
    for (sub_id, sub) in subs.iter_mut() {
        let states = match mint.watched(sub.watch, &sub.filters).await {
            Ok(states) => states,
            Err(e) => {
                tracing::warn!(error = %e, "subscription state lookup failed");
                continue;
            }
        };
        for (filter, payload) in states {
            if sub.sent.get(&filter) != Some(&payload) {
                out.push(notification(sub_id, &payload));
                sub.sent.insert(filter, payload);
            }
        }
    }
    out
}
