// The dashboard's data-quality sections (see _quality.html): annotator quality as a table and a
// per-annotator bar chart (GET /api/projects/{id}/annotators/quality), Fleiss' κ, the review
// queue's counts (progress.quality) and, for admins, the consensus and gold settings (PATCH).
// Admins and reviewers only: the quality API refuses annotators, so they never see the section.
"use strict";

(() => {
  const pid = LW.projectId();
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 10000;
  const SETTINGS = ["consensus_share", "consensus_k", "consensus_method", "consensus_min_agreement", "gold_rate", "gold_min_accuracy"];
  const REASONS = ["disagreement", "annotator", "label_issue", "manual"];

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const num = (x, digits = 2) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

  // Three bars per annotator on a 0–1 scale: gold accuracy, agreement with consensus, mean κ
  // (a negative κ is drawn as an empty bar; its value is in the bar's title and the table).
  // The project's gold threshold is a dashed line. Colours are style.css's.
  const MEASURES = [
    ["gold_accuracy", "gold accuracy", "bar-gold"],
    ["consensus_agreement", "agreement with consensus", "bar-agree"],
    ["mean_kappa", "Cohen's κ", "bar-kappa"],
  ];

  function drawChart(container, report) {
    const rows = report.annotators;
    const W = 560, M = { l: 110, r: 16, t: 28, b: 30 }, BAR = 9, GAP = 12;
    const H = M.t + M.b + Math.max(rows.length, 1) * (MEASURES.length * BAR + GAP);
    const summary = rows.map((r) => `${r.name}: ${MEASURES.map(([k, n]) => `${n} ${num(r[k])}`).join(", ")}${r.flagged ? " (flagged)" : ""}`);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "curve-svg quality-chart",
      "aria-label": `Annotator quality: ${summary.join("; ") || "no answers yet"}` });
    if (!rows.length) {
      root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" }, "No answers yet."));
      container.replaceChildren(root);
      return;
    }
    const x = (v) => M.l + Math.max(0, Math.min(1, v)) * (W - M.l - M.r);
    for (const t of [0, 0.25, 0.5, 0.75, 1]) {
      root.append(svg("line", { x1: x(t), x2: x(t), y1: M.t - 4, y2: H - M.b, class: "grid" }));
      root.append(svg("text", { x: x(t), y: H - M.b + 16, "text-anchor": "middle" }, t.toFixed(2)));
    }
    rows.forEach((r, i) => {
      const y0 = M.t + i * (MEASURES.length * BAR + GAP);
      const name = r.name.length > 14 ? r.name.slice(0, 13) + "…" : r.name;
      root.append(svg("text", { x: M.l - 8, y: y0 + (MEASURES.length * BAR) / 2 + 4, "text-anchor": "end",
        class: r.flagged ? "axis-title flagged" : "axis-title" }, r.flagged ? `⚑ ${name}` : name));
      MEASURES.forEach(([key, label, cls], j) => {
        const v = r[key];
        const bar = svg("rect", { x: x(0), y: y0 + j * BAR, height: BAR - 1, width: v === null ? 0 : x(v) - x(0),
          class: cls, "data-annotator": r.name, "data-measure": key });
        bar.append(svg("title", {}, `${r.name}: ${label} ${num(v)}`));
        root.append(bar);
      });
    });
    const thr = report.gold_min_accuracy;
    root.append(svg("line", { x1: x(thr), x2: x(thr), y1: M.t - 4, y2: H - M.b, class: "threshold" }));
    const legend = svg("g", { class: "legend", transform: "translate(8, 6)" });
    let lx = 0;
    for (const [, label, cls] of MEASURES) {
      legend.append(svg("rect", { x: lx, y: 2, width: 10, height: 10, class: cls }));
      legend.append(svg("text", { x: lx + 14, y: 11 }, label));
      lx += 24 + label.length * 6.5;
    }
    legend.append(svg("text", { x: lx, y: 11 }, `- - gold threshold ${thr}`));
    root.append(legend);
    container.replaceChildren(root);
  }

  function drawTable(report) {
    const body = $("quality-table").querySelector("tbody");
    body.replaceChildren();
    const withN = (v, n) => (v === null || v === undefined ? "–" : `${LW.pct(v)} (${n})`);
    for (const r of report.annotators) {
      body.append(LW.el("tr", { "data-annotator": r.name },
        LW.el("td", {}, r.name), LW.el("td", {}, r.n_answers),
        LW.el("td", {}, withN(r.gold_accuracy, r.n_gold)),
        LW.el("td", {}, withN(r.consensus_agreement, r.n_consensus)),
        LW.el("td", {}, num(r.mean_kappa)), LW.el("td", {}, LW.fmt(r.labels_per_hour, 1)),
        LW.el("td", { class: r.flagged ? "flagged" : "" }, r.flagged ? "yes" : "no")));
    }
    if (!report.annotators.length) body.append(LW.el("tr", {}, LW.el("td", { colspan: 7, class: "muted" }, "No answers yet.")));
    $("fleiss").textContent = report.fleiss_kappa === null
      ? "Fleiss' κ: – (needs items answered by two or more people)."
      : `Fleiss' κ for the project: ${num(report.fleiss_kappa)} (over items answered by two or more people).`;
  }

  function fact(dl, term, value, id) {
    dl.append(LW.el("dt", {}, term), LW.el("dd", id ? { id } : {}, value));
  }

  function drawCounts(q) {
    const sum = (what) => REASONS.reduce((s, r) => s + (q[`${r}_${what}`] || 0), 0);
    const dl = $("review-counts");
    dl.replaceChildren();
    fact(dl, "In review", LW.fmt(q.in_review || 0, 0), "q-in-review");
    fact(dl, "Confirmed by a reviewer", LW.fmt(sum("confirmed"), 0), "q-confirmed");
    fact(dl, "Corrected by a reviewer", LW.fmt(sum("corrected"), 0), "q-corrected");
    const byReason = REASONS.filter((r) => q[`${r}_flagged`]).map((r) => `${r.replace("_", " ")} ${q[`${r}_flagged`]}`);
    fact(dl, "Sent to review, by reason", byReason.join(", ") || "none");
    fact(dl, "Extra answers from consensus", `${LW.fmt(q.extra_annotations || 0, 0)} (on ${LW.fmt(q.consensus_items || 0, 0)} items)`);
    fact(dl, "Gold items (answers)", `${LW.fmt(q.gold || 0, 0)} (${LW.fmt(q.gold_answers || 0, 0)})`);
  }

  async function refresh() {
    const [report, progress] = await Promise.all([
      LW.api(`/api/projects/${pid}/annotators/quality`),
      LW.api(`/api/projects/${pid}/progress`),
    ]);
    drawChart($("quality-chart"), report);
    drawTable(report);
    drawCounts(progress.quality || {});
    $("quality").dataset.loaded = "true";
  }

  function fillSettings(form, project) {
    for (const name of SETTINGS) if (project[name] !== undefined) form.elements[name].value = project[name];
  }

  function setupSettings(project) {
    const form = $("quality-form");
    const formError = $("quality-error");
    formError.tabIndex = -1;
    fillSettings(form, project);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      LWForms.clearErrors(form);
      $("quality-result").textContent = "";
      const body = {};
      let bad = false;
      for (const name of SETTINGS) {
        const input = form.elements[name];
        if (name === "consensus_method") {
          body[name] = input.value;
        } else if (input.value === "" || !Number.isFinite(Number(input.value))) {
          bad = LWForms.fieldError(form, name, "Enter a number.") || bad;
        } else {
          body[name] = Number(input.value);
        }
      }
      if (bad) return form.querySelector("[aria-invalid]").focus();
      try {
        const p = await LW.api(`/api/projects/${pid}`, { method: "PATCH", json: body });
        fillSettings(form, p);
        $("quality-result").textContent = "Saved: the next round uses these settings.";
      } catch (e) {
        if (e instanceof LW.ApiError) LWForms.showApiError(form, e.detail, formError);
        else formError.textContent = "The server cannot be reached; nothing was saved.";
      }
    });
  }

  (async () => {
    const user = await LW.me();
    // reviewers and owners of this project (the API's rule for the quality views)
    const here = user.role === "admin" ? "owner" : (user.project_roles || {})[String(pid)];
    if (user.role !== "reviewer" && here !== "reviewer" && here !== "owner") return;
    let project;
    try {
      project = await LW.api(`/api/projects/${pid}`);
    } catch (e) {
      return; // dashboard.js shows "Not found"
    }
    $("quality").hidden = false;
    if (LW.isOwner(user, pid)) setupSettings(project);
    await refresh();
    setInterval(() => {
      if (!document.hidden) refresh().catch(() => { /* next tick */ });
    }, REFRESH_MS);
  })().catch((e) => LW.status(`The data-quality section could not load: ${e.message}`, "error"));
})();
