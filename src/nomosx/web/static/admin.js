// The admin dashboard: reads /api/system/health and /api/admin/{costs,cache,jobs,errors}
// with the key cookie and draws everything itself. Charts are inline SVG (role="img" with
// a title and description; every bar has a tooltip) with the same numbers in a table
// under "Data", for screen readers and for copying. Refreshes every 30 seconds.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 30000;
  const daysSelect = document.getElementById("days");
  const errorBox = document.getElementById("dash-error");
  let timer = null;

  // ------------------------------------------------------------------ helpers
  function el(name, attrs, text) {
    const node = document.createElement(name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function usd(value) {
    if (value === null || value === undefined) return "unknown";
    if (value === 0) return "$0";
    if (value < 0.01) return "$" + value.toFixed(4);
    return "$" + value.toFixed(2);
  }

  function pct(value) { return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + "%"; }

  function bytes(value) {
    if (value === null || value === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (value >= 1024 && i < units.length - 1) { value /= 1024; i += 1; }
    return (i === 0 ? value : value.toFixed(1)) + " " + units[i];
  }

  function age(seconds) {
    if (!seconds) return "–";
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function when(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function number(n) { return (n || 0).toLocaleString("en"); }

  async function get(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (response.status === 401) { location.assign("/login?next=/admin"); throw new Error("signed out"); }
    if (!response.ok && response.status !== 503) { // 503: health says unhealthy, with a body
      let message = url + ": " + response.status;
      try { message = (await response.json()).error.message || message; } catch (ignored) { /* */ }
      throw new Error(message);
    }
    return response.json();
  }

  function stats(dl, pairs) {
    dl.replaceChildren();
    pairs.forEach(function (pair) {
      const div = el("div");
      div.append(el("dt", {}, pair[0]), el("dd", pair[2] ? { "data-key": pair[2] } : {}, pair[1]));
      dl.append(div);
    });
  }

  function done(id) { document.getElementById(id).setAttribute("aria-busy", "false"); }

  // ------------------------------------------------------------------ charts
  // Drawn at the plot's own width (one SVG unit a pixel), so text keeps its size.
  function plotWidth(plot, fallback) { return Math.max(plot.clientWidth || fallback, 260); }

  function axisUsd(value) {
    if (value === 0) return "$0";
    if (value >= 1) return "$" + value.toFixed(2);
    if (value >= 0.01) return "$" + value.toFixed(3);
    return "$" + value.toPrecision(2);
  }

  function frame(plot, width, height, caption, description) {
    const id = plot.parentElement.id;
    const chart = svg("svg", {
      viewBox: "0 0 " + width + " " + height, width: width, height: height, role: "img",
      "aria-labelledby": id + "-t " + id + "-d",
    });
    chart.append(svg("title", { id: id + "-t" }, caption));
    chart.append(svg("desc", { id: id + "-d" }, description));
    return chart;
  }

  // Vertical bars over time (by day); a day whose calls include one without a known price
  // gets at least a small amber bar, so it is never mistaken for a day without calls.
  function columnChart(plot, items, caption) {
    const width = plotWidth(plot, 760), height = 220, left = 56, bottom = 28, top = 12, right = 8;
    const max = Math.max.apply(null, items.map(function (r) { return r.costUsd || 0; }).concat([0]));
    const scale = max > 0 ? max : 1;
    const total = items.reduce(function (s, r) { return s + (r.costUsd || 0); }, 0);
    const chart = frame(plot, width, height, caption,
      items.length + " days, " + usd(total) + " in all; highest day " + usd(max) + ".");
    chart.setAttribute("data-points", items.length);
    const inner = width - left - right, tall = height - top - bottom;
    [0, 0.5, 1].forEach(function (f) {
      const y = top + tall - f * tall;
      chart.append(svg("line", { class: "axis", x1: left, y1: y, x2: width - right, y2: y, "stroke-dasharray": f ? "2 4" : "" }));
      chart.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, axisUsd(f * max)));
    });
    const step = inner / Math.max(items.length, 1);
    const every = Math.max(1, Math.ceil(items.length / Math.max(2, Math.floor(inner / 60))));
    items.forEach(function (r, i) {
      const value = r.costUsd || 0;
      const unknown = r.costUsd === null;
      const h = Math.max(unknown ? 4 : value > 0 ? 1 : 0, (value / scale) * tall);
      const x = left + i * step + step * 0.15;
      const bar = svg("rect", {
        class: "bar" + (unknown ? " unknown" : ""), x: x.toFixed(1), y: (top + tall - h).toFixed(1),
        width: Math.max(step * 0.7, 1).toFixed(1), height: h.toFixed(1), "data-group": r.group, "data-value": value,
      });
      bar.append(svg("title", {}, r.group + ": " + usd(r.costUsd) + " · " + number(r.calls) + " call(s)"));
      chart.append(bar);
      if ((items.length - 1 - i) % every === 0) { // label the last day, and every n-th before it
        chart.append(svg("text", { x: (x + step * 0.35).toFixed(1), y: height - 8, "text-anchor": "middle" }, r.group.slice(5)));
      }
    });
    return chart;
  }

  // Horizontal bars, one per group (provider, model, agent, namespace).
  function barChart(plot, rows, caption, valueOf, label) {
    const width = plotWidth(plot, 320), rowHeight = 26, top = 4;
    const left = Math.min(150, Math.round(width * 0.36)), right = 96;
    const height = top * 2 + rows.length * rowHeight;
    const max = Math.max.apply(null, rows.map(valueOf).concat([0]));
    const scale = max > 0 ? max : 1;
    const chart = frame(plot, width, height, caption,
      rows.map(function (r) { return r.group + " " + label(r); }).join("; "));
    chart.setAttribute("data-points", rows.length);
    const room = width - left - right;
    const chars = Math.max(6, Math.floor((left - 10) / 6.5));
    rows.forEach(function (r, i) {
      const y = top + i * rowHeight;
      const unknown = r.costUsd === null;
      const w = Math.max(unknown ? 4 : valueOf(r) > 0 ? 2 : 0, (valueOf(r) / scale) * room);
      const name = r.group.length > chars ? r.group.slice(0, chars - 1) + "…" : r.group;
      chart.append(svg("text", { x: left - 8, y: y + 17, "text-anchor": "end" }, name));
      const bar = svg("rect", {
        class: "bar" + (unknown ? " unknown" : ""), x: left, y: y + 4, width: w.toFixed(1),
        height: rowHeight - 8, rx: 3, "data-group": r.group, "data-value": valueOf(r),
      });
      bar.append(svg("title", {}, r.group + ": " + label(r)));
      chart.append(bar);
      chart.append(svg("text", { class: "value", x: (left + w + 6).toFixed(1), y: y + 17 }, label(r)));
    });
    return chart;
  }

  function fill(figure, chart, empty) {
    const plot = figure.querySelector(".plot");
    plot.replaceChildren(chart || el("p", { class: "empty" }, empty));
  }

  function costTable(figure, items) {
    const body = figure.querySelector("tbody");
    if (!body) return;
    body.replaceChildren();
    items.forEach(function (r) {
      const tr = el("tr");
      tr.append(el("th", { scope: "row" }, r.group), el("td", { class: "num" }, usd(r.costUsd)),
        el("td", { class: "num" }, number(r.calls)), el("td", { class: "num" }, number(r.tokensIn)),
        el("td", { class: "num" }, number(r.tokensOut)));
      body.append(tr);
    });
  }

  // ------------------------------------------------------------------ sections
  async function loadCosts(days) {
    const groups = ["day", "provider", "model", "agent"];
    const reports = await Promise.all(groups.map(function (by) {
      return get("/api/admin/costs?by=" + by + "&days=" + days);
    }));
    reports.forEach(function (report) {
      const figure = document.getElementById("chart-" + report.by);
      const caption = figure.querySelector("figcaption").textContent + ", last " + days + " days";
      const plot = figure.querySelector(".plot");
      if (report.by === "day") {
        fill(figure, report.calls ? columnChart(plot, report.items, caption) : null,
          "No LLM calls in the last " + days + " days.");
      } else {
        fill(figure, report.items.length ? barChart(plot, report.items, caption,
          function (r) { return r.costUsd || 0; },
          function (r) { return usd(r.costUsd) + " · " + number(r.calls); }) : null,
        "No LLM calls in the last " + days + " days.");
      }
      costTable(figure, report.items);
    });
    const day = reports[0];
    document.getElementById("costs-total").textContent = usd(day.totalUsd) + " over " + number(day.calls) +
      " call(s) since " + day.since.slice(0, 10) + (day.unpricedCalls ? " (" + number(day.unpricedCalls) + " call(s) of models without a known price not counted)" : "") + ".";
    done("costs");
  }

  async function loadHealth() {
    const health = await get("/api/system/health");
    const badge = document.getElementById("health-status");
    badge.textContent = health.status;
    badge.className = "badge " + health.status;
    document.getElementById("health-meta").textContent = "version " + health.version + " · answered in " + Math.round(health.responseTime) + " ms";
    const body = document.querySelector("#health-services tbody");
    body.replaceChildren();
    const services = health.services || {};
    function row(name, value) {
      const tr = el("tr");
      const status = value.status || "–";
      const cell = el("td");
      cell.append(el("span", { class: "badge " + status }, status));
      const detail = [];
      if (value.latency !== undefined && value.latency !== null) detail.push(Math.round(value.latency) + " ms");
      if (value.backend) detail.push(value.backend);
      if (value.error) detail.push(value.error);
      tr.append(el("th", { scope: "row" }, name), cell, el("td", {}, detail.join(" · ")));
      body.append(tr);
    }
    ["database", "cache"].forEach(function (name) { if (services[name]) row(name, services[name]); });
    Object.keys(services.llm || {}).forEach(function (p) { row("LLM " + p, services.llm[p]); });
    Object.keys(services.sourcesApis || {}).forEach(function (p) { row("source " + p, services.sourcesApis[p]); });
    done("health");
  }

  async function loadCache() {
    const cache = await get("/api/admin/cache");
    const dl = document.getElementById("cache-stats");
    const figure = document.getElementById("chart-cache");
    if (!cache.enabled) {
      stats(dl, [["Cache", "disabled", "enabled"]]);
      fill(figure, null, "The cache is switched off (NOMOSX_CACHE__ENABLED=false).");
      done("cache");
      return;
    }
    stats(dl, [
      ["Hit rate", pct(cache.hitRate), "hitRate"],
      ["Hits", number(cache.hits), "hits"],
      ["Misses", number(cache.misses), "misses"],
      ["Evictions", number(cache.evictions), "evictions"],
      ["Keys", number(cache.keys), "keys"],
      ["Memory", bytes(cache.memoryBytes), "memory"],
      ["Backend", cache.backend + (cache.status !== "up" ? " (" + cache.status + ")" : ""), "backend"],
    ]);
    const rows = cache.namespaces.map(function (n) {
      return { group: n.namespace, hitRate: n.hitRate, hits: n.hits, misses: n.misses, keys: n.keys, costUsd: 0 };
    });
    const plot = figure.querySelector(".plot");
    fill(figure, rows.length ? barChart(plot, rows, "Cache hit rate by namespace",
      function (r) { return r.hitRate || 0; },
      function (r) { return pct(r.hitRate) + " · " + number(r.keys) + " keys"; }) : null, "No namespaces yet.");
    done("cache");
  }

  async function loadJobs() {
    const jobs = await get("/api/admin/jobs");
    stats(document.getElementById("jobs-stats"), [
      ["Pending", number(jobs.pending), "pending"],
      ["Running", number(jobs.running), "running"],
      ["Failed", number(jobs.failed), "failed"],
      ["Succeeded", number(jobs.succeeded), "succeeded"],
      ["Cancelled", number(jobs.cancelled), "cancelled"],
      ["Oldest pending", age(jobs.oldestPendingSeconds), "oldest"],
      ["Workers", jobs.workers === null ? "in-process" : number(jobs.workers), "workers"],
    ]);
    done("jobs");
  }

  function clip(text, size) {
    if (text.length <= size) return text;
    const cut = text.slice(0, size);
    const space = cut.lastIndexOf(" ");
    return (space > size - 40 ? cut.slice(0, space) : cut) + "…";
  }

  function errorCell(text) {
    const td = el("td", { class: "error" });
    const first = (text || "").split("\n")[0];
    if (!text || (first === text && text.length <= 160)) {
      td.textContent = text || "–";
      return td;
    }
    const details = el("details");
    details.append(el("summary", {}, clip(first, 160)), el("pre", {}, text));
    td.append(details);
    return td;
  }

  function rows(tbody, items, columns, emptyText) {
    tbody.replaceChildren();
    if (!items.length) {
      const tr = el("tr");
      tr.append(el("td", { class: "empty", colspan: columns }, emptyText));
      tbody.append(tr);
    }
    return tbody;
  }

  async function loadErrors() {
    const report = await get("/api/admin/errors?limit=20");
    const runs = rows(document.querySelector("#failed-runs tbody"), report.failedRuns, 4, "No failed runs.");
    report.failedRuns.forEach(function (r) {
      const tr = el("tr");
      // no link to the brief: it is its owner's, and other users (admins too) get a 404
      const q = el("td", r.briefId ? { title: "brief " + r.briefId } : {}, r.question);
      tr.append(el("td", {}, when(r.createdAt)), q, el("td", {}, r.ownerId || "cli/local"), errorCell(r.error));
      runs.append(tr);
    });
    const dead = rows(document.querySelector("#dead-letters tbody"), report.deadLetters, 5, "No dead letters.");
    report.deadLetters.forEach(function (d) {
      const tr = el("tr");
      tr.append(el("td", {}, when(d.createdAt)), el("td", {}, d.question), el("td", {}, d.ownerId || "–"),
        el("td", { class: "num" }, d.attempts), errorCell(d.errorCode + ": " + d.error));
      dead.append(tr);
    });
    done("errors");
  }

  // ------------------------------------------------------------------ refresh
  async function refresh() {
    clearTimeout(timer);
    const updated = document.getElementById("updated");
    updated.textContent = "Loading…";
    const results = await Promise.allSettled([
      loadHealth(), loadCache(), loadJobs(), loadCosts(daysSelect.value), loadErrors(),
    ]);
    const failed = results.filter(function (r) { return r.status === "rejected"; });
    if (failed.length) {
      errorBox.textContent = "Some figures could not be loaded: " + failed.map(function (r) { return r.reason.message; }).join("; ");
      errorBox.hidden = false;
    } else {
      errorBox.hidden = true;
    }
    updated.textContent = "Updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "true";
    timer = setTimeout(refresh, REFRESH_MS);
  }

  daysSelect.addEventListener("change", refresh);
  document.getElementById("refresh").addEventListener("click", refresh);
  refresh();
})();
