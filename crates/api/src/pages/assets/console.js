// Flash's query console: sends the editor's query to this page's GraphQL endpoint with the
// token typed in, and lists the schema's root fields. Nothing is loaded from elsewhere; the
// token stays in this tab's sessionStorage.
(function () {
  "use strict";
  var root = document.querySelector("[data-endpoint]");
  if (!root) return;
  var endpoint = root.getAttribute("data-endpoint");
  var tokenKey = "flash-console-token:" + endpoint;
  var el = function (id) { return document.getElementById(id); };
  var token = el("token"), query = el("query"), variables = el("variables");
  var run = el("run"), status = el("status"), result = el("result"), fields = el("fields");

  token.value = sessionStorage.getItem(tokenKey) || "";
  token.addEventListener("input", function () { sessionStorage.setItem(tokenKey, token.value.trim()); });

  function setStatus(text, isError) {
    status.textContent = text;
    status.className = isError ? "status error" : "status";
  }

  function post(body) {
    var headers = { "content-type": "application/json", "accept": "application/json" };
    var t = token.value.trim();
    if (t) headers["authorization"] = "Bearer " + t;
    return fetch(endpoint, { method: "POST", headers: headers, body: JSON.stringify(body) })
      .then(function (r) { return r.text().then(function (text) { return { status: r.status, text: text }; }); });
  }

  function execute() {
    var vars = {};
    if (variables.value.trim()) {
      try { vars = JSON.parse(variables.value); } catch (e) {
        setStatus("Variables are not valid JSON: " + e.message, true);
        return;
      }
    }
    run.disabled = true;
    setStatus("Running…", false);
    var started = performance.now();
    post({ query: query.value, variables: vars }).then(function (answer) {
      var ms = Math.round(performance.now() - started);
      var shown = answer.text, failed = answer.status !== 200;
      try {
        var json = JSON.parse(answer.text);
        shown = JSON.stringify(json, null, 2);
        failed = failed || Array.isArray(json.errors);
      } catch (e) { /* not JSON: shown as sent */ }
      result.textContent = shown;
      setStatus("HTTP " + answer.status + " in " + ms + " ms" + (failed ? " with errors" : ""), failed);
    }).catch(function (e) {
      setStatus("Request failed: " + e.message, true);
    }).then(function () { run.disabled = false; });
  }

  var SCHEMA = "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }";

  function listFields() {
    post({ query: SCHEMA }).then(function (answer) {
      var json;
      try { json = JSON.parse(answer.text); } catch (e) { return; }
      var schema = json && json.data && json.data.__schema;
      fields.textContent = "";
      if (!schema) {
        var li = document.createElement("li");
        li.textContent = "Enter a token to see the schema.";
        fields.appendChild(li);
        return;
      }
      [["Queries", schema.queryType], ["Mutations", schema.mutationType]].forEach(function (pair) {
        if (!pair[1]) return;
        var head = document.createElement("li");
        head.className = "kind";
        head.textContent = pair[0];
        fields.appendChild(head);
        pair[1].fields.forEach(function (f) {
          var li = document.createElement("li");
          var b = document.createElement("button");
          b.type = "button";
          b.textContent = f.name;
          b.addEventListener("click", function () { insert(f.name); });
          li.appendChild(b);
          fields.appendChild(li);
        });
      });
    });
  }

  function insert(text) {
    var start = query.selectionStart, end = query.selectionEnd;
    query.value = query.value.slice(0, start) + text + query.value.slice(end);
    query.selectionStart = query.selectionEnd = start + text.length;
    query.focus();
  }

  run.addEventListener("click", execute);
  el("schema").addEventListener("click", listFields);
  document.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); execute(); }
  });
  listFields();
})();
