(function () {
  "use strict";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  var data = {};
  document.querySelectorAll('script[type="application/json"][id^="data-"]').forEach(function (s) {
    data[s.id.slice(5)] = JSON.parse(s.textContent);
  });

  function textOf(content) {
    if (content === null || content === undefined) return "";
    if (typeof content === "string") return content;
    if (Array.isArray(content)) {
      return content.map(function (p) {
        return typeof p === "string" ? p : (p && typeof p.text === "string" ? p.text : JSON.stringify(p));
      }).join("\n");
    }
    return JSON.stringify(content, null, 2);
  }

  function looksLikeDiff(s) {
    return /^@@ /m.test(s) && /^(diff --git|--- |\+\+\+ )/m.test(s);
  }

  function pre(s) {
    var p = el("pre");
    if (!looksLikeDiff(s)) { p.textContent = s; return p; }
    p.classList.add("diff");
    s.split("\n").forEach(function (line) {
      var cls = /^(\+\+\+|---|diff --git)/.test(line) ? "file" : line.charAt(0) === "+" ? "add"
        : line.charAt(0) === "-" ? "del" : line.indexOf("@@") === 0 ? "hunk" : "";
      p.appendChild(el("span", cls, line));
    });
    return p;
  }

  function asText(v) { return typeof v === "string" ? v : JSON.stringify(v, null, 2); }

  function prettyArgs(a) {
    if (typeof a !== "string") return asText(a);
    try { return JSON.stringify(JSON.parse(a), null, 2); } catch (e) { return a; }
  }

  function field(label, value) {
    var box = el("div", "field");
    box.appendChild(el("div", "label", label));
    box.appendChild(pre(asText(value)));
    return box;
  }

  function renderMessage(m) {
    var box = el("div", "msg role-" + String(m.role || "unknown").replace(/[^a-z_-]/gi, ""));
    var head = String(m.role || "?");
    if (m.name) head += " · " + m.name;
    if (m.tool_call_id) head += " ← " + m.tool_call_id;
    box.appendChild(el("div", "role", head));
    if (m.reasoning_content) {  // folded above the answer
      var thinking = el("details", "reasoning");
      thinking.appendChild(el("summary", null, "Reasoning (" + String(m.reasoning_content).length + " characters)"));
      thinking.appendChild(pre(String(m.reasoning_content)));
      box.appendChild(thinking);
    }
    var text = textOf(m.content);
    if (text) box.appendChild(pre(text));
    (m.tool_calls || []).forEach(function (tc) {
      var fn = tc["function"] || tc;
      var call = el("div", "toolcall");
      call.appendChild(el("div", "tc-name", "→ " + fn.name + (tc.id ? "  (" + tc.id + ")" : "")));
      call.appendChild(pre(prettyArgs(fn.arguments)));
      box.appendChild(call);
    });
    return box;
  }

  function renderAttempt(att) {
    var box = el("div", "attempt");
    var g = att.grade;
    var verdict;
    if (!g) verdict = el("div", "verdict none", "Not graded" + (att.status !== "ok" ? " (attempt " + att.status + ")" : ""));
    else if (g.status !== "ok") verdict = el("div", "verdict none", "Grader error");
    else verdict = el("div", "verdict " + (g.correct ? "ok" : "bad"),
      (g.correct ? "✓ correct" : "✗ not correct") + " · score " + Number(g.score).toFixed(2));
    box.appendChild(verdict);
    if (g && g.reason) box.appendChild(field("Grader reason", g.reason));
    if (att.error) box.appendChild(field("Error", att.error));
    (att.messages || []).forEach(function (m) { box.appendChild(renderMessage(m)); });
    Object.keys(att.output || {}).forEach(function (k) { box.appendChild(field("Output · " + k, att.output[k])); });
    if (g) Object.keys(g.details || {}).forEach(function (k) { box.appendChild(field("Grader · " + k, g.details[k])); });
    return box;
  }

  function renderColumn(label, side) {
    var col = el("div", "col");
    col.appendChild(el("h4", null, label));
    if (!side || !side.attempts.length) { col.appendChild(el("p", "note", "No attempt at this item.")); return col; }
    var tabs = el("div", "tabs");
    var body = el("div");
    side.attempts.forEach(function (att, i) {
      var g = att.grade;
      var mark = !g || g.status !== "ok" ? "?" : g.correct ? "✓" : "✗";
      var b = el("button", i === 0 ? "on" : "", "#" + att.index + " " + mark);
      b.type = "button";
      b.addEventListener("click", function () {
        tabs.querySelectorAll("button").forEach(function (x) { x.classList.remove("on"); });
        b.classList.add("on");
        body.replaceChildren(renderAttempt(att));
      });
      tabs.appendChild(b);
    });
    col.appendChild(tabs);
    if (side.omitted) col.appendChild(el("p", "note", side.omitted + " more attempt(s) not embedded in this page."));
    body.appendChild(renderAttempt(side.attempts[0]));
    col.appendChild(body);
    return col;
  }

  // Each item's transcripts are embedded as base64 of gzipped JSON and inflated when opened.
  function inflate(b64) {
    var bytes = Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); });
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(JSON.parse);
  }

  var viewer = document.getElementById("viewer");
  var opening = 0;
  var current = null;  // the row whose transcripts are open

  function step(delta) {
    if (!current) return;
    var rows = Array.prototype.slice.call(current.closest("tbody").querySelectorAll("tr.item-row"))
      .filter(function (r) { return !r.hidden; });
    var next = rows[rows.indexOf(current) + delta];
    if (next) openRow(next);
  }

  function openRow(row) {
    current = row;
    openItem(row.closest("section.task").id, row.getAttribute("data-item"));
  }

  function openItem(taskId, itemId) {
    var d = data[taskId];
    var ticket = ++opening;
    var cols = document.getElementById("viewer-body");
    document.getElementById("viewer-title").textContent = itemId;
    cols.replaceChildren(el("p", "note", "Loading…"));
    viewer.hidden = false;
    document.getElementById("viewer-close").focus();
    var packed = d.items[itemId];
    (packed ? inflate(packed) : Promise.resolve([])).then(function (per) {
      if (ticket !== opening) return;
      cols.replaceChildren();
      d.runs.forEach(function (label, i) { cols.appendChild(renderColumn(label, per[i])); });
      viewer.setAttribute("data-ready", itemId);
    }).catch(function (err) {
      cols.replaceChildren(el("p", "note", "Could not open the transcripts: " + err));
    });
  }
  function closeViewer() {
    viewer.hidden = true;
    viewer.removeAttribute("data-ready");
    if (current) current.focus();
  }
  document.getElementById("viewer-close").addEventListener("click", closeViewer);
  document.getElementById("viewer-prev").addEventListener("click", function () { step(-1); });
  document.getElementById("viewer-next").addEventListener("click", function () { step(1); });
  document.addEventListener("keydown", function (e) {
    if (viewer.hidden) return;
    if (e.key === "Escape") closeViewer();
    else if (e.key === "j") step(1);
    else if (e.key === "k") step(-1);
  });

  document.querySelectorAll("section.task").forEach(function (sec) {
    var text = sec.querySelector(".f-text");
    var status = sec.querySelector(".f-status");
    var count = sec.querySelector(".f-count");
    var rows = Array.prototype.slice.call(sec.querySelectorAll("tr.item-row"));
    function apply() {
      var q = text.value.trim().toLowerCase();
      var s = status.value;
      var shown = 0;
      rows.forEach(function (r) {
        var st = r.getAttribute("data-status");
        var ok = (!q || r.getAttribute("data-item").toLowerCase().indexOf(q) >= 0) &&
          (s === "all" || (s === "differ" ? st !== "same" : st === s));
        r.hidden = !ok;
        if (ok) shown += 1;
      });
      count.textContent = shown + " of " + rows.length + " items shown";
    }
    text.addEventListener("input", apply);
    status.addEventListener("change", apply);
    apply();
    rows.forEach(function (r) {
      var open = function () { openRow(r); };
      r.addEventListener("click", open);
      r.addEventListener("keydown", function (e) { if (e.key === "Enter") open(); });
    });
  });
})();
