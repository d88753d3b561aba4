// The labeling view: one task at a time, keyboard first, nothing lost when a save fails.
//
// State kept in this tab's sessionStorage (so a reload loses nothing): the task on screen, a
// label whose save is pending, tasks put aside by an undo, and the last labels given (for undo).
// Also here: the project's guidelines (g), class definitions on the class buttons, the hard-case
// note, flags (f), the annotator's recent labels with "Change" (an edit is a new answer), the
// batch counter, image zoom (z), and a question before a multilabel item is saved with no class.
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
  let guidelines = null; // GET /api/projects/{pid}/guidelines
  let editing = null; // a history entry whose label is being changed
  let confirmingEmpty = false; // multilabel: Enter with nothing selected asks first
  let shownItemId = null;

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
  // weights (from the model): > 0 the word speaks for the predicted class, < 0 against it.
  function highlighted(text, keywords, weights, label) {
    const p = LW.el("p", { class: "item-text" });
    const list = (keywords || []).filter((w) => w && w.trim());
    const words = list.map(escapeRegExp);
    if (!words.length) {
      p.textContent = text;
      return p;
    }
    const sign = new Map(list.map((w, i) => [w.toLowerCase(), weights ? Math.sign(weights[i]) : 1]));
    const re = new RegExp(`\\b(${words.join("|")})\\b`, "giu");
    let last = 0;
    for (const m of text.matchAll(re)) {
      if (m.index > last) p.append(text.slice(last, m.index));
      const against = sign.get(m[0].toLowerCase()) < 0;
      const title = label === undefined || label === null ? null : `${against ? "against" : "for"} “${label}”`;
      p.append(LW.el("mark", { class: against ? "cue-against" : "cue-for", title }, m[0]));
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

  // Images fit the box (scaled up or down, whole image visible); z or the Zoom button shows
  // them larger, scrolling inside the box, never widening the page.
  async function renderImage(item, container) {
    const figure = LW.el("figure", { class: "item-image" }, LW.el("p", { class: "muted" }, "Loading image…"));
    container.append(figure);
    $("zoom").hidden = false;
    setZoom(false);
    try {
      const r = await LW.api(`/media/items/${item.id}`, { raw: true });
      const url = URL.createObjectURL(await r.blob());
      figure.replaceChildren(LW.el("img", { src: url, alt: `Image of item ${item.external_id}` }),
        LW.el("figcaption", { class: "muted" }, item.payload.image.split("/").pop()));
    } catch (e) {
      figure.replaceChildren(LW.el("p", { class: "field-error" }, `The image cannot be shown: ${e.message}`));
    }
  }

  function setZoom(on) {
    const fig = document.querySelector("#item-body .item-image");
    if (fig) fig.classList.toggle("zoomed", on);
    $("zoom").setAttribute("aria-pressed", String(on));
  }

  function toggleZoom() {
    if ($("zoom").hidden) return;
    setZoom($("zoom").getAttribute("aria-pressed") !== "true");
  }

  function renderItem(claimed) {
    const item = claimed.item;
    const body = $("item-body");
    body.replaceChildren();
    shownItemId = item.id;
    $("zoom").hidden = true;
    $("cue-note").hidden = true;
    $("item-id").textContent = item.external_id;
    $("task").dataset.externalId = item.external_id;
    $("task").dataset.taskId = claimed.task.id;
    $("round-info").textContent = `task ${claimed.task.id}`;
    renderBatch(claimed.batch);
    renderHardCase(claimed);
    const payload = item.payload || {};
    const rest = Object.entries(payload).filter(([k]) => k !== "text" && k !== "image");
    if (typeof payload.text === "string") {
      const text = displayText(payload.text);
      body.append(highlighted(text, []));
      LW.api(`/api/items/${item.id}/keywords`).then((r) => {
        if (shownItemId !== item.id || !r.keywords.length) return;
        body.querySelector(".item-text").replaceWith(highlighted(text, r.keywords, r.weights, r.label));
        if (r.source === "model") {
          $("cue-note").textContent = `Marked: the words the model weighs most for “${r.label}” ` +
            "(yellow: for it, blue: against it).";
          $("cue-note").hidden = false;
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

  function renderBatch(batch) {
    const el = $("batch-progress");
    el.textContent = batch ? `${batch.position} of ${batch.total} in this batch (round ${batch.round_number})` : "";
  }

  // The hard-case note: the model was unsure of this item (claimed.hard_case), so the
  // guidelines' instructions for hard cases are shown right above it.
  function renderHardCase(claimed) {
    const box = $("hard-case");
    box.hidden = !claimed.hard_case;
    if (!claimed.hard_case) return;
    const pred = claimed.prediction;
    const sure = pred && pred.confidence !== null && pred.confidence !== undefined && project.show_predictions
      ? ` (it is only ${LW.pct(pred.confidence)} sure of its guess)` : "";
    $("hard-case-why").textContent = `The model is unsure about this item${sure}: these are the items ` +
      "that teach it most, so take a moment. Press g for the guidelines.";
    const html = guidelines && guidelines.hard_cases_html;
    // server-rendered Markdown with raw HTML escaped (routes/guidelines.py): safe to insert
    $("hard-case-text").innerHTML = html || "";
  }

  function classNote(name) {
    const note = guidelines && guidelines.classes ? guidelines.classes[name] : null;
    if (!note) return "";
    const ex = note.examples && note.examples.length ? ` Examples: ${note.examples.map((e) => `“${e}”`).join(", ")}.` : "";
    return `${note.definition || ""}${ex}`.trim();
  }

  function showDefinition(name) {
    const note = classNote(name);
    $("class-definition").textContent = note ? `${name}: ${note}` : "";
  }

  function renderButtons(claimed) {
    const box = $("class-buttons");
    box.replaceChildren();
    const multi = project.task_type === "multilabel";
    const suggested = claimed && claimed.prediction && project.show_predictions ? String(claimed.prediction.label) : null;
    project.classes.forEach((name, i) => {
      const key = i < 9 ? String(i + 1) : i === 9 ? "0" : null;
      const note = classNote(name);
      // the accessible name is the visible text ("1 great"); the definition is its description
      const attrs = {
        type: "button",
        class: "class-button" + (suggested === name ? " suggested" : ""),
        "data-label": name,
        "aria-keyshortcuts": key,
        "aria-pressed": multi ? String(chosen.has(name)) : null,
        "aria-describedby": note ? `class-def-${i}` : null,
        onclick: () => (multi ? toggle(name) : choose(name)),
        onfocus: () => showDefinition(name),
        onmouseenter: () => showDefinition(name),
      };
      box.append(LW.el("button", attrs, key ? LW.el("kbd", {}, key) : null, " ", name));
      if (note) box.append(LW.el("span", { id: `class-def-${i}`, hidden: true }, note));
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
    $("skip").disabled = Boolean(state.pending) || Boolean(editing);
    $("flag").disabled = Boolean(state.pending) || Boolean(editing) || !state.current;
    $("undo").disabled = Boolean(state.pending) || Boolean(editing) || !state.history.length;
  }

  function showTask(claimed) {
    clearTimeout(pollTimer);
    state.current = claimed;
    save();
    chosen = new Set();
    hideConfirm();
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

  // ---------------------------------------------------------------- history and edits

  async function loadHistory() {
    let entries;
    try {
      entries = await LW.api(`/api/projects/${pid}/history?limit=10`);
    } catch (e) {
      return; // the list is a convenience; labeling goes on without it
    }
    const list = $("history-list");
    list.replaceChildren();
    for (const h of entries) {
      const label = [].concat(h.annotation.label).join(", ") || "(no class)";
      const li = LW.el("li", { "data-annotation-id": h.annotation.id },
        LW.el("span", { class: "history-item" }, h.item.external_id), " ",
        LW.el("span", { class: "history-label" }, label), " ");
      if (h.editable) {
        li.append(LW.el("button", {
          type: "button", class: "small", "aria-label": `Change the label of ${h.item.external_id}`,
          onclick: () => startEdit(h),
        }, "Change"));
      } else {
        li.append(LW.el("span", { class: "muted" }, "(round closed)"));
      }
      list.append(li);
    }
    $("history").hidden = !entries.length;
  }

  function startEdit(entry) {
    if (state.pending || busy) return;
    editing = entry;
    chosen = new Set();
    hideConfirm();
    const label = [].concat(entry.annotation.label).join(", ") || "no class";
    $("edit-text").textContent = `Changing your label for ${entry.item.external_id} (was “${label}”): ` +
      "pick the new class.";
    show("edit-banner", true);
    show("empty", false);
    show("task", true);
    show("controls", true);
    renderItem({ task: { id: entry.annotation.task_id }, item: entry.item, prediction: null, hard_case: false, batch: null });
    $("item-body").focus({ preventScroll: true });
  }

  function endEdit() {
    editing = null;
    chosen = new Set();
    show("edit-banner", false);
    if (state.current) {
      renderItem(state.current);
      $("item-body").focus({ preventScroll: true });
    } else {
      showEmpty();
    }
  }

  async function sendEdit(label) {
    const entry = editing;
    busy = true;
    try {
      await LW.api(`/api/annotations/${entry.annotation.id}/edit`, { method: "POST", json: { label } });
      busy = false;
      LW.status(`Changed ${entry.item.external_id} to “${[].concat(label).join(", ") || "no class"}”.`, "ok");
      // the undo list holds the old annotation id, which no longer exists
      state.history = state.history.filter((h) => h.annotation.id !== entry.annotation.id);
      save();
      endEdit();
      loadHistory();
    } catch (e) {
      busy = false;
      LW.status(`The change was not saved: ${e.message}`, "error", true);
      if (e instanceof LW.ApiError && e.status === 409) {
        endEdit();
        loadHistory();
      }
    }
  }

  // ---------------------------------------------------------------- multilabel: nothing selected

  function askEmpty() {
    confirmingEmpty = true;
    show("confirm-empty", true);
  }

  function hideConfirm() {
    confirmingEmpty = false;
    show("confirm-empty", false);
  }

  function submitMulti() {
    if (state.pending || busy || (!state.current && !editing)) return;
    if (!chosen.size && !confirmingEmpty) return askEmpty();
    hideConfirm();
    choose([...chosen]);
  }

  // ---------------------------------------------------------------- guidelines and flags

  async function loadGuidelines() {
    try {
      guidelines = await LW.api(`/api/projects/${pid}/guidelines`);
    } catch (e) {
      guidelines = null;
    }
  }

  function openGuidelines() {
    const g = guidelines;
    $("guidelines-version").textContent = g && g.version
      ? `Version ${g.version}, ${LW.when(g.created)}.` : "This project has no guidelines yet.";
    // server-rendered Markdown with raw HTML escaped (routes/guidelines.py): safe to insert
    $("guidelines-body").innerHTML = (g && g.body_html) || "";
    $("guidelines-hard").innerHTML = (g && g.hard_cases_html) || "<p>No instructions for hard cases yet.</p>";
    const dl = $("guidelines-classes");
    dl.replaceChildren();
    for (const name of project.classes) {
      dl.append(LW.el("dt", {}, name), LW.el("dd", {}, classNote(name) || "No definition yet."));
    }
    $("guidelines-dialog").showModal();
  }

  function openFlag() {
    if (!state.current || state.pending || editing) return;
    $("flag-reason").value = "";
    $("flag-error").textContent = "";
    $("flag-reason").removeAttribute("aria-invalid");
    $("flag-dialog").showModal();
    $("flag-reason").focus();
  }

  async function sendFlag(event) {
    event.preventDefault();
    const reason = $("flag-reason").value.trim();
    if (!reason) {
      $("flag-error").textContent = "Say what is wrong with the item.";
      $("flag-reason").setAttribute("aria-invalid", "true");
      $("flag-reason").focus();
      return;
    }
    const claimed = state.current;
    try {
      await LW.api(`/api/tasks/${claimed.task.id}/flags`, { method: "POST", json: { reason } });
      $("flag-dialog").close();
      LW.status(`Flagged ${claimed.item.external_id}. Now label it, or skip it with s.`, "ok");
    } catch (e) {
      $("flag-error").textContent = `The flag was not saved: ${e.message}`;
    }
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
    if (editing) {
      pollTimer = setTimeout(next, POLL_MS); // the item being changed stays on screen
      return;
    }
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
    if (state.pending || (!state.current && !editing)) return;
    hideConfirm();
    if (chosen.has(name)) chosen.delete(name);
    else chosen.add(name);
    for (const b of document.querySelectorAll(".class-button")) {
      b.setAttribute("aria-pressed", String(chosen.has(b.dataset.label)));
      b.classList.toggle("chosen", chosen.has(b.dataset.label));
    }
  }

  function choose(label) {
    if (editing && !state.pending && !busy) return sendEdit(label);
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
      LW.status(`Saved “${[].concat(p.label).join(", ") || "no class"}” for ${p.claimed.item.external_id}.`, "ok");
      busy = false;
      next();
      loadHistory();
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
    if (state.pending || !state.current || busy || editing) return;
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
    if (state.pending || busy || editing || !state.history.length) return;
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
      loadHistory();
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
    if (!project || document.querySelector("dialog[open]")) return; // a dialog has the keys
    const key = e.key;
    if (key === "Escape") {
      if (confirmingEmpty) hideConfirm();
      else if (editing) endEdit();
      return;
    }
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
    } else if (key === "g" || key === "G") {
      e.preventDefault();
      openGuidelines();
    } else if (key === "f" || key === "F") {
      e.preventDefault();
      openFlag();
    } else if (key === "z" || key === "Z") {
      e.preventDefault();
      toggleZoom();
    } else if ((key === "h" || key === "H") && !$("history").hidden) {
      e.preventDefault();
      const first = $("history-list").querySelector("button");
      (first || $("history-heading")).focus();
    } else if (key === "Enter" && project.task_type === "multilabel" && (state.current || editing) && !state.pending
               && !(t && t.tagName === "BUTTON")) {
      e.preventDefault();
      submitMulti();
    }
  });

  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);
  $("retry").addEventListener("click", send);
  $("submit-multi").addEventListener("click", submitMulti);
  $("confirm-empty-yes").addEventListener("click", () => {
    confirmingEmpty = true;
    submitMulti();
  });
  $("confirm-empty-no").addEventListener("click", () => {
    hideConfirm();
    $("item-body").focus({ preventScroll: true });
  });
  $("edit-cancel").addEventListener("click", endEdit);
  $("flag").addEventListener("click", openFlag);
  $("flag-form").addEventListener("submit", sendFlag);
  $("flag-cancel").addEventListener("click", () => $("flag-dialog").close());
  $("open-guidelines").addEventListener("click", openGuidelines);
  $("guidelines-close").addEventListener("click", () => $("guidelines-dialog").close());
  $("zoom").addEventListener("click", toggleZoom);
  for (const id of ["guidelines-dialog", "flag-dialog"]) {
    $(id).addEventListener("close", () => $("item-body").focus({ preventScroll: true }));
  }

  // ---------------------------------------------------------------- closed tab
  // A closed tab (or a page left for another) gives its tasks back at once, not after the
  // lease (lease_seconds, 5 minutes by default): the queue does not run dry for the others
  // while the task waits for an annotator who has gone. keepalive lets the request outlive
  // the page; the token goes in the header as on every call. A label still being saved is
  // not released: its retry finishes it.
  let released = false;
  window.addEventListener("pagehide", () => {
    const t = LW.token();
    const saving = state.pending ? state.pending.claimed.task.id : null;
    const held = [state.current, ...state.upcoming].filter((c) => c && c.task.id !== saving);
    if (!t || !held.length) return;
    for (const c of held) {
      fetch(`/api/tasks/${c.task.id}/release`, {
        method: "POST",
        keepalive: true,
        headers: { Authorization: "Bearer " + t },
      }).catch(() => {});
    }
    released = true;
  });
  // back from the browser's page cache: the tasks on screen were given back, claim again
  window.addEventListener("pageshow", (e) => {
    if (!e.persisted || !released) return;
    released = false;
    state.current = null;
    state.upcoming = [];
    next();
  });

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
    await loadGuidelines();
    loadHistory();
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
