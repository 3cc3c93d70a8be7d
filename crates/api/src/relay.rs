//! The NOSTR relay on the shared listener: a websocket upgrade at `/` or `/relay`, the NIP-11
//! document for `Accept: application/nostr+json`, and the landing page for a browser; a paid
//! relay's admission invoices at `/relay/admission` (NIP-11 `payments_url`).

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use flash_core::ErrorCode;
use flash_nostr::{protocol, Admission, Connection, Reject, Relay, Step};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;

use crate::error::ApiError;
use crate::{pages, ApiState, Peer};

/// Frames larger than this close the connection; the relay answers messages between its own
/// limit and this one with a refusal instead.
const FRAME_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Each connection's websocket read buffer, bytes (it grows for larger frames).
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Events of one connection awaiting their commit at once; beyond that its next messages wait
/// (live events still flow).
const PUBLISHING_MAX: usize = 16;

pub(crate) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/", get(root).options(preflight))
        .route("/relay", get(root).options(preflight))
        .route("/.well-known/nostr.json", get(nip05).options(preflight))
        .route(flash_nostr::ADMISSION_PATH, get(admission).options(preflight))
        .with_state(state)
}

fn wants_info(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/nostr+json"))
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// CORS for NIP-11 (browsers fetch it from any origin).
fn cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS"),
    );
    response
}

async fn preflight() -> Response {
    cors(StatusCode::NO_CONTENT.into_response())
}

/// GET `/` and `/relay`: a relay connection, the relay's NIP-11 document, or the landing page.
async fn root(State(state): State<ApiState>, peer: Peer, req: Request) -> Response {
    let relay = match (&state.relay, req.uri().path()) {
        (Some(relay), _) => relay.clone(),
        (None, "/") => return pages::landing(State(state)).await,
        (None, _) => return StatusCode::NOT_FOUND.into_response(),
    };
    if is_upgrade(req.headers()) {
        let (mut parts, _) = req.into_parts();
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(u) => u,
            Err(e) => return e.into_response(),
        };
        let admission = match relay.admit(peer.0.ip()) {
            Ok(a) => a,
            Err(reject) => return (StatusCode::TOO_MANY_REQUESTS, reject.to_string()).into_response(),
        };
        // A small read buffer: an idle connection then costs about 11 KiB instead of 130.
        return upgrade
            .max_message_size(FRAME_MAX_BYTES.max(relay.config().max_message_bytes))
            .read_buffer_size(READ_BUFFER_BYTES)
            .on_upgrade(move |socket| serve(admission, socket));
    }
    if wants_info(req.headers()) && req.method() == Method::GET {
        let body = flash_nostr::info(&relay).to_string();
        let response = ([(header::CONTENT_TYPE, "application/nostr+json")], body).into_response();
        return cors(response);
    }
    if req.uri().path() == "/" {
        return pages::landing(State(state)).await;
    }
    (
        StatusCode::UPGRADE_REQUIRED,
        "this is a NOSTR relay: connect with a websocket",
    )
        .into_response()
}

/// `?name=` of a NIP-05 look-up.
#[derive(serde::Deserialize)]
struct Nip05Query {
    name: Option<String>,
}

/// GET `/.well-known/nostr.json`: a Flash username's pubkey (NIP-05), from any origin, never
/// redirected.
async fn nip05(State(state): State<ApiState>, Query(q): Query<Nip05Query>) -> Response {
    let relay = state.relay.as_ref();
    let operator = relay.and_then(|r| r.config().operator_pubkey.as_deref());
    let url = relay_url(relay);
    match state.names.nip05(q.name.as_deref(), operator, url.as_deref()).await {
        Ok(doc) => cors(Json(doc).into_response()),
        Err(e) => cors(ApiError::from(e).into_response()),
    }
}

/// `?pubkey=` of an admission request.
#[derive(serde::Deserialize)]
struct AdmissionQuery {
    pubkey: Option<String>,
}

