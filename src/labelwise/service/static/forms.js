// Forms: create a project, import items. Errors from the API's 4xx "detail" are shown inline,
// beside the field they name ("field: message; other: message") or at the top of the form.
"use strict";

const LWForms = (() => {
  function clearErrors(form) {
    for (const p of form.querySelectorAll(".field-error, .form-error")) p.textContent = "";
    for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
  }

  function fieldError(form, name, message) {
    const slot = form.querySelector(`#err-${CSS.escape(name)}`);
    const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (!slot) return false;
    slot.textContent = slot.textContent ? slot.textContent + " " + message : message;
    if (input) input.setAttribute("aria-invalid", "true");
    return true;
  }

  // Place an API detail message: "name: String should have ..." goes beside the name field.
  function showApiError(form, detail, formSlot) {
    const unplaced = [];
    for (const part of String(detail).split("; ")) {
      const m = /^([a-z_]+)(?:\.[^:]*)?: (.*)$/.exec(part);
      if (!(m && fieldError(form, m[1], m[2]))) unplaced.push(part);
    }
    if (unplaced.length) formSlot.textContent = unplaced.join("; ");
    const first = form.querySelector("[aria-invalid]");
    (first || formSlot).focus?.();
  }

  return { clearErrors, fieldError, showApiError };
})();

// ---------------------------------------------------------------- new project
if (document.body.dataset.page === "new-project") {
  const form = document.getElementById("project-form");
  const formError = document.getElementById("form-error");
  formError.tabIndex = -1;

  (async () => {
    const user = await LW.showUser();
    if (user.role !== "admin") {
      formError.textContent = "Only admins can create projects; ask an admin.";
      for (const c of form.elements) c.disabled = true;
      return;
    }
    const strategies = await LW.api("/api/strategies");
    const fill = (select, list, selected) => {
      select.replaceChildren(...list.map((s) => LW.el("option", { value: s.name, selected: s.name === selected, title: s.description }, s.name)));
    };
    fill(form.elements.strategy, strategies, "entropy");
    fill(form.elements.cold_start_strategy, strategies.filter((s) => s.cold_start), "random");
    form.elements.name.focus();
  })().catch((e) => LW.status(e.message, "error", true));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    LWForms.clearErrors(form);
    const f = form.elements;
    const classes = f.classes.value.split(",").map((s) => s.trim()).filter(Boolean);
    let bad = false;
    if (!f.name.value.trim()) bad = LWForms.fieldError(form, "name", "Give the project a name.");
    if (!classes.length) bad = LWForms.fieldError(form, "classes", "List at least one class, separated by commas.") || bad;
    const batch = Number(f.batch_size.value);
    if (!Number.isInteger(batch) || batch < 1) bad = LWForms.fieldError(form, "batch_size", "A whole number, 1 or more.") || bad;
    const cost = Number(f.label_cost.value);
    if (f.label_cost.value === "" || !(cost >= 0)) bad = LWForms.fieldError(form, "label_cost", "A number, 0 or more.") || bad;
    // consensus and gold settings (_quality_settings.html): numbers here, ranges at the API
    const quality = { consensus_method: f.consensus_method.value };
    for (const name of ["consensus_share", "consensus_k", "consensus_min_agreement", "gold_rate", "gold_min_accuracy"]) {
      const v = Number(f[name].value);
      if (f[name].value === "" || !Number.isFinite(v)) bad = LWForms.fieldError(form, name, "Enter a number.") || bad;
      else quality[name] = v;
    }
    if (bad) {
      form.querySelector("[aria-invalid]").focus();
      return;
    }
    const rules = [];
    if (f.target.value !== "") rules.push({ target: Number(f.target.value) });
    if (f.max_labels.value !== "") rules.push({ max_labels: Number(f.max_labels.value) });
    const body = {
      name: f.name.value.trim(),
      task_type: f.task_type.value,
      classes,
      strategy: f.strategy.value,
      cold_start_strategy: f.cold_start_strategy.value,
      batch_size: batch,
      label_cost: cost,
      stopping: rules.length === 0 ? {} : rules.length === 1 ? rules[0] : { any: rules },
      show_predictions: f.show_predictions.checked,
      ...quality,
    };
    try {
      const p = await LW.api("/api/projects", { method: "POST", json: body });
      location.assign(`/projects/${p.id}/dashboard?created=1`);
    } catch (e) {
      if (e instanceof LW.ApiError) LWForms.showApiError(form, e.detail, formError);
      else formError.textContent = "The server cannot be reached; nothing was created. Try again.";
    }
  });
}
