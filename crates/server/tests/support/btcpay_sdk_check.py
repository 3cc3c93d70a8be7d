"""Drives Flash's Greenfield API with btcpay-python-sdk (PyPI `btcpay-python-sdk`), unchanged.

Reads BTCPAY_URL, BTCPAY_KEY and BTCPAY_STORE. Registers a webhook (through the SDK's own
client) to a receiver here that checks `BTCPay-Sig` as BTCPay documents it, creates an invoice
with the SDK, reads it back and lists it, then prints one JSON line with the invoice and its
BOLT11 and waits (up to 60 s) for the invoice to be settled by someone paying it; finally
prints one JSON line with every delivery received and whether its signature verified.
"""

import hashlib
import hmac
import http.server
import json
import os
import threading
import time

import btcpay

btcpay.api_key = os.environ["BTCPAY_KEY"]
btcpay.host_url = os.environ["BTCPAY_URL"].rstrip("/") + "/"
btcpay.store_id = os.environ["BTCPAY_STORE"]

from btcpay.client import BTCPayClient  # noqa: E402 (reads the settings above)
from btcpay.resources import Invoices  # noqa: E402

SECRET = "flash-sdk-check-secret"
received = []


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        verified = hmac.compare_digest(self.headers.get("BTCPay-Sig", ""), expected)
        received.append((verified, json.loads(body)))
        self.send_response(200 if verified else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()

hook = BTCPayClient()._post_request(
    "/stores/%s/webhooks" % btcpay.store_id,
    {"url": "http://127.0.0.1:%d/btcpay" % server.server_port, "secret": SECRET},
)
invoice = Invoices.create_invoice(amount="5.00", currency="USD", metadata={"orderId": "sdk-1"})
again = Invoices.get_invoice(invoice["id"])
assert again["id"] == invoice["id"], again
assert again["metadata"]["orderId"] == "sdk-1", again
listed = Invoices.get_invoices()
methods = Invoices.get_invoice_payment_methods(invoice["id"])
bolt11 = next(m["destination"] for m in methods if m["paymentMethodId"] == "BTC-LN")
print(json.dumps({
    "invoice": invoice["id"],
    "status": again["status"],
    "listed": [i["id"] for i in listed],
    "bolt11": bolt11,
    "webhook": hook["id"],
}), flush=True)

deadline = time.time() + 60
while time.time() < deadline and not any(b.get("type") == "InvoiceSettled" for _, b in received):
    time.sleep(0.1)
settled = Invoices.get_invoice(invoice["id"])
print(json.dumps({
    "status": settled["status"],
    "deliveries": [
        {"verified": ok, "type": b.get("type"), "invoiceId": b.get("invoiceId"), "webhookId": b.get("webhookId")}
        for ok, b in received
    ],
}), flush=True)
