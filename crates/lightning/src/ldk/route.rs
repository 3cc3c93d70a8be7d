//! The routing-fee estimate of the `ldk` backend. ldk-node has no "estimate route fee" call
//! (LDK's router is not exposed, and its probes spend liquidity), so the estimate is computed
//! here: the cheapest fee over the channel graph ldk-node knows (gossip) plus the invoice's route
//! hints, from the peers of our usable channels to the payee, with LDK's fee formula
//! (`base + amount * ppm / 1_000_000` per hop, nothing for our own first hop).
//!
//! It is an approximation and says so: LDK's router weighs success probability too, so a real
//! payment may take a dearer path (never above the caller's fee cap), and the graph may be stale.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// A node, as its 33-byte compressed public key.
pub(super) type NodeKey = [u8; 33];

/// One hop a payment could take into a node: `from` forwards to it for this fee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Edge {
    /// The forwarding node.
    pub from: NodeKey,
    /// Its base fee, msat.
    pub base_msat: u32,
    /// Its proportional fee, parts per million.
    pub ppm: u32,
    /// The smallest HTLC it forwards, msat.
    pub htlc_min_msat: u64,
    /// The largest HTLC it forwards, msat.
    pub htlc_max_msat: u64,
}

/// Longest path considered (LDK's own limit is similar).
const MAX_HOPS: u32 = 20;

/// LDK's fee for forwarding `amount_msat`, or `None` on overflow.
fn hop_fee(edge: &Edge, amount_msat: u64) -> Option<u64> {
    let proportional = u128::from(amount_msat) * u128::from(edge.ppm) / 1_000_000;
    u64::try_from(proportional).ok()?.checked_add(u64::from(edge.base_msat))
}

/// The cheapest total routing fee for `payee` to receive `amount_msat`, when the first hop is
/// one of our channels: `first_hops` maps each peer to the most we can send it now. `edges_into`
/// lists the hops into a node. `None` when no path is known.
pub(super) fn cheapest_fee(
    amount_msat: u64,
    payee: NodeKey,
    first_hops: &HashMap<NodeKey, u64>,
    mut edges_into: impl FnMut(&NodeKey) -> Vec<Edge>,
) -> Option<u64> {
    // Dijkstra backwards from the payee: `need[n]` is the least that must reach node `n` for
    // the payee to receive the amount. Fees only grow along a path, so the first peer of ours
    // popped with enough outbound capacity is the cheapest.
    let mut need: HashMap<NodeKey, u64> = HashMap::new();
    let mut queue = BinaryHeap::new();
    need.insert(payee, amount_msat);
    queue.push(Reverse((amount_msat, 0u32, payee)));
    while let Some(Reverse((amount, hops, node))) = queue.pop() {
        if need.get(&node).is_some_and(|best| *best < amount) {
            continue;
        }
        if first_hops.get(&node).is_some_and(|capacity| *capacity >= amount) {
            return Some(amount - amount_msat);
        }
        if hops >= MAX_HOPS {
            continue;
        }
        for edge in edges_into(&node) {
            if amount < edge.htlc_min_msat || amount > edge.htlc_max_msat {
                continue;
            }
            let Some(before) = hop_fee(&edge, amount).and_then(|fee| amount.checked_add(fee)) else {
                continue;
            };
            if need.get(&edge.from).is_none_or(|best| before < *best) {
                need.insert(edge.from, before);
                queue.push(Reverse((before, hops + 1, edge.from)));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> NodeKey {
        let mut k = [n; 33];
        k[0] = 2;
        k
    }

    fn edge(from: u8, base_msat: u32, ppm: u32) -> Edge {
        Edge {
            from: key(from),
            base_msat,
            ppm,
            htlc_min_msat: 1,
            htlc_max_msat: u64::MAX,
        }
    }

    #[test]
    fn a_direct_peer_costs_nothing() {
        let first = HashMap::from([(key(9), 1_000_000)]);
        assert_eq!(cheapest_fee(500_000, key(9), &first, |_| Vec::new()), Some(0));
        // Without the outbound capacity, the channel is no path.
        assert_eq!(cheapest_fee(2_000_000, key(9), &first, |_| Vec::new()), None);
    }

    #[test]
    fn picks_the_cheapest_path_with_ldk_fees() {
        // us -> 1 -> 3 (payee) costs 1000 + 1% ; us -> 2 -> 4 -> 3 costs less.
        let first = HashMap::from([(key(1), u64::MAX), (key(2), u64::MAX)]);
        let graph = |n: &NodeKey| match n[1] {
            3 => vec![edge(1, 1_000, 10_000), edge(4, 100, 100)],
            4 => vec![edge(2, 200, 100)],
            _ => Vec::new(),
        };
        // 4 forwards 1_000_000 for 100 + 100 = 200; 2 forwards 1_000_200 for 200 + 100 = 300.
        assert_eq!(cheapest_fee(1_000_000, key(3), &first, graph), Some(500));
    }

    #[test]
    fn respects_htlc_limits_and_reports_no_path() {
        let first = HashMap::from([(key(1), u64::MAX)]);
        let small = |n: &NodeKey| match n[1] {
            3 => vec![Edge {
                htlc_max_msat: 10_000,
                ..edge(1, 0, 0)
            }],
            _ => Vec::new(),
        };
        assert_eq!(cheapest_fee(1_000_000, key(3), &first, small), None);
        assert_eq!(cheapest_fee(5_000, key(3), &first, small), Some(0));
        assert_eq!(cheapest_fee(5_000, key(7), &first, |_| Vec::new()), None);
    }
}
