//! Relay scale-out over NATS: every node publishes the events it accepts, and delivers the
//! events other nodes accepted to its own live subscribers. Stored events are already in the
//! shared database; NATS carries only the live fan-out (at most once, like a websocket).

use std::sync::Arc;

use futures_util::StreamExt;
use nostr::{Event, JsonUtil};
use tokio::sync::broadcast;

use crate::relay::Live;

/// The subject accepted events are published on.
pub const SUBJECT: &str = "flash.relay.events";
/// The header naming the node that accepted an event (a node skips its own).
const NODE_HEADER: &str = "Flash-Node";

/// NATS could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("NATS: {0}")]
pub struct ClusterError(String);

/// This node's link to the other relay nodes. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    client: async_nats::Client,
    node: String,
}

impl Cluster {
    /// Connects to NATS at `url` (`nats://host:port`).
    pub async fn connect(url: &str) -> Result<Cluster, ClusterError> {
        let client = async_nats::connect(url)
            .await
            .map_err(|e| ClusterError(e.to_string()))?;
        Ok(Cluster {
            client,
            node: uuid::Uuid::new_v4().to_string(),
        })
    }

    /// Tells the other nodes about an event this node accepted. Best effort: a lost message
    /// costs their live subscribers one event, which they still find by querying.
    pub(crate) async fn publish(&self, live: &Live) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(NODE_HEADER, self.node.as_str());
        let payload = live.raw.clone().into_bytes().into();
        if let Err(e) = self.client.publish_with_headers(SUBJECT, headers, payload).await {
            tracing::warn!(error = %e, "relay: publishing to NATS failed");
        }
    }

    /// Delivers the events other nodes accepted to this node's live subscribers, until the
    /// subscription or the relay ends.
    pub(crate) async fn deliver(self, live: broadcast::Sender<Arc<Live>>) {
        let mut messages = match self.client.subscribe(SUBJECT).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "relay: cannot subscribe to NATS; other nodes' events will not be live here");
                return;
            }
        };
        while let Some(msg) = messages.next().await {
            let from = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(NODE_HEADER))
                .map(|v| v.as_str());
            if from == Some(self.node.as_str()) {
                continue;
            }
            let Ok(raw) = String::from_utf8(msg.payload.to_vec()) else {
                continue;
            };
            match Event::from_json(&raw) {
                // Nodes share the database and trust each other: the accepting node verified it.
                // No receivers is not an error: nobody listens on this node right now.
                Ok(event) => {
                    let _ = live.send(Arc::new(Live { event, raw }));
                }
                Err(e) => tracing::warn!(error = %e, "relay: unreadable event from NATS"),
            }
        }
    }
}
