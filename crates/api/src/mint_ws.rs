//! NUT-17 WebSocket subscriptions on `/v1/ws`: JSON-RPC 2.0 `subscribe` / `unsubscribe` to
//! mint quotes, melt quotes and note states. A subscriber gets the current state of each
//! object at once, then a notification whenever it changes.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use cashu::nuts::nut17::ws::{WsMethodRequest, WsRequest};
use flash_mint::{Mint, Watch};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

/// Most subscriptions one connection may hold.
const SUBSCRIPTIONS_MAX: usize = 32;
/// Most filters in one subscription.
const FILTERS_MAX: usize = 100;
/// Longest request accepted, bytes.
const REQUEST_MAX_BYTES: usize = 64 * 1024;
/// How often states changed elsewhere (the Lightning worker, another node) are looked up.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// JSON-RPC: invalid request.
const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC: invalid params.
const INVALID_PARAMS: i32 = -32602;

/// GET `/v1/ws`.
pub(crate) async fn upgrade(State(mint): State<Mint>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(REQUEST_MAX_BYTES)
        .on_upgrade(move |socket| serve(mint, socket))
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
    let mut poll = tokio::time::interval(POLL_EVERY);
    loop {
        let refresh = tokio::select! {
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
            change = changes.recv() => !matches!(change, Err(RecvError::Closed)),
            _ = poll.tick() => !subs.is_empty(),
        };
        if refresh {
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
            if params.filters.is_empty() || params.filters.len() > FILTERS_MAX {
                return vec![error(id, INVALID_PARAMS, "between 1 and 100 filters")];
            }
            if subs.len() >= SUBSCRIPTIONS_MAX && !subs.contains_key(&params.id) {
                return vec![error(id, INVALID_PARAMS, "too many subscriptions on this connection")];
            }
            let mut sub = Subscription {
                watch,
                filters: params.filters,
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
