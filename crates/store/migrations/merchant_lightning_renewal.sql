-- An invoice's Lightning method is renewed after a partial payment: a new BOLT11 for what is
-- left due replaces the one for the whole amount (as BTCPay does). The replaced row stays, with
-- `superseded_at` set, so a payment that still reaches it is found and accounted; an invoice
-- has at most one current row per method. `amount_sat` is what a destination asks (a BOLT11's
-- amount; NULL for an address and for a BOLT11 without one).
UPDATE merchant_invoice_methods SET amount_sat = (
    SELECT i.due_sat FROM merchant_invoices i WHERE i.id = merchant_invoice_methods.invoice_id
) WHERE method = 'BTC-LN';
CREATE UNIQUE INDEX merchant_invoice_methods_current ON merchant_invoice_methods (invoice_id, method)
    WHERE superseded_at IS NULL;
CREATE INDEX merchant_invoice_methods_by_invoice ON merchant_invoice_methods (invoice_id);
