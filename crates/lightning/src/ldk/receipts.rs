//! The adapter's own durable record of the invoices it issued: their preimages (every invoice is
//! claimed by hand, so that it can be cancelled), what became of them, and the settlements with
//! their settle indexes.
//!
//! One JSON object per line, appended and `fsync`ed before the change is acted on (a claim, a
//! cancellation, an ldk-node event marked handled), so what callers were told never runs ahead
//! of the file. A settlement's settle index is its position among the settlements in the file:
//! strictly increasing, and the same after a restart. A last line torn by a crash is cut off
//! on load; damage anywhere else stops the node rather than guess.
//!
//! The file holds preimages, so it is created with mode 0600.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flash_core::lightning::{Hash32, LightningError, PaymentHash, Preimage, SettledInvoice};
use flash_core::Network;
use serde::{Deserialize, Serialize};

/// The file's name inside the node's data directory.
pub(super) const FILE_NAME: &str = "flash-receipts.jsonl";

/// An open invoice is forgotten (in memory; the file keeps it) this long after it expired:
/// LDK refuses payments to expired invoices, so its preimage is no longer needed.
const FORGET_AFTER_EXPIRY_SECS: u64 = 24 * 3_600;

/// What became of an invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Status {
    /// Issued, not paid.
    Open,
    /// A payment arrived and is being claimed: it can no longer be cancelled.
    Claiming,
    /// Cancelled: payments to it are failed back.
    Cancelled,
    /// Paid.
    Settled,
}

struct OwnInvoice {
    preimage: Preimage,
    expires_at: u64,
    status: Status,
}

/// What to do with a payment that arrived for a hash.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Arrival {
    /// Claim it with this preimage.
    Claim(Preimage),
    /// Fail it back: the invoice is unknown, cancelled or already paid.
    Refuse(&'static str),
}

/// One line of the file.
#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Record {
    /// The first line: the network the file belongs to.
    Opened { network: String },
    /// An invoice was issued (written before ldk-node registers its hash).
    Invoice {
        payment_hash: String,
        preimage: String,
        expires_at: u64,
    },
    /// A payment to it is being claimed.
    Claiming { payment_hash: String },
    /// A claim could not be made; the invoice is open again.
    Reopened { payment_hash: String },
    /// It was cancelled.
    Cancelled { payment_hash: String },
    /// It was paid; the settle index is the position among settlements.
    Settled { payment_hash: String, msat: u64 },
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> LightningError {
    LightningError::Unavailable(format!("LDK receipts file {}: {e}", path.display()))
}

/// The record, loaded and open for appending.
pub(super) struct Receipts {
    path: PathBuf,
    file: File,
    /// Length of the file up to its last complete line.
    len: u64,
    invoices: HashMap<PaymentHash, OwnInvoice>,
    settled: Vec<SettledInvoice>,
    settled_hashes: HashSet<PaymentHash>,
}

impl Receipts {
    /// Opens (or creates) the record in `dir` for `network`; `now_secs` decides which expired
    /// invoices are forgotten.
    pub(super) fn open(dir: &Path, network: Network, now_secs: u64) -> Result<Receipts, LightningError> {
        let path = dir.join(FILE_NAME);
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(|e| io_error(&path, e))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(|e| io_error(&path, e))?;
        let mut receipts = Receipts {
            path,
            file,
            len: 0,
            invoices: HashMap::new(),
            settled: Vec::new(),
            settled_hashes: HashSet::new(),
        };
        if text.is_empty() {
            receipts.append(&Record::Opened {
                network: network.as_str().to_string(),
            })?;
            if let Some(parent) = receipts.path.parent() {
                // Make the new file's directory entry durable too.
                if let Ok(dir) = File::open(parent) {
                    let _ = dir.sync_all();
                }
            }
            return Ok(receipts);
        }
        receipts.replay(&text, network)?;
        receipts.forget_expired(now_secs);
        Ok(receipts)
    }