/// GET `/relay/admission`: the price of writing to a paid relay and, for `?pubkey=`, whether
/// that key is admitted or the invoice it pays to be (counted against the caller's public
/// Lightning rate). JSON, from any origin; a browser gets a small page instead.
async fn admission(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Query(q): Query<AdmissionQuery>,
) -> Response {
    let Some(fees) = &state.admission else {
        return cors(ApiError::new(ErrorCode::NotFound, "this relay takes no admission fee").into_response());
    };
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let Some(pubkey) = q.pubkey.filter(|p| !p.trim().is_empty()) else {
        if browser {
            return admission_page(fees.amount_sats(), None).into_response();
        }
        return cors(Json(serde_json::json!({ "amount_sats": fees.amount_sats() })).into_response());
    };
    // Each request may issue an invoice: counted like the other public Lightning routes.
    if let Err(e) = state.auth.check_public_lightning_rate(peer.0.ip()) {
        return cors(ApiError::from(e).into_response());
    }
    let offer = match fees.offer(&pubkey).await {
        Ok(offer) => offer,
        Err(e) => return cors(ApiError::from(e).into_response()),
    };
    if browser {
        return admission_page(offer.amount_sats, Some(&offer)).into_response();
    }
    let mut body = serde_json::json!({
        "pubkey": offer.pubkey.to_hex(),
        "amount_sats": offer.amount_sats,
        "admitted": offer.admitted(),
    });
    if let Some(invoice) = &offer.invoice {
        body["payment_request"] = invoice.payment_request.clone().into();
        body["payment_hash"] = invoice.payment_hash.to_string().into();
        body["expires_at"] = (invoice.expires_at_ms / 1_000).into();
    }
    cors(Json(body).into_response())
}

/// The admission page: a form for a pubkey, then its invoice or its admission. Everything
/// shown is a number, hex or bech32, so nothing needs escaping.
fn admission_page(amount_sats: u64, offer: Option<&flash_nostr::AdmissionOffer>) -> axum::response::Html<String> {
    let status = match offer {
        None => String::new(),
        Some(o) => match &o.invoice {
            None => format!("<p><code>{}</code> is admitted: publish away.</p>", o.pubkey.to_hex()),
            Some(i) => format!(
                "<p>Pay this invoice to admit <code>{pk}</code>:</p>\
                 <p><a href=\"lightning:{pr}\"><code style=\"word-break:break-all\">{pr}</code></a></p>",
                pk = o.pubkey.to_hex(),
                pr = i.payment_request,
            ),
        },
    };
    axum::response::Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Relay admission</title></head><body>\
         <h1>Relay admission</h1><p>Writing to this relay costs {amount_sats} sats, once per key.</p>{status}\
         <form method=\"get\"><label>Your npub or hex pubkey <input name=\"pubkey\" size=\"70\"></label> \
         <button>Get an invoice</button></form></body></html>"
    ))
}

/// Runs one relay connection until either side closes it. Published events are committed
/// beside the loop (at most [`PUBLISHING_MAX`] at once), so a connection that waits for its
/// own commits still reads its messages and forwards live events meanwhile.
async fn serve(admission: Admission, socket: WebSocket) {
    let mut publishing = JoinSet::new();
    converse(admission, socket, &mut publishing).await;
    // Events already published finish (a group's state follows its event) though their
    // publisher is gone.
    publishing.detach_all();
}

/// The connection's loop, until either side closes it.
async fn converse(admission: Admission, mut socket: WebSocket, publishing: &mut JoinSet<String>) {
    let mut live = admission.relay().live();
    let mut conn = Connection::new(admission);
    if socket.send(Message::Text(conn.greeting().into())).await.is_err() {
        return;
    }
    loop {
        let replies = tokio::select! {
            msg = socket.recv(), if publishing.len() < PUBLISHING_MAX => match msg {
                Some(Ok(Message::Text(text))) => match conn.on_message(text.as_str()).await {
                    Step::Reply(replies) => replies,
                    Step::Publish(event) => {
                        publishing.spawn(event.finish());
                        continue;
                    }
                },
                Some(Ok(Message::Binary(_))) => vec![protocol::notice(&Reject::invalid("NOSTR messages are text frames"))],
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            Some(done) = publishing.join_next(), if !publishing.is_empty() => match done {
                Ok(ok) => vec![ok],
                Err(e) => {
                    tracing::error!(error = %e, "relay: a publish task failed");
                    continue;
                }
            },
            event = live.recv() => match event {
                Ok(event) => conn.on_live(&event).await,
                Err(RecvError::Lagged(n)) => conn.missed(n).into_iter().collect(),
                Err(RecvError::Closed) => return,
            },
        };
        for reply in replies {
            if socket.send(Message::Text(reply.into())).await.is_err() {
                return;
            }
        }
    }
}

/// The relay's URL, if this server runs one (the landing page, NIP-05 relay hints).
pub(crate) fn relay_url(relay: Option<&Relay>) -> Option<String> {
    relay.and_then(|r| r.url()).map(|u| u.to_string())
}
