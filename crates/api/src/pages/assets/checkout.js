// Flash's checkout page: switches between the ways to pay, copies a destination, counts down
// to expiry, and follows the invoice's state from this server's event stream
// (/i/{id}/status), replacing the state panel with what each event carries. Nothing is loaded
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

  localTimes(panel);
  if (root.getAttribute("data-redirect")) apply({ stage: root.getAttribute("data-stage"), redirect: root.getAttribute("data-redirect") });
  tick();
  setInterval(tick, 1000);
  if (!finalStages[root.getAttribute("data-stage")]) follow();
})();
