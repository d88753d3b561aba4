// The dashboard's guidelines editor and flagged items (admins only; see _project_admin.html).
// Guidelines are saved with PUT /api/projects/{id}/guidelines: every save is a new version.
"use strict";

(() => {
  const pid = LW.projectId();
  const $ = (id) => document.getElementById(id);
  let project = null;

  function classFields(classes, notes) {
    const box = $("guide-classes");
    box.querySelectorAll(".class-note").forEach((n) => n.remove());
    classes.forEach((name, i) => {
      const note = notes[name] || { definition: "", examples: [] };
      box.append(LW.el("div", { class: "class-note grid2" },
        LW.el("div", {},
          LW.el("label", { for: `guide-def-${i}` }, `${name}: definition`),
          LW.el("input", { id: `guide-def-${i}`, "data-class": name, class: "guide-def", maxlength: 2000, value: note.definition || "" })),
        LW.el("div", {},
          LW.el("label", { for: `guide-ex-${i}` }, `${name}: examples`),
          (() => {
            const t = LW.el("textarea", { id: `guide-ex-${i}`, "data-class": name, class: "guide-ex", rows: 2 });
            t.value = (note.examples || []).join("\n");
            return t;
          })())));
    });
  }

  function showGuidelines(g) {
    $("guide-version").textContent = g.version ? `Version ${g.version}, saved ${LW.when(g.created)}.` : "No guidelines yet.";
    $("guide-body").value = g.body || "";
    $("guide-hard").value = g.hard_cases || "";
    classFields(project.classes, g.classes || {});
  }

  async function loadVersions() {
    const versions = await LW.api(`/api/projects/${pid}/guidelines/versions`);
    const list = $("guide-versions");
    list.replaceChildren(...versions.slice().reverse().map((v) =>
      LW.el("li", {}, `Version ${v.version}, ${LW.when(v.created)}: ${v.body.slice(0, 80) || "(empty)"}`)));
  }

  async function save(event) {
    event.preventDefault();
    $("guide-error").textContent = "";
    $("guide-result").textContent = "";
    const classes = {};
    for (const input of document.querySelectorAll(".guide-def")) {
      const name = input.dataset.class;
      const ex = document.querySelector(`.guide-ex[data-class="${CSS.escape(name)}"]`);
      const examples = ex.value.split("\n").map((s) => s.trim()).filter(Boolean);
      if (input.value.trim() || examples.length) classes[name] = { definition: input.value.trim(), examples };
    }
    try {
      const g = await LW.api(`/api/projects/${pid}/guidelines`, {
        method: "PUT", json: { body: $("guide-body").value, classes, hard_cases: $("guide-hard").value },
      });
      showGuidelines(g);
      $("guide-result").textContent = `Saved as version ${g.version}.`;
      loadVersions();
    } catch (e) {
      $("guide-error").textContent = e.message;
    }
  }

  async function loadFlags() {
    const flags = await LW.api(`/api/projects/${pid}/flags`);
    const body = $("flags").querySelector("tbody");
    body.replaceChildren(...flags.slice().reverse().map((f) => LW.el("tr", {},
      LW.el("td", {}, f.external_id || String(f.item_id)), LW.el("td", {}, f.reason),
      LW.el("td", {}, f.annotator || "–"), LW.el("td", {}, LW.when(f.created)))));
    if (!flags.length) body.append(LW.el("tr", {}, LW.el("td", { colspan: 4, class: "muted" }, "No item has been flagged.")));
  }

  (async () => {
    const user = await LW.me();
    if (user.role !== "admin") return;
    try {
      project = await LW.api(`/api/projects/${pid}`);
    } catch (e) {
      return; // dashboard.js shows "Not found"
    }
    $("project-admin").hidden = false;
    $("guide-form").addEventListener("submit", save);
    showGuidelines(await LW.api(`/api/projects/${pid}/guidelines`));
    await Promise.all([loadVersions(), loadFlags()]);
    setInterval(() => loadFlags().catch(() => {}), 15000);
  })().catch((e) => LW.status(`The guidelines editor could not start: ${e.message}`, "error"));
})();
