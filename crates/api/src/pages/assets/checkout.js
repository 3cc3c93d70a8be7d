// Flash's checkout page: switches between the ways to pay, copies a destination, pays with a
// Flash Card (Web NFC, or its link pasted), counts down to expiry, and follows the invoice's
// state from this server's event stream (/i/{id}/status), replacing the state panel with what
// each event carries. Nothing is loaded
// from elsewhere.
(function () {
  "use strict";
  var root = document.querySelector(".checkout[data-invoice]");
  if (!root) return;
  var id = root.getAttribute("data-invoice");
  var panel = document.getElementById("state");
  var countdown = document.getElementById("countdown");
  var methods = document.getElementById("methods");
  var shownMethods = methods ? methods.innerHTML : "";
  var finalStages = { settled: true, expired: true, "paid-late": true, invalid: true };
  var deadline = countdown ? Date.now() + Number(countdown.getAttribute("data-expires-in")) * 1000 : 0;
  var redirecting = false;

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  // The countdown, from the server's "seconds left" (not this device's clock).
  function tick() {
    if (!countdown) return;
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    if (left === 0) {
      countdown.textContent = "Expired";
      countdown.classList.add("over");
      return;
    }
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    countdown.textContent = "Expires in " + (h ? h + ":" + pad(m) : String(m)) + ":" + pad(s);
    countdown.classList.toggle("soon", left <= 60);
  }

  // Times in the payer's own time zone.
  function localTimes(scope) {
    var times = scope.querySelectorAll("time[data-ms]");
    for (var i = 0; i < times.length; i++) {
      var ms = Number(times[i].getAttribute("data-ms"));
      if (ms > 0) times[i].textContent = new Date(ms).toLocaleString();
    }
  }

  function apply(update) {
    root.setAttribute("data-stage", update.stage);
    if (typeof update.html === "string") {
      panel.innerHTML = update.html;
      localTimes(panel);
    }
    // Where to pay changes once part is paid; the same answer keeps the tab chosen.
    if (methods && typeof update.methods === "string" && update.methods !== shownMethods) {
      methods.innerHTML = update.methods;
      shownMethods = methods.innerHTML;
    }
    if (typeof update.expiresInSecs === "number") {
      deadline = Date.now() + update.expiresInSecs * 1000;
      tick();
    }
    if (update.redirect && !redirecting) {
      redirecting = true;
      // A moment to see "Paid" first.
      setTimeout(function () { window.location.assign(update.redirect); }, 2000);
    }
  }

  function follow() {
    if (!window.EventSource) return;
    var source = new EventSource("/i/" + encodeURIComponent(id) + "/status");
    source.addEventListener("status", function (e) {
      var update;
      try { update = JSON.parse(e.data); } catch (err) { return; }
      apply(update);
      if (finalStages[update.stage]) source.close();
    });
    source.onerror = function () {
      // The browser retries a dropped stream itself; one the server refused is retried here.
      if (source.readyState === EventSource.CLOSED) setTimeout(follow, 5000);
    };
  }

  // Tabs: one way to pay shown at a time.
  function select(tab) {
    var tabs = root.querySelectorAll("[role=tab]");
    for (var i = 0; i < tabs.length; i++) {
      var on = tabs[i] === tab;
      tabs[i].setAttribute("aria-selected", on ? "true" : "false");
      var target = document.getElementById(tabs[i].getAttribute("aria-controls"));
      if (target) target.hidden = !on;
    }
  }

  // Copying without the Clipboard API: a selected text area, off screen.
  function copyByHand(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }
  // Clicks: a tab, or a copy button (the Clipboard API where the page is a secure context).
  root.addEventListener("click", function (e) {
    if (!e.target.closest) return;
    var tab = e.target.closest("[role=tab]");
    if (tab) { select(tab); return; }
    var button = e.target.closest("button.copy");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.textContent;
    var said = function (label) {
      button.textContent = label;
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    var fallback = function () { said(copyByHand(text) ? "Copied" : "Select and copy"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { said("Copied"); }, fallback);
    } else {
      fallback();
    }
  });

  // Paying with a Flash Card: its link, read with Web NFC where the browser has it or pasted,
  // is posted to /i/{id}/card; a card that wants its PIN for this amount gets a PIN field.
  var cardForm = document.getElementById("card-form");
  var pinForm = document.getElementById("card-pin-form");
  var cardMessage = document.getElementById("card-message");
  var cardTap = document.getElementById("card-tap");
  var tapK1 = null;

  function say(text, isError) {
    cardMessage.textContent = text;
    cardMessage.classList.toggle("error", !!isError);
  }

  function payWithCard(body) {
    say("Paying…");
    fetch("/i/" + encodeURIComponent(id) + "/card", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (answer) { return answer; }, function () { return { error: "the server did not answer: try again" }; });
    }).then(function (answer) {
      if (answer.paid) {
        say("Paid with the card.");
        pinForm.hidden = true;
      } else if (answer.sent) {
        say("Sent to the card's bank: waiting for its payment.");
      } else if (answer.awaitingApproval) {
        say("The card's pull payment pays once its store approves the payout.");
        pinForm.hidden = true;
      } else if (answer.pin) {
        tapK1 = answer.k1;
        cardForm.hidden = true;
        pinForm.hidden = false;
        document.getElementById("card-pin").focus();
        say("Enter the card's PIN.");
      } else {
        say(answer.error || "the card could not pay", true);
      }
    }, function () { say("no connection to the server: try again", true); });
  }

  if (cardForm) {
    cardForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var link = document.getElementById("card-link").value.trim();
      if (link) payWithCard({ lnurlw: link });
    });
    pinForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var pin = document.getElementById("card-pin");
      if (tapK1 && pin.value) payWithCard({ k1: tapK1, pin: pin.value });
      pin.value = "";
    });
    if ("NDEFReader" in window) {
      cardTap.hidden = false;
      cardTap.addEventListener("click", function () {
        var reader = new window.NDEFReader();
        reader.scan().then(function () {
          say("Hold the card to the phone.");
          reader.onreading = function (event) {
            var records = event.message.records;
            for (var i = 0; i < records.length; i++) {
              if (records[i].recordType !== "url") continue;
              var link = new TextDecoder().decode(records[i].data);
              if (/^lnurlw:/i.test(link)) { payWithCard({ lnurlw: link }); return; }
            }
            say("this card holds no payment link", true);
          };
        }, function () { say("NFC is off or not allowed: paste the card's link instead", true); });
      });
    }
  }

  localTimes(panel);
  if (root.getAttribute("data-redirect")) apply({ stage: root.getAttribute("data-stage"), redirect: root.getAttribute("data-redirect") });
  tick();
  setInterval(tick, 1000);
  if (!finalStages[root.getAttribute("data-stage")]) follow();
})();
