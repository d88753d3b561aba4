// The dashboard's guidelines editor, flagged items and members (admins and the project's
// owners; see _project_admin.html). Guidelines are saved with PUT /api/projects/{id}/guidelines:
// every save is a new version. Members: GET/POST/PATCH/DELETE /api/projects/{id}/members.
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

  const ROLES = ["annotator", "reviewer", "owner"];

  function memberRow(m) {
    const select = LW.el("select", { "aria-label": `Role of ${m.name}`, "data-member": m.id },
      ...ROLES.map((r) => {
        const o = LW.el("option", { value: r }, r);
        if (r === m.project_role) o.selected = true;
        return o;
      }));
    select.addEventListener("change", () => memberAction(
      () => LW.api(`/api/projects/${pid}/members/${m.id}`, { method: "PATCH", json: { role: select.value } }),
      `${m.name} is now ${select.value} of this project.`));
    const remove = LW.el("button", { type: "button", "aria-label": `Remove ${m.name}` }, "Remove");
    remove.addEventListener("click", () => {
      if (!window.confirm(`Remove ${m.name} from this project? The tasks they hold go back to the queue.`)) return;
      memberAction(() => LW.api(`/api/projects/${pid}/members/${m.id}`, { method: "DELETE" }),
        `${m.name} was removed.`);
    });
    const name = m.role === "admin" ? `${m.name} (admin)` : m.name;
    return LW.el("tr", { "data-member": m.id }, LW.el("td", {}, name), LW.el("td", {}, select), LW.el("td", {}, remove));
  }

  async function loadMembers() {
    const members = await LW.api(`/api/projects/${pid}/members`);
    const body = $("members").querySelector("tbody");
    body.replaceChildren(...members.map(memberRow));
    if (!members.length) body.append(LW.el("tr", {}, LW.el("td", { colspan: 3, class: "muted" }, "No members yet.")));
  }

  async function memberAction(call, done) {
    $("members-error").textContent = "";
    $("members-result").textContent = "";
    try {
      await call();
      $("members-result").textContent = done;
    } catch (e) {
      $("members-error").textContent = e.message;
    }
    await loadMembers().catch((e) => { $("members-error").textContent = e.message; });
  }

  function addMember(event) {
    event.preventDefault();
    const id = Number($("member-id").value);
    if (!Number.isInteger(id) || id < 1) {
      $("members-error").textContent = "Enter the user's id (a whole number, from the admin's user list).";
      return;
    }
    const role = $("member-role").value;
    memberAction(() => LW.api(`/api/projects/${pid}/members`, { method: "POST", json: { annotator_id: id, role } }),
      `User ${id} is ${role} of this project.`);
  }

  (async () => {
    const user = await LW.me();
    const owner = LW.isOwner(user, pid);
    if (!owner) return;
    try {
      project = await LW.api(`/api/projects/${pid}`);
    } catch (e) {
      return; // dashboard.js shows "Not found"
    }
    $("project-admin").hidden = false;
    $("guide-form").addEventListener("submit", save);
    $("member-form").addEventListener("submit", addMember);
    showGuidelines(await LW.api(`/api/projects/${pid}/guidelines`));
    await Promise.all([loadVersions(), loadFlags(), loadMembers()]);
    setInterval(() => loadFlags().catch(() => {}), 15000);
  })().catch((e) => LW.status(`The project settings could not start: ${e.message}`, "error"));
})();
