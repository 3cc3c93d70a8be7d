-- Paid relay admission (`[relay] write_policy = "paid"`): the invoices each pubkey was given.
-- A pubkey may write once one of them is paid; that fact is the invoice's own `paid_at`, so
-- admission follows the ledger and needs no state of its own. Shared by both dialects as is.
CREATE TABLE nostr_admissions (
    payment_hash TEXT PRIMARY KEY REFERENCES ln_invoices (payment_hash),
    pubkey       TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX nostr_admissions_by_pubkey ON nostr_admissions (pubkey);
