// The labeling view: one task at a time, keyboard first, nothing lost when a save fails.
//
// State kept in this tab's sessionStorage (so a reload loses nothing): the task on screen, a
// label whose save is pending, tasks put aside by an undo, and the last labels given (for undo).
"use strict";

(() => {
  const pid = LW.projectId();
  const STORE_KEY = `labelwise.label.${pid}`;
  const POLL_MS = 3000;
  const MAX_BACKOFF_MS = 15000;
  const $ = (id) => document.getElementById(id);

  let project = null;
  let user = null;
  let state = { current: null, pending: null, upcoming: [], history: [], done: 0 };
  let shownAt = Date.now();
  let chosen = new Set(); // multilabel selection
  let retryTimer = null;
  let countdownTimer = null;
  let pollTimer = null;
  let busy = false;

  function save() {
    state.history = state.history.slice(-20);
    sessionStorage.setItem(STORE_KEY, JSON.stringify(state));
  }

  function load() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
      if (saved && typeof saved === "object") state = Object.assign(state, saved);
    } catch (e) { /* start afresh */ }
  }

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  // ---------------------------------------------------------------- rendering an item

  function escapeRegExp(s) {
    return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  // Text with the keywords wrapped in <mark>, built from text nodes (no HTML injection).
  function highlighted(text, keywords) {
    const p = LW.el("p", { class: "item-text" });
    const words = (keywords || []).filter((w) => w && w.trim()).map(escapeRegExp);
    if (!words.length) {
      p.textContent = text;
      return p;
    }
    const re = new RegExp(`\\b(${words.join("|")})\\b`, "giu");
    let last = 0;
    for (const m of text.matchAll(re)) {
      if (m.index > last) p.append(text.slice(last, m.index));
      p.append(LW.el("mark", {}, m[0]));
      last = m.index + m[0].length;
    }
    p.append(text.slice(last));
    return p;
  }

  // Line breaks written as HTML (<br />, common in scraped reviews) become real line breaks;
  // the text is still shown as text, never parsed as HTML.
  function displayText(text) {
    return text.replace(/<br\s*\/?>/gi, "\n");
  }

  function fieldTable(entries, caption) {
    const table = LW.el("table", { class: "data fields" }, LW.el("caption", { class: "sr-only" }, caption));
    const body = LW.el("tbody");
    for (const [k, v] of entries) {
      const value = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
      body.append(LW.el("tr", {}, LW.el("th", { scope: "row" }, k), LW.el("td", {}, value)));
    }
    table.append(body);
    return table;
  }

  async function renderImage(item, container) {
    const figure = LW.el("figure", { class: "item-image" }, LW.el("p", { class: "muted" }, "Loading image…"));
    container.append(figure);
    try {
      const r = await LW.api(`/media/items/${item.id}`, { raw: true });
      const url = URL.createObjectURL(await r.blob());
      figure.replaceChildren(LW.el("img", { src: url, alt: `Image of item ${item.external_id}` }),
        LW.el("figcaption", { class: "muted" }, item.payload.image.split("/").pop()));
    } catch (e) {
      figure.replaceChildren(LW.el("p", { class: "field-error" }, `The image cannot be shown: ${e.message}`));
    }
  }

  function renderItem(claimed) {
    const item = claimed.item;
    const body = $("item-body");
    body.replaceChildren();
    $("item-id").textContent = item.external_id;
    $("task").dataset.externalId = item.external_id;
    $("task").dataset.taskId = claimed.task.id;
    $("round-info").textContent = `task ${claimed.task.id}`;
    const payload = item.payload || {};
    const rest = Object.entries(payload).filter(([k]) => k !== "text" && k !== "image");
    if (typeof payload.text === "string") {
      const text = displayText(payload.text);
      body.append(highlighted(text, []));
      LW.api(`/api/items/${item.id}/keywords`).then((r) => {
        if (state.current && state.current.item.id === item.id) {
          body.querySelector(".item-text").replaceWith(highlighted(text, r.keywords));
        }
      }).catch(() => { /* highlighting is optional */ });
    } else if (typeof payload.image === "string") {
      renderImage(item, body);
    }
    if (rest.length) body.append(fieldTable(rest, `Fields of item ${item.external_id}`));
    if (!body.childNodes.length) body.append(LW.el("p", { class: "muted" }, "(this item has no content to show)"));

    const pred = claimed.prediction;
    const predEl = $("prediction");
    if (pred && project.show_predictions) {
      const conf = pred.confidence === null || pred.confidence === undefined ? "" : ` (confidence ${LW.pct(pred.confidence)})`;
      predEl.replaceChildren("Model suggests: ", LW.el("strong", {}, String(pred.label)), conf);
      predEl.hidden = false;
    } else {
      predEl.hidden = true;
    }
    renderButtons(claimed);
  }

  function renderButtons(claimed) {
    const box = $("class-buttons");
    box.replaceChildren();
    const multi = project.task_type === "multilabel";
    const suggested = claimed && claimed.prediction && project.show_predictions ? String(claimed.prediction.label) : null;
    project.classes.forEach((name, i) => {
      const key = i < 9 ? String(i + 1) : i === 9 ? "0" : null;
      const attrs = {
        type: "button",
        class: "class-button" + (suggested === name ? " suggested" : ""),
        "data-label": name,
        "aria-label": `${multi ? "Toggle" : "Label as"} ${name}${key ? ` (key ${key})` : ""}`,
        "aria-keyshortcuts": key,
        "aria-pressed": multi ? String(chosen.has(name)) : null,
        onclick: () => (multi ? toggle(name) : choose(name)),
      };
      box.append(LW.el("button", attrs, key ? LW.el("kbd", {}, key) : null, " ", name));
    });
    show("submit-multi", multi);
    markPending();
  }

  function markPending() {
    const label = state.pending ? state.pending.label : null;
    const labels = Array.isArray(label) ? label : label === null ? [] : [label];
    for (const b of document.querySelectorAll(".class-button")) {
      b.classList.toggle("chosen", labels.includes(b.dataset.label));
      b.disabled = Boolean(state.pending);
    }
    $("skip").disabled = Boolean(state.pending);
    $("undo").disabled = Boolean(state.pending) || !state.history.length;
  }

  function showTask(claimed) {
    clearTimeout(pollTimer);
    state.current = claimed;
    save();
    chosen = new Set();
    shownAt = Date.now();
    show("empty", false);
    show("task", true);
    show("controls", true);
    renderItem(claimed);
    $("item-body").focus({ preventScroll: true });
  }

  function showEmpty() {
    state.current = null;
    save();
    show("task", false);
    show("controls", false);
    show("empty", true);
    $("undo").disabled = !state.history.length;
    // keep undo reachable while waiting
    if (state.history.length) {
      show("controls", true);
      $("class-buttons").replaceChildren();
      $("skip").disabled = true;
    }
    clearTimeout(pollTimer);
    pollTimer = setTimeout(next, POLL_MS);
  }

  function updateCount() {
    $("done-count").textContent = state.done ? `${state.done} labeled in this session.` : "";
  }

  // ---------------------------------------------------------------- the loop

  let claiming = null; // the claim in flight: undo waits for it, so the two never interleave

  function next() {
    if (!claiming) claiming = claimNext().finally(() => { claiming = null; });
    return claiming;
  }

  async function claimNext() {
    clearTimeout(pollTimer);
    if (state.pending) return;
    if (state.upcoming.length) {
      showTask(state.upcoming.shift());
      return;
    }
    try {
      const claimed = await LW.api(`/api/projects/${pid}/tasks/next`, { method: "POST" });
      if (claimed) showTask(claimed);
      else showEmpty();
    } catch (e) {
      if (e instanceof LW.ApiError && e.status === 404) return notFound();
      LW.status(`Could not fetch the next task (${e.message}); trying again shortly.`, "error");
      pollTimer = setTimeout(next, POLL_MS);
    }
  }

  function toggle(name) {
    if (state.pending || !state.current) return;
    if (chosen.has(name)) chosen.delete(name);
    else chosen.add(name);
    for (const b of document.querySelectorAll(".class-button")) {
      b.setAttribute("aria-pressed", String(chosen.has(b.dataset.label)));
      b.classList.toggle("chosen", chosen.has(b.dataset.label));
    }
  }

  function choose(label) {
    if (state.pending || !state.current || busy) return;
    state.pending = { claimed: state.current, label, attempt: 0, duration: (Date.now() - shownAt) / 1000 };
    save();
    markPending();
    send();
  }

  function isTransient(e) {
    return !(e instanceof LW.ApiError) || e.status >= 500 || e.status === 408 || e.status === 429;
  }

  async function send() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    const p = state.pending;
    if (!p || busy) return;
    busy = true;
    $("retry").disabled = true;
    try {
      const ann = await LW.api(`/api/tasks/${p.claimed.task.id}/annotations`, {
        method: "POST",
        json: { label: p.label, duration_s: Math.round(p.duration * 100) / 100 },
      });
      state.history.push({ annotation: ann, claimed: p.claimed });
      state.pending = null;
      state.current = null;
      state.done += 1;
      save();
      show("retry-box", false);
      updateCount();
      LW.status(`Saved “${[].concat(p.label).join(", ")}” for ${p.claimed.item.external_id}.`, "ok");
      busy = false;
      next();
      return;
    } catch (e) {
      busy = false;
      if (isTransient(e)) return scheduleRetry(e);
      state.pending = null;
      save();
      show("retry-box", false);
      if (e.status === 409) {
        // the lease is gone: expired, or (after a lost response) the label is already stored
        LW.status(p.attempt > 0
          ? `Task ${p.claimed.task.id} is no longer open: the label was probably saved before the connection dropped.`
          : `The lease on task ${p.claimed.task.id} expired (${e.detail}); here is the next task.`, "error");
        state.current = null;
        save();
        next();
      } else if (e.status === 404) {
        notFound();
      } else {
        LW.status(`The label was not accepted: ${e.detail}`, "error", true);
        markPending();
      }
    }
  }

  function scheduleRetry(error) {
    const p = state.pending;
    p.attempt += 1;
    save();
    const delay = Math.min(1000 * 2 ** (p.attempt - 1), MAX_BACKOFF_MS);
    let left = Math.ceil(delay / 1000);
    const why = error instanceof LW.ApiError ? `server error ${error.status}: ${error.detail}` : "the server cannot be reached";
    const text = () => `Saving “${[].concat(p.label).join(", ")}” for ${p.claimed.item.external_id} failed (${why}). ` +
      `Your label is kept; retrying in ${left} s (attempt ${p.attempt}).`;
    $("retry-text").textContent = text();
    show("retry-box", true);
    $("retry").disabled = false;
    markPending();
    countdownTimer = setInterval(() => {
      left = Math.max(0, left - 1);
      $("retry-text").textContent = text();
    }, 1000);
    retryTimer = setTimeout(send, delay);
  }

  async function skip() {
    if (state.pending || !state.current || busy) return;
    const claimed = state.current;
    busy = true;
    try {
      await LW.api(`/api/tasks/${claimed.task.id}/skip`, { method: "POST" });
      LW.status(`Skipped ${claimed.item.external_id}.`, "info");
      state.current = null;
      save();
      busy = false;
      next();
    } catch (e) {
      busy = false;
      if (e.status === 409) {
        LW.status(`The lease on this task expired; here is the next one.`, "error");
        state.current = null;
        next();
      } else {
        LW.status(`Skipping failed (${e.message}); the task stays here, try again.`, "error", true);
      }
    }
  }

  async function undo() {
    if (state.pending || busy || !state.history.length) return;
    busy = true;
    if (claiming) await claiming;
    clearTimeout(pollTimer);
    const last = state.history[state.history.length - 1];
    try {
      const r = await LW.api(`/api/annotations/${last.annotation.id}/undo`, { method: "POST" });
      state.history.pop();
      state.done = Math.max(0, state.done - 1);
      if (state.current) state.upcoming.unshift(state.current);
      const claimed = Object.assign({}, last.claimed);
      if (r && r.task && r.item) Object.assign(claimed, r);
      else if (r && r.id && r.item_id) claimed.task = r;
      busy = false;
      updateCount();
      showTask(claimed);
      LW.status(`Undone: “${[].concat(last.annotation.label).join(", ")}” removed from ${claimed.item.external_id}; label it again.`, "ok");
    } catch (e) {
      busy = false;
      if (e instanceof LW.ApiError && (e.status === 404 || e.status === 409)) {
        state.history.pop();
        save();
        markPending();
      }
      LW.status(`Undo failed: ${e.message}`, "error", true);
    }
  }

  function notFound() {
    clearTimeout(pollTimer);
    for (const id of ["task", "controls", "empty", "retry-box"]) show(id, false);
    show("not-found", true);
    $("project-title").textContent = "Not found";
    document.title = "Not found · labelwise";
  }

  // ---------------------------------------------------------------- keyboard

  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
    if (!project) return;
    const key = e.key;
    if ((e.ctrlKey || e.metaKey) && key.toLowerCase() === "z") {
      e.preventDefault();
      undo();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^[0-9]$/.test(key)) {
      const i = key === "0" ? 9 : Number(key) - 1;
      const name = project.classes[i];
      if (name === undefined) return;
      e.preventDefault();
      if (project.task_type === "multilabel") toggle(name);
      else choose(name);
    } else if (key === "s" || key === "S") {
      e.preventDefault();
      skip();
    } else if (key === "u" || key === "U") {
      e.preventDefault();
      undo();
    } else if ((key === "r" || key === "R") && state.pending) {
      e.preventDefault();
      send();
    } else if (key === "Enter" && project.task_type === "multilabel" && state.current && !state.pending
               && !(t && t.tagName === "BUTTON")) {
      e.preventDefault();
      choose([...chosen]);
    }
  });

  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);
  $("retry").addEventListener("click", send);
  $("submit-multi").addEventListener("click", () => choose([...chosen]));

  // ---------------------------------------------------------------- start

  (async () => {
    user = await LW.showUser();
    try {
      project = await LW.api(`/api/projects/${pid}`);
    } catch (e) {
      if (e instanceof LW.ApiError && e.status === 404) return notFound();
      throw e;
    }
    $("project-title").textContent = project.name;
    document.title = `Label ${project.name} · labelwise`;
    $("queue-info").textContent = `${project.task_type} · ${project.classes.length} classes`;
    load();
    updateCount();
    if (state.pending) {
      // a save that had not gone through when the page was left: show it and send it again
      showTask(state.pending.claimed);
      markPending();
      send();
      return;
    }
    if (state.current) {
      try {
        const task = await LW.api(`/api/tasks/${state.current.task.id}`);
        const valid = task.status === "leased" && task.lease_owner === user.id &&
          new Date(task.lease_expires.endsWith("Z") ? task.lease_expires : task.lease_expires + "Z") > new Date();
        if (valid) return showTask(state.current);
      } catch (e) { /* gone: claim another */ }
      state.current = null;
    }
    next();
  })().catch((e) => LW.status(`The page could not start: ${e.message}`, "error", true));
})();
