-- NOSTR payments, second step. Shared by both dialects as is.

-- Paid relay admission (`[relay] write_policy = "paid"`): the invoices each pubkey was given.
-- A pubkey may write once one of them is paid; that fact is the invoice's own `paid_at`, so
-- admission follows the ledger and needs no state of its own.
CREATE TABLE nostr_admissions (
    payment_hash TEXT PRIMARY KEY REFERENCES ln_invoices (payment_hash),
    pubkey       TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX nostr_admissions_by_pubkey ON nostr_admissions (pubkey);

-- Wallet-connect payments whose budget reservation is still open, for the sweep that
-- finishes those answered while in flight or cut off by a restart.
CREATE INDEX nwc_requests_open ON nwc_requests (created_at) WHERE state = 'reserved';