    fn replay(&mut self, text: &[u8], network: Network) -> Result<(), LightningError> {
        let mut offset = 0usize;
        let mut first = true;
        while offset < text.len() {
            let rest = &text[offset..];
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                // A last line without its newline: torn by a crash while it was written, so
                // nothing was acted on. Cut it off.
                tracing::warn!(
                    file = %self.path.display(),
                    bytes = rest.len(),
                    "LDK receipts: dropping a torn last line"
                );
                break;
            };
            let line = &rest[..end];
            let record: Record = serde_json::from_slice(line).map_err(|e| {
                io_error(
                    &self.path,
                    format!("unreadable line at byte {offset} ({e}); refusing to guess"),
                )
            })?;
            match (first, &record) {
                (true, Record::Opened { network: logged }) if logged != network.as_str() => {
                    return Err(LightningError::InvalidInput(format!(
                        "the LDK node's data in {} is for {logged}, not {network}",
                        self.path.display()
                    )))
                }
                (true, Record::Opened { .. }) => {}
                (true, _) => return Err(io_error(&self.path, "does not start with its network")),
                (false, _) => self.apply(record)?,
            }
            first = false;
            offset += end + 1;
        }
        self.len = offset as u64;
        let actual = self.file.metadata().map_err(|e| io_error(&self.path, e))?.len();
        if actual != self.len {
            self.file.set_len(self.len).map_err(|e| io_error(&self.path, e))?;
            self.file.sync_data().map_err(|e| io_error(&self.path, e))?;
        }
        Ok(())
    }

    fn apply(&mut self, record: Record) -> Result<(), LightningError> {
        let parse = |h: &str| {
            h.parse::<Hash32>()
                .map_err(|_| io_error(&self.path, format!("bad hash {h:?}")))
        };
        match record {
            Record::Opened { .. } => return Err(io_error(&self.path, "a second `opened` line")),
            Record::Invoice {
                payment_hash,
                preimage,
                expires_at,
            } => {
                let hash = parse(&payment_hash)?;
                let preimage = parse(&preimage)?;
                self.invoices.insert(
                    hash,
                    OwnInvoice {
                        preimage,
                        expires_at,
                        status: Status::Open,
                    },
                );
            }
            Record::Claiming { payment_hash } => self.set_status(parse(&payment_hash)?, Status::Claiming),
            Record::Reopened { payment_hash } => self.set_status(parse(&payment_hash)?, Status::Open),
            Record::Cancelled { payment_hash } => self.set_status(parse(&payment_hash)?, Status::Cancelled),
            Record::Settled { payment_hash, msat } => {
                let hash = parse(&payment_hash)?;
                self.push_settled(hash, msat);
            }
        }
        Ok(())
    }

    fn set_status(&mut self, hash: PaymentHash, status: Status) {
        if let Some(own) = self.invoices.get_mut(&hash) {
            own.status = status;
        }
    }

    fn push_settled(&mut self, hash: PaymentHash, msat: u64) -> SettledInvoice {
        self.set_status(hash, Status::Settled);
        self.settled_hashes.insert(hash);
        let settled = SettledInvoice {
            payment_hash: hash,
            amount_received_msat: msat,
            settle_index: self.settled.len() as u64 + 1,
        };
        self.settled.push(settled.clone());
        settled
    }

    /// Drops open invoices that expired long ago from memory.
    fn forget_expired(&mut self, now_secs: u64) {
        self.invoices.retain(|_, own| {
            own.status != Status::Open || own.expires_at.saturating_add(FORGET_AFTER_EXPIRY_SECS) > now_secs
        });
    }

    /// Appends one record and makes it durable; on failure the file is cut back to its last
    /// complete line.
    fn append(&mut self, record: &Record) -> Result<(), LightningError> {
        let mut line = serde_json::to_vec(record).map_err(|e| io_error(&self.path, e))?;
        line.push(b'\n');
        let written = self
            .file
            .seek(SeekFrom::End(0))
            .and_then(|_| self.file.write_all(&line))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.set_len(self.len);
            return Err(io_error(&self.path, e));
        }
        self.len += line.len() as u64;
        Ok(())
    }

    /// Records a new invoice (before ldk-node learns its hash, so a payment to it always finds
    /// its preimage here).
    pub(super) fn issue(
        &mut self,
        hash: PaymentHash,
        preimage: Preimage,
        expires_at: u64,
    ) -> Result<(), LightningError> {
        if self.invoices.contains_key(&hash) || self.settled_hashes.contains(&hash) {
            return Err(LightningError::InvalidInput("payment hash already used".into()));
        }
        self.append(&Record::Invoice {
            payment_hash: hash.to_string(),
            preimage: preimage.to_string(),
            expires_at,
        })?;
        self.invoices.insert(
            hash,
            OwnInvoice {
                preimage,
                expires_at,
                status: Status::Open,
            },
        );
        Ok(())
    }

    /// A payment to `hash` arrived: claim it (recording that first) or refuse it.
    pub(super) fn arrival(&mut self, hash: PaymentHash) -> Result<Arrival, LightningError> {
        let Some(own) = self.invoices.get(&hash) else {
            return Ok(Arrival::Refuse("no open invoice of this node has that hash"));
        };
        match own.status {
            Status::Claiming => Ok(Arrival::Claim(own.preimage)),
            Status::Cancelled => Ok(Arrival::Refuse("the invoice was cancelled")),
            Status::Settled => Ok(Arrival::Refuse("the invoice was already paid")),
            Status::Open => {
                let preimage = own.preimage;
                self.append(&Record::Claiming {
                    payment_hash: hash.to_string(),
                })?;
                self.set_status(hash, Status::Claiming);
                Ok(Arrival::Claim(preimage))
            }
        }
    }

    /// A claim could not be made: the invoice is open (and cancellable) again.
    pub(super) fn reopen(&mut self, hash: PaymentHash) -> Result<(), LightningError> {
        if self.status(hash) == Some(Status::Claiming) {
            self.append(&Record::Reopened {
                payment_hash: hash.to_string(),
            })?;
            self.set_status(hash, Status::Open);
        }
        Ok(())
    }

    /// Cancels an open invoice. `Ok(true)` when it was open until now, `Ok(false)` when it was
    /// cancelled already.
    pub(super) fn cancel(&mut self, hash: PaymentHash) -> Result<bool, LightningError> {
        if self.settled_hashes.contains(&hash) {
            return Err(LightningError::AlreadyPaid);
        }
        match self.status(hash) {
            None => Err(LightningError::NotFound),
            Some(Status::Claiming | Status::Settled) => Err(LightningError::AlreadyPaid),
            Some(Status::Cancelled) => Ok(false),
            Some(Status::Open) => {
                self.append(&Record::Cancelled {
                    payment_hash: hash.to_string(),
                })?;
                self.set_status(hash, Status::Cancelled);
                Ok(true)
            }
        }
    }

    /// A payment to one of our invoices was received: records it with the next settle index.
    /// `None` when it was recorded before (an ldk-node event replayed after a restart) or the
    /// hash is not one of our invoices.
    pub(super) fn settle(&mut self, hash: PaymentHash, msat: u64) -> Result<Option<SettledInvoice>, LightningError> {
        if self.settled_hashes.contains(&hash) || !self.invoices.contains_key(&hash) {
            return Ok(None);
        }
        self.append(&Record::Settled {
            payment_hash: hash.to_string(),
            msat,
        })?;
        Ok(Some(self.push_settled(hash, msat)))
    }

    /// Where an invoice stands, if it is one of ours (and not long expired).
    pub(super) fn status(&self, hash: PaymentHash) -> Option<Status> {
        self.invoices.get(&hash).map(|own| own.status)
    }

    /// The first settlement with a settle index above `after_index`.
    pub(super) fn first_settled_after(&self, after_index: u64) -> Option<SettledInvoice> {
        let from = usize::try_from(after_index).unwrap_or(usize::MAX);
        self.settled.get(from).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flash-ldk-receipts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn settlements_keep_their_indexes_across_reopening() {
        let dir = temp_dir("reopen");
        let mut r = Receipts::open(&dir, Network::Regtest, 0).expect("open");
        let (a, b, c) = (Hash32([1; 32]), Hash32([2; 32]), Hash32([3; 32]));
        r.issue(a, Hash32([11; 32]), 100).expect("issue a");
        r.issue(b, Hash32([12; 32]), 100).expect("issue b");
        r.issue(c, Hash32([13; 32]), 100).expect("issue c");
        assert_eq!(r.arrival(b).expect("arrival"), Arrival::Claim(Hash32([12; 32])));
        assert_eq!(
            r.cancel(b),
            Err(LightningError::AlreadyPaid),
            "a claim in progress is paid"
        );
        assert_eq!(r.settle(b, 5_000).expect("settle b").map(|s| s.settle_index), Some(1));
        assert_eq!(r.settle(b, 5_000).expect("replayed"), None, "never twice");
        assert_eq!(r.cancel(a), Ok(true));
        assert_eq!(r.cancel(a), Ok(false));
        assert_eq!(
            r.arrival(a).expect("arrival"),
            Arrival::Refuse("the invoice was cancelled")
        );
        r.arrival(c).expect("arrival c");
        assert_eq!(r.settle(c, 7_000).expect("settle c").map(|s| s.settle_index), Some(2));
        assert_eq!(r.settle(Hash32([9; 32]), 1).expect("unknown"), None);
        drop(r);

        let r = Receipts::open(&dir, Network::Regtest, 0).expect("reopen");
        assert_eq!(
            r.first_settled_after(0).map(|s| (s.payment_hash, s.settle_index)),
            Some((b, 1))
        );
        assert_eq!(
            r.first_settled_after(1).map(|s| (s.payment_hash, s.settle_index)),
            Some((c, 2))
        );
        assert_eq!(r.first_settled_after(2), None);
        assert_eq!(r.status(a), Some(Status::Cancelled));
        assert!(
            Receipts::open(&dir, Network::Mainnet, 0).is_err(),
            "another network's data"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_last_line_is_cut_and_damage_elsewhere_refused() {
        let dir = temp_dir("torn");
        let mut r = Receipts::open(&dir, Network::Regtest, 0).expect("open");
        r.issue(Hash32([1; 32]), Hash32([2; 32]), 100).expect("issue");
        drop(r);
        let path = dir.join(FILE_NAME);
        let mut file = OpenOptions::new().append(true).open(&path).expect("file");
        file.write_all(b"{\"event\":\"settled\",\"payment_ha")
            .expect("torn write");
        drop(file);
        let mut r = Receipts::open(&dir, Network::Regtest, 0).expect("torn line dropped");
        assert_eq!(r.first_settled_after(0), None);
        r.arrival(Hash32([1; 32])).expect("arrival");
        assert!(r.settle(Hash32([1; 32]), 1_000).expect("settle").is_some());
        drop(r);
        let r = Receipts::open(&dir, Network::Regtest, 0).expect("clean after the cut");
        assert_eq!(r.first_settled_after(0).map(|s| s.settle_index), Some(1));
        drop(r);

        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, text.replacen("\"invoice\"", "\"invo", 1)).expect("damage");
        assert!(Receipts::open(&dir, Network::Regtest, 0).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn long_expired_open_invoices_are_forgotten() {
        let dir = temp_dir("forget");
        let mut r = Receipts::open(&dir, Network::Regtest, 0).expect("open");
        r.issue(Hash32([1; 32]), Hash32([2; 32]), 100).expect("issue");
        r.issue(Hash32([3; 32]), Hash32([4; 32]), 100).expect("issue");
        r.cancel(Hash32([3; 32])).expect("cancel");
        drop(r);
        let later = 100 + FORGET_AFTER_EXPIRY_SECS + 1;
        let r = Receipts::open(&dir, Network::Regtest, later).expect("reopen");
        assert_eq!(r.status(Hash32([1; 32])), None);
        assert_eq!(r.status(Hash32([3; 32])), Some(Status::Cancelled));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
