// The project list.
"use strict";

(async () => {
  const user = await LW.showUser();
  const projects = await LW.api("/api/projects");
  const list = document.getElementById("project-list");
  const reviews = user.role === "admin" || user.role === "reviewer";
  document.getElementById("new-project-link").hidden = user.role !== "admin";
  document.getElementById("projects-empty").hidden = projects.length > 0;
  for (const p of projects) {
    list.append(
      LW.el("li", { class: "project" },
        LW.el("span", { class: "project-name" }, p.name),
        LW.el("span", { class: "muted" }, `${p.task_type} · ${p.classes.length} classes · ${p.strategy}`),
        LW.el("span", { class: "row" },
          LW.el("a", { class: "button primary", href: `/projects/${p.id}/label`, "aria-label": `Label ${p.name}` }, "Label"),
          LW.el("a", { class: "button", href: `/projects/${p.id}/dashboard`, "aria-label": `Dashboard of ${p.name}` }, "Dashboard"),
          // the review queue is for reviewers and admins (the API refuses annotators)
          reviews ? LW.el("a", { class: "button", href: `/projects/${p.id}/review`, "aria-label": `Review ${p.name}` }, "Review") : null)));
  }
})().catch((e) => LW.status(e.message, "error", true));
