// The owner's dashboard: learning curve (headline metric, majority baseline, the random-sampling
// baseline once it means something, replayed reference curves), rounds, queue, throughput per
// hour of active labeling, cost and return, stopping status, dataset versions and item import.
"use strict";

(() => {
  const pid = LW.projectId();
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 5000;
  let user = null;
  let project = null;

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceTicks(lo, hi, n, integer = false) {
    const span = hi - lo || 1;
    const step0 = span / n;
    const mag = 10 ** Math.floor(Math.log10(step0));
    const step = [1, 2, 2.5, 5, 10].filter((m) => !integer || m !== 2.5).map((m) => Math.max(m * mag, integer ? 1 : 0)).find((s) => s >= step0);
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
    return ticks;
  }

  const METRIC_NAMES = { accuracy: "accuracy", macro_f1: "macro-F1" };

  // An SVG line chart: a metric (y) against labels (x). `series` are measured curves (a point
  // per model), `bands` replayed reference curves (mean line, min-max band), `hlines` constant
  // baselines (the majority class). Colours come from style.css variables, inline, so new
  // elements need no new CSS rules.
  function drawCurve(container, series, target, opts = {}) {
    const { bands = [], hlines = [], metric = "accuracy" } = opts;
    const W = 560, H = 300, M = { l: 52, r: 16, t: 16, b: 44 };
    const all = series.flatMap((s) => s.points);
    const described = [...series.map((s) => `${s.name}, ${s.points.length} points`),
      ...hlines.map((h) => `${h.name} at ${h.value.toFixed(3)}`), ...bands.map((b) => `${b.name} (reference)`)];
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "curve-svg",
      "aria-label": `Learning curve (${METRIC_NAMES[metric] || metric}): ${described.join("; ")}` });
    if (!all.length) {
      root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" },
        "No model yet: the first point appears after the first retrain."));
      container.replaceChildren(root);
      return;
    }
    // the reference bands widen the axes only as far as the labels measured so far (+ one step)
    const xmeasured = Math.max(...all.map((p) => p[0]));
    const bandPts = bands.map((b) => b.rows.filter((r, i) => r[0] <= xmeasured || (i > 0 && b.rows[i - 1][0] < xmeasured)));
    const xs = [...all.map((p) => p[0]), ...bandPts.flat().map((r) => r[0])];
    const ys = [...all.map((p) => p[1]), ...bandPts.flat().flatMap((r) => [r[2], r[3]]), ...hlines.map((h) => h.value)];
    const xmax = Math.max(...xs) * 1.05 || 1;
    let ymin = Math.min(...ys, target ?? 1);
    let ymax = Math.max(...ys, target ?? 0);
    ymin = Math.max(0, Math.floor((ymin - 0.05) * 10) / 10);
    ymax = Math.min(1, Math.ceil((ymax + 0.02) * 10) / 10);
    if (ymax <= ymin) ymax = ymin + 0.1;
    const x = (v) => M.l + (v / xmax) * (W - M.l - M.r);
    const y = (v) => H - M.b - ((v - ymin) / (ymax - ymin)) * (H - M.t - M.b);
    const axes = svg("g", { class: "axes" });
    for (const t of niceTicks(0, xmax, 6, true)) {
      axes.append(svg("line", { x1: x(t), x2: x(t), y1: M.t, y2: H - M.b, class: "grid" }));
      axes.append(svg("text", { x: x(t), y: H - M.b + 16, "text-anchor": "middle" }, LW.fmt(t, 0)));
    }
    for (const t of niceTicks(ymin, ymax, 5)) {
      axes.append(svg("line", { x1: M.l, x2: W - M.r, y1: y(t), y2: y(t), class: "grid" }));
      axes.append(svg("text", { x: M.l - 6, y: y(t) + 4, "text-anchor": "end" }, t.toFixed(2)));
    }
    axes.append(svg("text", { x: (M.l + W - M.r) / 2, y: H - 8, "text-anchor": "middle", class: "axis-title" }, "labels"));
    axes.append(svg("text", { x: 14, y: (M.t + H - M.b) / 2, "text-anchor": "middle", class: "axis-title",
      transform: `rotate(-90 14 ${(M.t + H - M.b) / 2})` }, `validation ${METRIC_NAMES[metric] || metric}`));
    root.append(axes);
    bands.forEach((b, i) => {
      const rows = bandPts[i];
      if (!rows.length) return;
      const g = svg("g", { class: `reference ${b.cls}`, "data-reference": b.name });
      const area = [...rows.map((r) => `${x(r[0])},${y(r[3])}`), ...[...rows].reverse().map((r) => `${x(r[0])},${y(r[2])}`)].join(" ");
      g.append(svg("polygon", { points: area, style: `fill: ${b.color}; opacity: 0.12` }));
      g.append(svg("polyline", { points: rows.map((r) => `${x(r[0])},${y(r[1])}`).join(" "), fill: "none",
        style: `stroke: ${b.color}; stroke-width: 1.5; stroke-dasharray: 2 4` }));
      for (const r of rows) {
        const c = svg("circle", { cx: x(r[0]), cy: y(r[1]), r: 2.5, style: `fill: ${b.color}` });
        c.append(svg("title", {}, `${b.name}: ${r[0]} labels, mean ${r[1].toFixed(3)} (min ${r[2].toFixed(3)}, max ${r[3].toFixed(3)})`));
        g.append(c);
      }
      root.append(g);
    });
    for (const h of hlines) {
      if (h.value < ymin || h.value > ymax) continue;
      root.append(svg("line", { x1: M.l, x2: W - M.r, y1: y(h.value), y2: y(h.value), class: "majority",
        style: "stroke: var(--muted); stroke-dasharray: 8 4; stroke-width: 1.5" }));
      root.append(svg("text", { x: W - M.r - 4, y: y(h.value) + 14, "text-anchor": "end" }, h.name));
    }
    if (target !== null && target !== undefined && target >= ymin && target <= ymax) {
      root.append(svg("line", { x1: M.l, x2: W - M.r, y1: y(target), y2: y(target), class: "target" }));
      root.append(svg("text", { x: W - M.r - 4, y: y(target) - 5, "text-anchor": "end", class: "target-label" }, `target ${target}`));
    }
    for (const s of series) {
      const g = svg("g", { class: `series ${s.cls}` });
      if (s.points.length > 1) {
        g.append(svg("polyline", { points: s.points.map((p) => `${x(p[0])},${y(p[1])}`).join(" "), fill: "none" }));
      }
      for (const p of s.points) {
        const c = svg("circle", { cx: x(p[0]), cy: y(p[1]), r: 4.5, class: `pt ${s.pt}` });
        c.append(svg("title", {}, `${s.name}: ${p[0]} labels, ${METRIC_NAMES[metric] || metric} ${p[1].toFixed(3)}`));
        g.append(c);
      }
      root.append(g);
    }
    const legend = svg("g", { class: "legend", transform: `translate(${M.l + 10}, ${M.t + 6})` });
    const entries = [...series.map((s) => ({ name: s.name, cls: `swatch ${s.pt}` })),
      ...bands.filter((b, i) => bandPts[i].length).map((b) => ({ name: b.name, style: `fill: ${b.color}; opacity: 0.5` }))];
    entries.forEach((e, i) => {
      legend.append(svg("rect", { x: 1, y: i * 18 + 1, width: 10, height: 10, rx: 2, ...(e.cls ? { class: e.cls } : { style: e.style }) }));
      legend.append(svg("text", { x: 16, y: i * 18 + 10 }, e.name));
    });
    root.append(legend);
    container.replaceChildren(root);
  }

  function curveTable(active, f1, random) {
    const body = $("curve-table").querySelector("tbody");
    body.replaceChildren();
    const f1At = Object.fromEntries(f1.map((p) => [p[0], p[1]]));
    const n = Math.max(active.length, random.length);
    const num = (v) => (v === undefined ? "" : v.toFixed(3));
    for (let i = 0; i < n; i++) {
      const a = active[i] || [], r = random[i] || [];
      body.append(LW.el("tr", {}, LW.el("td", {}, a[0] ?? ""), LW.el("td", {}, num(a[1])), LW.el("td", {}, num(f1At[a[0]])),
        LW.el("td", {}, r[0] ?? ""), LW.el("td", {}, num(r[1]))));
    }
  }

  function fact(dl, term, value) {
    dl.append(LW.el("dt", {}, term), LW.el("dd", {}, value));
  }

  function money(x) {
    return x === null || x === undefined ? "–" : Number(x).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  // Strategy health per retrain (newest first), the behind-random warning and the batch-size
  // advice; the numbers come from /progress (strategy_health, strategy_warning, batch_advice).
  function strategyHealth(progress) {
    const num = (x) => (x === null || x === undefined ? "–" : Number(x).toFixed(3));
    const warning = $("strategy-warning");
    warning.hidden = !progress.strategy_warning;
    warning.textContent = progress.strategy_warning ? `Warning: ${progress.strategy_warning}.` : "";
    const hb = $("health").querySelector("tbody");
    hb.replaceChildren();
    const rows = progress.strategy_health || [];
    for (const h of [...rows].reverse()) {
      const strategy = h.arm ? `${h.strategy} (${h.arm})` : (h.strategy || "–");
      hb.append(LW.el("tr", {}, LW.el("td", {}, h.round ?? "–"), LW.el("td", {}, strategy),
        LW.el("td", {}, h.n_labels ?? "–"), LW.el("td", {}, num(h.agreement)),
        LW.el("td", {}, num(h.batch_accuracy)), LW.el("td", {}, num(h.class_balance_tvd)),
        LW.el("td", {}, LW.pct(h.accuracy)), LW.el("td", {}, h.random_accuracy === null || h.random_accuracy === undefined ? "–" : LW.pct(h.random_accuracy))));
    }
    if (!rows.length) hb.append(LW.el("tr", {}, LW.el("td", { colspan: 8, class: "muted" }, "No retrain yet: the signals come with the first model.")));
    const advice = progress.batch_advice || {};
    $("batch-advice").textContent = advice.note ? `Batch size advice: ${advice.note}.` : "";
  }

  async function refresh() {
    const [progress, rounds, models, versions, annotators] = await Promise.all([
      LW.api(`/api/projects/${pid}/progress`),
      LW.api(`/api/projects/${pid}/rounds`),
      LW.api(`/api/projects/${pid}/model-versions`),
      LW.api(`/api/projects/${pid}/dataset-versions`),
      user.role === "admin" ? LW.api("/api/annotators") : Promise.resolve([]),
    ]);
    const stop = progress.stopping_status || "";
    const stopEl = $("stopping");
    stopEl.textContent = stop.charAt(0).toUpperCase() + stop.slice(1);
    stopEl.className = "stopping " + (stop.startsWith("stop") ? "stop" : "continue");

    const majority = progress.majority_baseline;
    const baseline = progress.random_baseline || { ready: false, note: "" };
    $("t-labels").textContent = `${LW.fmt(progress.n_annotations, 0)} / ${LW.fmt(progress.n_to_label, 0)}`;
    $("t-labels-note").textContent = progress.n_validation ? `+ ${LW.fmt(progress.n_validation, 0)} validation items (not to label)` : "";
    $("t-accuracy").textContent = LW.pct(progress.accuracy);
    $("t-accuracy-note").textContent = majority ? `always “${majority.label}”: ${LW.pct(majority.accuracy)}` : "";
    $("t-f1").textContent = progress.macro_f1 === null ? "–" : progress.macro_f1.toFixed(3);
    $("t-f1-note").textContent = majority ? `always “${majority.label}”: ${majority.macro_f1.toFixed(3)}` : "";
    for (const [tile, metric] of [["tile-accuracy", "accuracy"], ["tile-f1", "macro_f1"]]) {
      $(tile).dataset.headline = String(progress.headline_metric === metric);
    }
    $("t-queue").textContent = LW.fmt(progress.queue_depth, 0);
    $("t-cost").textContent = money(progress.cost);
    $("t-strategy").textContent = `${project.strategy} (cold start: ${project.cold_start_strategy})`;

    // the chart leads with the headline metric (macro-F1 for imbalanced classes); the measured
    // random curve is accuracy only, and drawn only once the baseline rule says it means something
    const metric = progress.headline_metric;
    const name = METRIC_NAMES[metric];
    const active = metric === "macro_f1" ? progress.macro_f1_curve : progress.learning_curve;
    const series = [{ name: `active learning (${name})`, cls: "active", pt: "pt-active", points: active }];
    if (baseline.ready && metric === "accuracy") {
      series.push({ name: "random sampling (measured)", cls: "random", pt: "pt-random", points: progress.random_curve });
    }
    const colors = ["var(--accent)", "var(--random)"];
    const ref = progress.reference && progress.reference.metric === metric ? progress.reference : null;
    const bands = ref ? Object.entries(ref.curves).map(([n, rows], i) => ({ name: n, rows, color: colors[i % 2], cls: `ref-${i}` })) : [];
    const hlines = majority ? [{ name: `always “${majority.label}” ${majority[metric].toFixed(3)}`, value: majority[metric] }] : [];
    const target = progress.target_metric === metric ? progress.target : null;
    drawCurve($("curve"), series, target, { bands, hlines, metric });
    curveTable(progress.learning_curve, progress.macro_f1_curve, baseline.ready ? progress.random_curve : []);
    $("curve").dataset.points = String(active.length);
    $("curve").dataset.metric = metric;
    $("curve").dataset.latest = active.length ? String(active[active.length - 1][1]) : "";
    $("curve").dataset.majority = majority ? String(majority[metric]) : "";
    $("curve-note").textContent = baseline.note;
    $("reference-note").textContent = ref ? `${ref.title}: ${ref.protocol}` : "";

    const roi = $("roi");
    roi.replaceChildren();
    const noBaseline = "– (no random baseline yet)";
    fact(roi, "Labels paid for", `${LW.fmt(progress.n_annotations, 0)} × ${money(project.label_cost)} = ${money(progress.cost)}`);
    fact(roi, "Labels saved vs random", progress.labels_saved === null ? (baseline.ready ? "–" : noBaseline) : LW.fmt(progress.labels_saved, 0));
    fact(roi, "Money saved vs random", progress.money_saved === null ? (baseline.ready ? "–" : noBaseline) : money(progress.money_saved));
    const targetName = METRIC_NAMES[progress.target_metric] || progress.target_metric;
    fact(roi, "Labels still needed for the target", progress.target === null ? "no target set"
      : progress.projected_labels_to_target === null ? `not projectable yet (${targetName} ${progress.target})`
        : `${LW.fmt(progress.projected_labels_to_target, 0)} (${targetName} ${progress.target})`);
    fact(roi, "Projected cost to target", progress.projected_labels_to_target === null ? "–"
      : money(progress.projected_labels_to_target * project.label_cost));
    fact(roi, "Calibration error (ECE)", LW.fmt(progress.ece));
    fact(roi, "Rounds (open)", `${progress.rounds} (${progress.open_rounds})`);

    const names = Object.fromEntries(annotators.map((a) => [a.id, a.name]));
    const tp = $("throughput").querySelector("tbody");
    tp.replaceChildren();
    const rows = Object.entries(progress.throughput);
    if (!rows.length) tp.append(LW.el("tr", {}, LW.el("td", { colspan: 2, class: "muted" }, "No timed labels in the last 24 hours (a rate needs two labels less than 5 minutes apart).")));
    for (const [id, rate] of rows) tp.append(LW.el("tr", {}, LW.el("td", {}, names[id] || `annotator #${id}`), LW.el("td", {}, LW.fmt(rate, 1))));

    const byRound = {};
    for (const m of models) if (m.round_id !== null) byRound[m.round_id] = m;
    const rb = $("rounds").querySelector("tbody");
    rb.replaceChildren();
    for (const r of [...rounds].reverse()) {
      const m = byRound[r.id];
      rb.append(LW.el("tr", {}, LW.el("td", {}, r.number), LW.el("td", {}, r.strategy), LW.el("td", {}, LW.when(r.created)),
        LW.el("td", {}, r.closed ? LW.when(r.closed) : "open"), LW.el("td", {}, m ? LW.pct(m.metrics.accuracy) : "–"),
        LW.el("td", {}, m && m.metrics.n_labels !== undefined ? m.metrics.n_labels : "–")));
    }
    if (!rounds.length) rb.append(LW.el("tr", {}, LW.el("td", { colspan: 6, class: "muted" }, "No round yet: import items, then start a round.")));

    strategyHealth(progress);

    const vb = $("versions").querySelector("tbody");
    vb.replaceChildren();
    for (const v of [...versions].reverse()) {
      vb.append(LW.el("tr", {}, LW.el("td", {}, `v${v.id} `, LW.el("code", { title: v.content_hash }, v.content_hash.slice(0, 8))),
        LW.el("td", {}, v.n_labels), LW.el("td", {}, LW.when(v.created)),
        LW.el("td", { class: "row" },
          LW.el("button", { type: "button", "aria-label": `Export version ${v.id} as CSV`, onclick: () => exportVersion(v, "csv") }, "CSV"),
          LW.el("button", { type: "button", "aria-label": `Export version ${v.id} as JSONL`, onclick: () => exportVersion(v, "jsonl") }, "JSONL"))));
    }
    if (!versions.length) vb.append(LW.el("tr", {}, LW.el("td", { colspan: 4, class: "muted" }, "No dataset version yet: every retrain snapshots the labels.")));
    document.body.dataset.loaded = "true";
  }

  async function exportVersion(v, format) {
    try {
      const r = await LW.api(`/api/dataset-versions/${v.id}/export?format=${format}`, { raw: true });
      const disposition = r.headers.get("content-disposition") || "";
      const name = (/filename="([^"]+)"/.exec(disposition) || [])[1] || `dataset-v${v.id}.${format}`;
      const url = URL.createObjectURL(await r.blob());
      const a = LW.el("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      LW.status(`Exported ${name}.`, "ok");
    } catch (e) {
      LW.status(`Export failed: ${e.message}`, "error", true);
    }
  }

  async function action(button, path, okText) {
    button.disabled = true;
    try {
      await LW.api(path, { method: "POST" });
      LW.status(okText, "ok");
      await refresh();
    } catch (e) {
      LW.status(e.message, "error", true);
    } finally {
      button.disabled = false;
    }
  }

  function setupImport() {
    const form = $("import-form");
    const formError = $("import-error");
    formError.tabIndex = -1;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      LWForms.clearErrors(form);
      $("import-result").textContent = "";
      const file = form.elements.file.files[0];
      if (!file) {
        formError.textContent = "Choose a CSV, JSON Lines or Parquet file to import.";
        form.elements.file.setAttribute("aria-invalid", "true");
        form.elements.file.focus();
        return;
      }
      const params = new URLSearchParams();
      for (const name of ["text_field", "id_field", "label_field"]) params.set(name, form.elements[name].value.trim());
      const data = new FormData();
      data.append("file", file);
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const r = await LW.api(`/api/projects/${pid}/items:import?${params}`, { method: "POST", body: data });
        // a big file is imported by a worker: the answer is the import job (202)
        $("import-result").textContent = r.kind === "import"
          ? `The file is being imported by a worker (job ${r.id}); the item counts update as it goes.`
          : `Imported ${r.n_created} new items (${r.n_read} read, ${r.n_skipped} already present).`;
        form.reset();
        await refresh();
      } catch (e) {
        formError.textContent = e instanceof LW.ApiError ? e.detail : "The server cannot be reached; nothing was imported.";
        form.elements.file.setAttribute("aria-invalid", "true");
        formError.focus();
      } finally {
        button.disabled = false;
      }
    });
    $("import-card").hidden = false; // shown once it works: an early click never submits natively
  }

  (async () => {
    user = await LW.showUser();
    try {
      project = await LW.api(`/api/projects/${pid}`);
    } catch (e) {
      if (e instanceof LW.ApiError && e.status === 404) {
        $("dashboard").hidden = true;
        $("not-found").hidden = false;
        document.title = "Not found · labelwise";
        return;
      }
      throw e;
    }
    $("project-title").textContent = project.name;
    document.title = `${project.name} dashboard · labelwise`;
    if (new URLSearchParams(location.search).get("created")) LW.status(`Project ${project.name} created; import items to start.`, "ok");
    $("start-round").addEventListener("click", (e) => action(e.currentTarget, `/api/projects/${pid}/rounds`, "Round started."));
    $("snapshot").addEventListener("click", (e) => action(e.currentTarget, `/api/projects/${pid}/dataset-versions`, "Labels snapshotted."));
    if (LW.isOwner(user, pid)) setupImport();
    await refresh();
    setInterval(() => {
      if (!document.hidden) refresh().catch(() => { /* next tick */ });
    }, REFRESH_MS);
  })().catch((e) => LW.status(`The dashboard could not load: ${e.message}`, "error", true));
})();
