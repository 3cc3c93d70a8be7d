// Flash's point-of-sale page: the keypad, the items' counts, the tip and the discount, and a
// running total shown to the buyer. Paying posts what was chosen (item ids and counts, the
// typed amount, the percentages) to this server, which prices the order itself, then goes to
// the invoice's checkout page. Amounts are counted in the currency's minor units (integers).
(function () {
  "use strict";
  var root = document.querySelector(".pos[data-app]");
  if (!root) return;
  var app = root.getAttribute("data-app");
  var keypad = root.getAttribute("data-view") === "keypad";
  var prefix = root.getAttribute("data-prefix");
  var suffix = root.getAttribute("data-suffix");
  var digits = Number(root.getAttribute("data-digits"));
  var pad = root.getAttribute("data-pad") === "true";
  var MAX_DIGITS = 12;

  var amount = document.getElementById("amount");
  var custom = document.getElementById("custom");
  var discount = document.getElementById("discount");
  var payButton = document.getElementById("pay");
  var error = document.getElementById("error");
  var typed = "";
  var tip = 0;
  var busy = false;

  function group(int) { return int.replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

  // A decimal text ("12.5") as minor units (1250); "" is 0; NaN when it is not an amount of
  // this currency.
  function toMinor(text) {
    var m = /^(\d*)(?:\.(\d*))?$/.exec(text.trim());
    if (!m) return NaN;
    var frac = m[2] || "";
    if (frac.length > digits) return NaN;
    while (frac.length < digits) frac += "0";
    var n = Number((m[1] || "0") + frac);
    return Number.isSafeInteger(n) ? n : NaN;
  }

  // Minor units as a decimal text: 1250 → "12.50" (or "12.5" where decimals are not padded).
  function toDecimal(minor) {
    var s = String(minor);
    if (!digits) return s;
    while (s.length <= digits) s = "0" + s;
    var int = s.slice(0, -digits), frac = s.slice(-digits);
    if (!pad) frac = frac.replace(/0+$/, "");
    return frac ? int + "." + frac : int;
  }

  function show(decimal) {
    var parts = decimal.split(".");
    return prefix + group(parts[0]) + (parts.length > 1 ? "." + parts[1] : "") + suffix;
  }

  function money(minor) { return show(toDecimal(minor)); }

  function items() { return root.querySelectorAll(".pos-item[data-id]"); }

  function count(item) { return Number(item.getAttribute("data-count") || "0"); }

  // An item's unit price in minor units: the buyer's for a top-up (its field), else the listed.
  function unitPrice(item) {
    var field = item.querySelector(".pos-item-price");
    return toMinor(field ? field.value : item.getAttribute("data-price") || "0");
  }

  // Counts, the typed or custom amount, and the percentages, as the server reads them.
  function entered() { return keypad ? typed : (custom ? custom.value : ""); }

  function discountPercent() {
    if (!discount || discount.value.trim() === "") return 0;
    var p = Number(discount.value);
    return Number.isInteger(p) && p >= 0 && p <= 100 ? p : NaN;
  }

  function order() {
    var o = {}, cart = [];
    var list = items();
    for (var i = 0; i < list.length; i++) {
      if (count(list[i]) === 0) continue;
      var line = { id: list[i].getAttribute("data-id"), count: count(list[i]) };
      if (list[i].querySelector(".pos-item-price")) line.price = toDecimal(unitPrice(list[i]));
      cart.push(line);
    }
    if (cart.length) o.cart = cart;
    var minor = toMinor(entered());
    if (minor > 0) o.amount = toDecimal(minor);
    if (tip) o.tipPercentage = tip;
    if (discountPercent() > 0) o.discountPercentage = discountPercent();
    return o;
  }

  function row(name, minor, sign) {
    var cells = root.querySelectorAll("[data-row='" + name + "']");
    for (var i = 0; i < cells.length; i++) cells[i].hidden = !(minor > 0);
    var dd = root.querySelector("dd[data-row='" + name + "']");
    if (dd) dd.textContent = sign + money(minor);
  }

  // The buyer's view of the total, computed as the server does (it decides, though).
  function update() {
    var itemsMinor = 0, badPrice = false, list = items();
    for (var i = 0; i < list.length; i++) {
      var price = unitPrice(list[i]), field = list[i].querySelector(".pos-item-price");
      if (field) field.classList.toggle("invalid", isNaN(price));
      if (count(list[i]) > 0 && !(price >= 0)) badPrice = true;
      else if (price > 0) itemsMinor += price * count(list[i]);
    }
    var entry = toMinor(entered());
    var pct = discountPercent();
    if (custom) custom.classList.toggle("invalid", isNaN(entry));
    if (discount) discount.classList.toggle("invalid", isNaN(pct));
    var sub = itemsMinor + (entry > 0 ? entry : 0);
    // The keypad's amount as typed; with items chosen, what they add up to with it.
    if (amount) amount.textContent = itemsMinor > 0 ? money(sub) : typed ? show(typed) : money(0);
    var off = pct > 0 ? Math.floor((sub * pct) / 100) : 0;
    var tipMinor = Math.floor(((sub - off) * tip + 50) / 100);
    var total = sub - off + tipMinor;
    row("subtotal", off > 0 || tipMinor > 0 ? sub : 0, "");
    row("discount", off, "−");
    row("tip", tipMinor, "");
    document.getElementById("total").textContent = money(total);
    payButton.disabled = busy || badPrice || !(total > 0) || isNaN(entry) || isNaN(pct);
  }

  function press(key) {
    var dot = typed.indexOf(".");
    if (key === "clear") typed = "";
    else if (key === "back") typed = typed.slice(0, -1);
    else if (key === ".") { if (digits && dot < 0) typed = (typed || "0") + "."; }
    else if (key === "00") { press("0"); press("0"); return; }
    else if (/^\d$/.test(key)) {
      if (dot >= 0 && typed.length - dot > digits) return;
      if (typed.replace(".", "").length >= MAX_DIGITS) return;
      if (typed === "0") typed = "";
      if (key === "0" && typed === "") return;
      typed += key;
    }
  }

  function step(item, by) {
    var left = item.getAttribute("data-left");
    var n = Math.max(0, count(item) + by);
    if (left !== null) n = Math.min(n, Number(left));
    item.setAttribute("data-count", String(n));
    item.classList.toggle("chosen", n > 0);
    var out = item.querySelector(".count");
    if (out) out.textContent = String(n);
  }

  function fail(text) {
    busy = false;
    error.textContent = text;
    error.hidden = false;
    update();
  }

  // What a refusal says: Greenfield's list of field errors, or its one message.
  function refusal(status, body) {
    if (Array.isArray(body) && body.length) {
      return body.map(function (e) { return e.message; }).join(" ");
    }
    if (body && body.message) return body.message;
    return "The order could not be made (" + status + "). Try again.";
  }

  function pay() {
    if (busy) return;
    busy = true;
    error.hidden = true;
    update();
    fetch("/apps/" + encodeURIComponent(app) + "/pos", {
      method: "POST",
      headers: { "content-type": "application/json" },
      credentials: "omit",
      body: JSON.stringify(order())
    }).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (body) {
        if (r.ok && body && typeof body.checkoutLink === "string") {
          window.location.assign(body.checkoutLink);
        } else {
          fail(refusal(r.status, body));
        }
      });
    }, function () {
      fail("The server could not be reached. Check the connection and try again.");
    });
  }

  root.addEventListener("click", function (e) {
    var button = e.target.closest("button");
    if (!button || !root.contains(button)) return;
    if (button.hasAttribute("data-key")) press(button.getAttribute("data-key"));
    else if (button.hasAttribute("data-step")) step(button.closest(".pos-item"), Number(button.getAttribute("data-step")));
    else if (button.hasAttribute("data-tip")) {
      tip = Number(button.getAttribute("data-tip"));
      var tips = root.querySelectorAll("[data-tip]");
      for (var i = 0; i < tips.length; i++) tips[i].setAttribute("aria-pressed", String(tips[i] === button));
    } else if (button === payButton) { pay(); return; }
    error.hidden = true;
    update();
  });
  root.addEventListener("input", update);
  document.addEventListener("keydown", function (e) {
    if (!keypad || e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
    var key = e.key === "Backspace" ? "back" : e.key === "Escape" ? "clear" : e.key === "," ? "." : e.key;
    if (/^[\d.]$/.test(key) || key === "back" || key === "clear") { press(key); update(); e.preventDefault(); }
    else if (key === "Enter" && !payButton.disabled) pay();
  });
  // Back from the checkout page: the page may come from the browser's cache, still busy.
  window.addEventListener("pageshow", function () { busy = false; update(); });
  update();
})();
