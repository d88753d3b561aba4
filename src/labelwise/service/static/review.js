// The review page: one item in review at a time, its answers side by side with the model's
// guess, resolved with the number keys (POST /api/items/{id}/review: the label becomes the
// item's, recorded with who resolved it). s skips to the next item, ? lists the keys.
//
// The queue is walked by item id (GET .../review/next?after=<id>); at its end the walk starts
// again from the lowest id, so skipped items come back once the rest are done.
"use strict";

(() => {
  const pid = LW.projectId();
  const POLL_MS = 4000;
  const $ = (id) => document.getElementById(id);

  let project = null;
  let current = null; // the ReviewItem on screen
  let busy = false;
  let chosen = new Set(); // multilabel: classes toggled before Enter
  let pollTimer = null;
  let resolved = 0;

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function labelText(label) {
    if (label === null || label === undefined) return "(none)";
    return Array.isArray(label) ? label.join(", ") || "(no class)" : String(label);
  }

  // ---------------------------------------------------------------- the item

  function displayText(text) {
    return text.replace(/<br\s*\/?>/gi, "\n"); // as on the labeling page: text, never HTML
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

  function renderPayload(item) {
    const body = $("item-body");
    body.replaceChildren();
    const payload = item.payload || {};
    if (typeof payload.text === "string") {
      body.append(LW.el("p", { class: "item-text" }, displayText(payload.text)));
    } else if (typeof payload.image === "string") {
      renderImage(item, body);
    }
    const rest = Object.entries(payload).filter(([k]) => k !== "text" && k !== "image");
    if (rest.length) {
      const rows = rest.map(([k, v]) => LW.el("tr", {}, LW.el("th", { scope: "row" }, k),
        LW.el("td", {}, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v))));
      body.append(LW.el("table", { class: "data fields" },
        LW.el("caption", { class: "sr-only" }, `Fields of item ${item.external_id}`), LW.el("tbody", {}, ...rows)));
    }
    if (!body.childNodes.length) body.append(LW.el("p", { class: "muted" }, "(this item has no content to show)"));
  }

  const REASONS = {
    disagreement: "annotators disagree",
    annotator: "a flagged annotator answered it",
    label_issue: "the model suspects its label",
    manual: "sent by an admin",
  };

  // Each answer is a card (who, what, when); the model's guess is one more card, set apart.
  function renderAnswers(got) {
    const list = $("answers");
    list.replaceChildren();
    for (const a of got.annotations) {
      list.append(LW.el("li", { class: "answer", "data-annotator": a.annotator },
        LW.el("span", { class: "answer-who" }, a.annotator),
        LW.el("span", { class: "answer-label" }, labelText(a.label)),
        LW.el("span", { class: "muted small" }, LW.when(a.created))));
    }
    if (!got.annotations.length) list.append(LW.el("li", { class: "answer muted" }, "No answers (sent to review by hand)."));
    const pred = got.prediction;
    if (pred) {
      const conf = pred.confidence === null || pred.confidence === undefined ? "confidence –" : `confidence ${LW.pct(pred.confidence)}`;
      list.append(LW.el("li", { class: "answer model", "data-annotator": "model" },
        LW.el("span", { class: "answer-who" }, "Model"),
        LW.el("span", { class: "answer-label" }, labelText(pred.label)),
        LW.el("span", { class: "muted small" }, conf)));
    }
    show("answers-box", true);
  }

  function votesFor(name, annotations) {
    return annotations.filter((a) => [].concat(a.label).map(String).includes(name)).length;
  }

  function renderButtons(got) {
    const box = $("class-buttons");
    box.replaceChildren();
    const multi = project.task_type === "multilabel";
    const n = got.annotations.length;
    got.classes.forEach((name, i) => {
      const key = i < 9 ? String(i + 1) : i === 9 ? "0" : null;
      const votes = votesFor(name, got.annotations);
      // the accessible name is the visible text ("1 great 2 of 3 answers"): no aria-label
      box.append(LW.el("button", {
        type: "button",
        class: "class-button" + (votes ? " has-votes" : ""),
        "data-label": name,
        "aria-keyshortcuts": key,
        "aria-pressed": multi ? String(chosen.has(name)) : null,
        onclick: () => (multi ? toggle(name) : resolve(name)),
      }, key ? LW.el("kbd", {}, key) : null, " ", name, " ",
      LW.el("span", { class: "votes" }, n ? `${votes} of ${n} answers` : "")));
    });
    show("submit-multi", multi);
  }

  function showItem(got) {
    clearTimeout(pollTimer);
    current = got;
    chosen = new Set();
    const item = got.item;
    $("item-id").textContent = item.external_id;
    $("review-item").dataset.itemId = item.id;
    $("review-reason").textContent = `In review: ${REASONS[item.review_reason] || item.review_reason || "review"}`;
    $("current-label").textContent = item.label === null || item.label === undefined
      ? "No label yet." : `Label before review: ${labelText(item.label)}.`;
    $("queue-info").textContent = `${got.remaining} in review from this item on`;
    renderPayload(item);
    renderAnswers(got);
    renderButtons(got);
    $("skip").disabled = false; // disabled while the previous item was being resolved
    for (const id of ["empty", "not-found", "forbidden"]) show(id, false);
    show("review-item", true);
    show("controls", true);
    $("item-body").focus({ preventScroll: true });
  }

  function showEmpty() {
    current = null;
    show("review-item", false);
    show("answers-box", false);
    show("controls", false);
    show("empty", true);
    $("queue-info").textContent = "0 in review";
    clearTimeout(pollTimer);
    pollTimer = setTimeout(() => next(0), POLL_MS);
  }

  function refused(e) {
    clearTimeout(pollTimer);
    for (const id of ["review-item", "answers-box", "controls", "empty"]) show(id, false);
    if (e.status === 403) {
      $("forbidden-text").textContent = `${e.detail} Ask an admin for the reviewer role.`;
      show("forbidden", true);
      document.title = "Reviewers only · labelwise";
    } else {
      show("not-found", true);
      $("project-title").textContent = "Not found";
      document.title = "Not found · labelwise";
    }
  }

  // ---------------------------------------------------------------- the queue

  // The next item after `after`; at the end of the queue, round again from the start.
  async function next(after) {
    try {
      let got = await LW.api(`/api/projects/${pid}/review/next?after=${after}`);
      if (got === null && after > 0) got = await LW.api(`/api/projects/${pid}/review/next?after=0`);
      if (got === null) return showEmpty();
      showItem(got);
    } catch (e) {
      if (e instanceof LW.ApiError && (e.status === 403 || e.status === 404)) return refused(e);
      LW.status(`The review queue could not be read (${e.message}); retrying.`, "error", true);
      clearTimeout(pollTimer);
      pollTimer = setTimeout(() => next(after), POLL_MS);
    }
  }

  async function resolve(label) {
    if (!current || busy) return;
    const got = current;
    busy = true;
    for (const b of document.querySelectorAll(".class-button, #submit-multi, #skip")) b.disabled = true;
    try {
      const r = await LW.api(`/api/items/${got.item.id}/review`, { method: "POST", json: { label } });
      resolved += 1;
      $("done-count").textContent = `${resolved} resolved on this page.`;
      LW.status(`Resolved ${got.item.external_id} as “${labelText(r.label)}” (${r.review_outcome}).`, "ok");
      await next(got.item.id);
    } catch (e) {
      if (e instanceof LW.ApiError && e.status === 409) {
        // someone else resolved it first, or an admin took it out of review: move on
        LW.status(`${got.item.external_id} is no longer in review (${e.detail}); here is the next item.`, "error");
        await next(got.item.id);
      } else if (e instanceof LW.ApiError && (e.status === 403 || e.status === 404)) {
        refused(e);
      } else {
        LW.status(`Not resolved: ${e.message}. The item stays here; try again.`, "error", true);
        for (const b of document.querySelectorAll(".class-button, #submit-multi, #skip")) b.disabled = false;
      }
    } finally {
      busy = false;
    }
  }

  function toggle(name) {
    if (!current || busy) return;
    if (chosen.has(name)) chosen.delete(name);
    else chosen.add(name);
    for (const b of document.querySelectorAll(".class-button")) b.setAttribute("aria-pressed", String(chosen.has(b.dataset.label)));
  }

  async function skip() {
    if (!current || busy) return;
    const id = current.item.id;
    busy = true;
    try {
      await next(id);
      if (current && current.item.id === id) LW.status("This is the only item in review.", "info");
    } finally {
      busy = false;
    }
  }

  function openHelp() {
    const d = $("help-dialog");
    if (!d.open) d.showModal();
  }

  // ---------------------------------------------------------------- keyboard

  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
    if (!project || document.querySelector("dialog[open]")) return; // the dialog has the keys
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const key = e.key;
    if (key === "?") {
      e.preventDefault();
      openHelp();
    } else if (/^[0-9]$/.test(key) && current) {
      const name = current.classes[key === "0" ? 9 : Number(key) - 1];
      if (name === undefined) return;
      e.preventDefault();
      if (project.task_type === "multilabel") toggle(name);
      else resolve(name);
    } else if (key === "s" || key === "S") {
      e.preventDefault();
      skip();
    } else if (key === "Enter" && project.task_type === "multilabel" && current && !(t && t.tagName === "BUTTON")) {
      e.preventDefault();
      resolve([...chosen]);
    }
  });

  $("skip").addEventListener("click", skip);
  $("submit-multi").addEventListener("click", () => resolve([...chosen]));
  $("open-help").addEventListener("click", openHelp);
  $("help-close").addEventListener("click", () => $("help-dialog").close());
  $("help-dialog").addEventListener("close", () => {
    const body = $("item-body");
    if (!body.closest("[hidden]")) body.focus({ preventScroll: true });
  });

  // ---------------------------------------------------------------- start

  (async () => {
    await LW.showUser();
    try {
      project = await LW.api(`/api/projects/${pid}`);
    } catch (e) {
      if (e instanceof LW.ApiError && e.status === 404) return refused(e);
      throw e;
    }
    $("project-title").textContent = `Review ${project.name}`;
    document.title = `Review ${project.name} · labelwise`;
    await next(0);
  })().catch((e) => LW.status(`The page could not start: ${e.message}`, "error", true));
})();
