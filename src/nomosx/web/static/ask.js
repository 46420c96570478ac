// Ask a question and follow its brief: POST /api/briefs, then the job's server-sent
// events (/api/briefs/{id}/events; the key cookie goes with them, same origin) update the
// list of stages; on "done" the brief's article is fetched and shown below. A page opened
// on a running brief (/briefs/{id}) follows it the same way (data-follow).
(function () {
  "use strict";
  const form = document.getElementById("ask-form");
  const run = document.getElementById("run");
  const result = document.getElementById("result");
  if (!run || !result) return;
  const statusLine = document.getElementById("run-status");
  const errorBox = document.getElementById("run-error");
  const cancel = document.getElementById("run-cancel");
  let source = null;
  let current = null;

  function setStatus(text) { statusLine.textContent = text; }

  function showError(box, message) {
    box.textContent = message;
    box.hidden = false;
  }

  async function problem(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (ignored) { /* not JSON */ }
    return "The server answered " + response.status + ".";
  }

  function resetStages() {
    run.querySelectorAll("li[data-stage]").forEach(function (li) {
      li.dataset.status = "waiting";
      li.querySelector(".stage-state").textContent = "waiting";
    });
  }

  function describe(counts) {
    return Object.keys(counts || {}).map(function (k) {
      return counts[k] + " " + k.replace(/_/g, " ");
    }).join(", ");
  }

  function onStage(data) {
    const li = run.querySelector('li[data-stage="' + data.stage + '"]');
    if (!li) return;
    const name = li.querySelector(".stage-name").textContent;
    if (data.status === "start") {
      li.dataset.status = "running";
      li.querySelector(".stage-state").textContent = "running…";
      setStatus(name + "…");
    } else {
      li.dataset.status = "done";
      const ms = typeof data.durationMs === "number" ? Math.round(data.durationMs) + " ms" : "";
      const counts = describe(data.counts);
      li.querySelector(".stage-state").textContent = [counts, ms].filter(Boolean).join(" · ") || "done";
      setStatus(name + " done.");
    }
  }

  function finish() {
    if (source) { source.close(); source = null; }
    cancel.hidden = true;
    if (form) form.querySelector("button[type=submit]").disabled = false;
  }

  // the server-rendered list of recent briefs does not know the new one yet
  function addToRecent(id) {
    const section = document.querySelector("section.recent");
    const title = document.getElementById("brief-title");
    if (!section || !title || section.querySelector('a[href="/briefs/' + id + '"]')) return;
    let list = section.querySelector("ul.brief-list");
    if (!list) {
      list = document.createElement("ul");
      list.className = "brief-list";
      const empty = section.querySelector(".empty");
      if (empty) empty.replaceWith(list); else section.append(list);
    }
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = "/briefs/" + id;
    link.textContent = title.textContent;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = "just now";
    item.append(link, meta);
    list.prepend(item);
  }

  async function showBrief(id) {
    setStatus("Done. Loading the brief…");
    const response = await fetch("/briefs/" + encodeURIComponent(id) + "/view", {
      headers: { Accept: "text/html" },
    });
    if (!response.ok) {
      showError(errorBox, "The brief was written but could not be loaded (" + response.status + ").");
      return;
    }
    result.innerHTML = await response.text();
    run.querySelectorAll('li[data-stage][data-status="waiting"]').forEach(function (li) {
      li.dataset.status = "done";
      li.querySelector(".stage-state").textContent = "done";
    });
    setStatus("Done: the brief is below.");
    run.dataset.state = "done";
    addToRecent(id);
    if (location.pathname !== "/briefs/" + id) history.pushState({ brief: id }, "", "/briefs/" + id);
    const title = document.getElementById("brief-title");
    if (title) title.focus({ preventScroll: false });
  }

  function follow(id, cached) {
    current = id;
    run.hidden = false;
    run.dataset.state = "running";
    errorBox.hidden = true;
    cancel.hidden = !!cached;
    setStatus(cached ? "Answered from the cache." : "Queued.");
    source = new EventSource("/api/briefs/" + encodeURIComponent(id) + "/events");
    source.addEventListener("queued", function () { setStatus("Queued: waiting for a worker."); });
    source.addEventListener("stage", function (e) { onStage(JSON.parse(e.data)); });
    source.addEventListener("retry", function () { setStatus("A try failed; retrying…"); });
    source.addEventListener("done", function () {
      finish();
      showBrief(id);
    });
    source.addEventListener("error", function (e) {
      if (e.data) { // the job's own "error" event
        const data = JSON.parse(e.data);
        finish();
        run.dataset.state = "failed";
        setStatus("The brief was not written.");
        showError(errorBox, data.message || data.code || "The job failed.");
        return;
      }
      if (source && source.readyState === EventSource.CLOSED) { // refused: 401, 404, 429
        finish();
        run.dataset.state = "failed";
        showError(errorBox, "Lost the connection to the job; reload the page to try again.");
      } else {
        setStatus("Connection lost; reconnecting…"); // EventSource resumes by itself
      }
    });
    source.addEventListener("cancelled", function () {
      finish();
      run.dataset.state = "cancelled";
      setStatus("Cancelled.");
    });
  }

  cancel.addEventListener("click", async function () {
    if (!current) return;
    cancel.disabled = true;
    const response = await fetch("/api/briefs/" + encodeURIComponent(current), { method: "DELETE" });
    cancel.disabled = false;
    if (!response.ok && response.status !== 409) showError(errorBox, await problem(response));
  });

  if (form) {
    const askError = document.getElementById("ask-error");
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      askError.hidden = true;
      const question = form.elements.question.value.trim();
      if (question.length < 3) {
        showError(askError, "Ask a question of at least 3 characters.");
        form.elements.question.focus();
        return;
      }
      const body = { question: question };
      const sources = parseInt(form.elements.sources.value, 10);
      if (!Number.isNaN(sources)) body.sources = sources;
      const url = "/api/briefs" + (form.elements.fresh.checked ? "?fresh=true" : "");
      const submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      if (source) finish();
      result.innerHTML = "";
      resetStages();
      let response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(body),
        });
      } catch (err) {
        submit.disabled = false;
        showError(askError, "The server could not be reached.");
        return;
      }
      if (response.status === 401) { location.assign("/login?next=/"); return; }
      if (!response.ok) {
        submit.disabled = false;
        showError(askError, await problem(response));
        return;
      }
      const accepted = await response.json();
      document.getElementById("run-question").textContent = question;
      follow(accepted.id, accepted.cached);
      run.scrollIntoView({ behavior: "smooth", block: "start" });
    });
  }

  window.addEventListener("popstate", function () { location.reload(); });

  if (run.dataset.follow) follow(run.dataset.follow, false);
})();
