"""The page template of the HTML graph view (kept as a Python string so it
ships with the package without package-data configuration).

``__KT_TITLE__`` and ``__KT_DATA__`` are filled in by :mod:`kt.graph.html`.
No external resource: styles and script are inline, the SVG is built as
markup (no namespace URL needed).
"""

PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__KT_TITLE__</title>
<style>
 body { font: 14px system-ui, sans-serif; margin: 0; color: #222; }
 header { padding: 10px 16px; border-bottom: 1px solid #ddd; background: #fafafa; }
 header h1 { font-size: 17px; margin: 0 0 6px 0; }
 .controls label { margin-right: 18px; }
 .controls input[type=range] { vertical-align: middle; width: 220px; }
 main { display: flex; height: calc(100vh - 92px); }
 #canvas { flex: 1; overflow: auto; }
 aside { width: 320px; overflow: auto; border-left: 1px solid #ddd; padding: 8px 12px; }
 aside h2 { font-size: 14px; margin: 12px 0 4px 0; }
 aside ol, aside ul { padding-left: 22px; margin: 4px 0; }
 aside li { cursor: pointer; }
 aside li:hover { text-decoration: underline; }
 .edge { fill: none; stroke: #8a8a8a; }
 .edge.cycle { stroke: #c0392b; stroke-dasharray: 5 4; }
 .edge.unstable { stroke-dasharray: 2 3; }
 .edge.hidden { display: none; }
 .node circle { stroke: #333; stroke-width: 1; cursor: pointer; }
 .node text { font-size: 12px; cursor: pointer; }
 .node.sel circle { stroke-width: 3; stroke: #000; }
 .node.sel text { font-weight: bold; }
 .node.pre circle { stroke: #1f5fbf; stroke-width: 3; }
 .node.dep circle { stroke: #d9822b; stroke-width: 3; }
 .edge.pre { stroke: #1f5fbf; opacity: 1 !important; }
 .edge.dep { stroke: #d9822b; opacity: 1 !important; }
 svg.focus .node:not(.sel):not(.pre):not(.dep) { opacity: 0.25; }
 svg.focus .edge:not(.pre):not(.dep) { opacity: 0.08 !important; }
 .legend span { margin-right: 14px; }
 .pre-t { color: #1f5fbf; } .dep-t { color: #d9822b; } .cyc-t { color: #c0392b; }
 .muted { color: #777; }
</style>
</head>
<body>
<header>
 <h1 id="title">__KT_TITLE__</h1>
 <div class="controls">
  <label>edge strength &ge; <input id="thr" type="range" min="0" max="1" step="0.01"> <b id="thr-val"></b></label>
  <label id="stab-box" hidden>stability &ge; <input id="stab" type="range" min="0" max="1" step="0.05"> <b id="stab-val"></b></label>
  <label>KC <select id="kc"><option value="">(none)</option></select></label>
  <label><button id="clear" type="button">clear</button></label>
  <span class="legend"><span class="pre-t">&#9632; prerequisites</span><span class="dep-t">&#9632; dependents</span><span class="cyc-t">- - closes a cycle</span><span class="muted" id="stab-legend"></span><span class="muted" id="counts"></span></span>
 </div>
</header>
<main>
 <div id="canvas"><svg id="graph" role="img" aria-label="prerequisite graph"></svg></div>
 <aside>
  <div id="info" class="muted">Click a KC to see its prerequisites and dependents.</div>
  <h2>Suggested learning order</h2>
  <div class="muted">Prerequisites first; among KCs that are ready, the easier (lower error rate) first.</div>
  <ol id="order"></ol>
  <div id="cycles"></div>
 </aside>
</main>
<script type="application/json" id="kt-graph-data">__KT_DATA__</script>
<script>
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("kt-graph-data").textContent);
  var K = D.kcs.length, E = D.edges;
  var svg = document.getElementById("graph"), thr = document.getElementById("thr");
  var sel = document.getElementById("kc"), state = { t: D.threshold, kc: -1, s: D.min_stability || 0 };
  var S = D.stability, stab = document.getElementById("stab");
  if (S) E.forEach(function (e, k) { e[5] = S[k][0]; });  // e[5] = stability
  var byName = {};
  D.kcs.forEach(function (n, i) { byName[n] = i; });

  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function short(s) { s = String(s); return s.length > 30 ? s.slice(0, 29) + "\u2026" : s; }
  function diffColor(i) {
    var d = D.difficulty ? D.difficulty[i] : null;
    if (d === null || d === undefined) return "#ddd";
    return "hsl(" + Math.round((1 - d) * 120) + ",60%,62%)";
  }
  var pmin = 1, pmax = 0;
  E.forEach(function (e) { pmin = Math.min(pmin, e[2]); pmax = Math.max(pmax, e[2]); });
  function labelWidth(i) { return 16 + 6.5 * Math.min(30, String(D.kcs[i]).length); }
  function rel(p) { return pmax > pmin ? (p - pmin) / (pmax - pmin) : 1; }

  function draw() {
    var w = 0, h = 0, parts = [];
    for (var i = 0; i < K; i++) { w = Math.max(w, D.x[i]); h = Math.max(h, D.y[i]); }
    var top = 0;  // room for the arcs of edges that skip columns
    E.forEach(function (e) { top = Math.max(top, 12 * (Math.round((D.x[e[1]] - D.x[e[0]]) / D.col_w) - 1)); });
    w += D.col_w + 40; h += 40 + top;
    svg.setAttribute("width", w); svg.setAttribute("height", h);
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    parts.push('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#666"/></marker></defs>');
    parts.push('<g transform="translate(0,' + top + ')">');
    if (D.lone.length && D.lone.length < K) {
      var lx = D.x[D.lone[0]];
      parts.push('<text x="' + lx + '" y="' + 30 + '" class="muted" font-size="12">no edges at this export threshold</text>');
    }
    E.forEach(function (e, k) {
      // Edges leave after the source's label and arc over the columns they skip.
      var x1 = D.x[e[0]] + labelWidth(e[0]), y1 = D.y[e[0]], x2 = D.x[e[1]] - 9, y2 = D.y[e[1]], d;
      if (x2 > x1) {
        var dx = Math.max(30, (x2 - x1) / 2), skip = Math.max(0, Math.round((D.x[e[1]] - D.x[e[0]]) / D.col_w) - 1);
        var h = 16 * skip;
        d = "M" + x1 + "," + y1 + " C" + (x1 + dx) + "," + (y1 - h) + " " + (x2 - dx) + "," + (y2 - h) + " " + x2 + "," + y2;
      } else {
        d = "M" + x1 + "," + y1 + " C" + (x1 + 90) + "," + (y1 - 70) + " " + (x2 - 90) + "," + (y2 - 70) + " " + x2 + "," + y2;
      }
      var r = rel(e[2]), tip = D.kcs[e[0]] + " \u2192 " + D.kcs[e[1]] + ": " + e[2].toFixed(3) +
        (e[3] === null ? "" : " (support " + e[3] + ")") + (e[4] ? " \u2014 closes a cycle" : "");
      // Bootstrapped: opacity follows stability (share of refits keeping the edge), dashed below D.stable.
      var st = S ? S[k] : null, op = st ? 0.15 + 0.8 * st[0] : 0.35 + 0.55 * r;
      if (st) tip += "\nstability " + st[0].toFixed(2) + (D.refits ? " (" + D.refits + " learner resamples)" : "") +
        (st[1] === null ? "" : "; strength 95% interval " + st[1].toFixed(2) + "\u2013" + st[2].toFixed(2));
      parts.push('<path class="edge' + (e[4] ? " cycle" : "") + (st && st[0] < D.stable ? " unstable" : "") + '" data-e="' + k + '" d="' + d +
        '" stroke-width="' + (0.8 + 3.2 * r).toFixed(2) + '" style="opacity:' + op.toFixed(2) +
        '" marker-end="url(#arrow)"><title>' + esc(tip) + "</title></path>");
    });
    for (var j = 0; j < K; j++) {
      var dd = D.difficulty && D.difficulty[j] !== null ? " (difficulty " + D.difficulty[j].toFixed(2) + ")" : "";
      parts.push('<g class="node" data-i="' + j + '" transform="translate(' + D.x[j] + "," + D.y[j] + ')">' +
        '<circle r="7" fill="' + diffColor(j) + '"></circle><text x="11" y="4">' + esc(short(D.kcs[j])) +
        "</text><title>" + esc(D.kcs[j] + dd) + "</title></g>");
    }
    parts.push("</g>");
    svg.innerHTML = parts.join("");
  }

  function visible(e) {
    return e[2] >= state.t - 1e-12 && (!S || e[5] >= state.s - 1e-12);
  }
  function closure(start, fwd) {
    var adj = {}, seen = {}, stack = [start];
    E.forEach(function (e) {
      if (!visible(e)) return;
      var a = fwd ? e[0] : e[1];
      (adj[a] = adj[a] || []).push(fwd ? e[1] : e[0]);
    });
    while (stack.length) {
      (adj[stack.pop()] || []).forEach(function (b) {
        if (!seen[b] && b !== start) { seen[b] = true; stack.push(b); }
      });
    }
    return seen;
  }

  function update() {
    document.getElementById("thr-val").textContent = state.t.toFixed(2);
    if (S) document.getElementById("stab-val").textContent = state.s.toFixed(2);
    var shown = 0, pre = {}, dep = {}, s = state.kc;
    if (s >= 0) { pre = closure(s, false); dep = closure(s, true); }
    svg.querySelectorAll(".edge").forEach(function (el) {
      var e = E[+el.getAttribute("data-e")], vis = visible(e);
      el.classList.toggle("hidden", !vis);
      if (vis) shown++;
      // toggle(name, undefined) would flip the class: always pass a boolean
      el.classList.toggle("pre", !!(vis && s >= 0 && (e[1] === s || pre[e[1]]) && pre[e[0]]));
      el.classList.toggle("dep", !!(vis && s >= 0 && (e[0] === s || dep[e[0]]) && dep[e[1]]));
    });
    svg.querySelectorAll(".node").forEach(function (el) {
      var i = +el.getAttribute("data-i");
      el.classList.toggle("sel", i === s);
      el.classList.toggle("pre", !!pre[i]);
      el.classList.toggle("dep", !!dep[i]);
    });
    svg.classList.toggle("focus", s >= 0);
    document.getElementById("counts").textContent = shown + " of " + E.length + " edges shown";
    sel.value = s >= 0 ? String(s) : "";
    info(s, pre, dep);
    var h = "t=" + state.t.toFixed(2) + (S ? "&s=" + state.s.toFixed(2) : "") + (s >= 0 ? "&kc=" + encodeURIComponent(D.kcs[s]) : "");
    if (location.hash.slice(1) !== h) { try { history.replaceState(null, "", "#" + h); } catch (err) { /* file:// in some browsers */ } }
  }

  function info(s, pre, dep) {
    var box = document.getElementById("info");
    if (s < 0) { box.className = "muted"; box.textContent = "Click a KC to see its prerequisites and dependents."; return; }
    var direct = function (fwd) {
      return E.filter(function (e) { return visible(e) && (fwd ? e[0] : e[1]) === s; })
        .map(function (e) { return "<li data-i=\"" + (fwd ? e[1] : e[0]) + "\">" + esc(D.kcs[fwd ? e[1] : e[0]]) + " <span class=\"muted\">" + e[2].toFixed(3) +
          (S ? ", stability " + e[5].toFixed(2) : "") + "</span></li>"; }).join("");
    };
    var dd = D.difficulty && D.difficulty[s] !== null ? "difficulty (error rate) " + D.difficulty[s].toFixed(2) : "";
    box.className = "";
    box.innerHTML = "<h2 id=\"sel-name\">" + esc(D.kcs[s]) + "</h2><div class=\"muted\">" + dd + "</div>" +
      "<h2 class=\"pre-t\">Direct prerequisites</h2><ul id=\"sel-pre\">" + direct(false) + "</ul>" +
      "<div class=\"muted\">" + Object.keys(pre).length + " prerequisites in all (transitively)</div>" +
      "<h2 class=\"dep-t\">Direct dependents</h2><ul id=\"sel-dep\">" + direct(true) + "</ul>" +
      "<div class=\"muted\">" + Object.keys(dep).length + " dependents in all (transitively)</div>";
  }

  function pick(i) { state.kc = (i === state.kc) ? -1 : i; update(); }

  function init() {
    thr.min = D.threshold; thr.max = 1; thr.value = D.threshold;
    D.kcs.forEach(function (n, i) {
      var o = document.createElement("option"); o.value = String(i); o.textContent = n; sel.appendChild(o);
    });
    var ol = document.getElementById("order");
    D.order.forEach(function (i) {
      var li = document.createElement("li"); li.textContent = D.kcs[i]; li.setAttribute("data-i", i); ol.appendChild(li);
    });
    var cyc = document.getElementById("cycles");
    if (D.cycles.length) {
      var html = "<h2 class=\"cyc-t\">Cycles among the shown edges</h2><ul>" + D.cycles.map(function (c) {
        return "<li>" + esc(c.join(", ")) + "</li>"; }).join("") + "</ul><div class=\"muted\">Left out of the learning order (weakest edge of each cycle): " +
        D.dropped.map(function (d) { return esc(d[0] + " \u2192 " + d[1] + " (" + d[2] + ")"); }).join("; ") + "</div>";
      cyc.innerHTML = html;
    }
    draw();
    svg.addEventListener("click", function (ev) {
      var g = ev.target.closest(".node");
      if (g) pick(+g.getAttribute("data-i"));
    });
    document.querySelector("aside").addEventListener("click", function (ev) {
      var li = ev.target.closest("li[data-i]");
      if (li) { state.kc = +li.getAttribute("data-i"); update(); }
    });
    thr.addEventListener("input", function () { state.t = +thr.value; update(); });
    if (S) {
      document.getElementById("stab-box").hidden = false;
      stab.min = D.min_stability || 0; stab.value = state.s;
      document.getElementById("stab-legend").textContent = "\u00b7\u00b7 stability < " + D.stable + " (faded by stability)";
      stab.addEventListener("input", function () { state.s = +stab.value; update(); });
    }
    sel.addEventListener("change", function () { state.kc = sel.value === "" ? -1 : +sel.value; update(); });
    document.getElementById("clear").addEventListener("click", function () { state.kc = -1; update(); });
    var q = {};
    location.hash.slice(1).split("&").forEach(function (kv) {
      var p = kv.split("="); if (p.length === 2) q[p[0]] = decodeURIComponent(p[1]);
    });
    if (q.t !== undefined && !isNaN(+q.t)) state.t = Math.min(1, Math.max(D.threshold, +q.t));
    if (q.kc !== undefined && byName[q.kc] !== undefined) state.kc = byName[q.kc];
    if (S && q.s !== undefined && !isNaN(+q.s)) state.s = Math.min(1, Math.max(D.min_stability || 0, +q.s));
    thr.value = state.t;
    if (S) stab.value = state.s;
    update();
  }
  init();
})();
</script>
</body>
</html>
"""
