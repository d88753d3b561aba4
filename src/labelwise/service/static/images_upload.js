// The owner's image upload on the dashboard: many images or zip archives, posted as multipart
// field "files" to POST /api/projects/{id}/images:upload. The API's message (which file is
// corrupt, too large or unsafe) is shown in the form; nothing is imported then.
"use strict";

(() => {
  const form = document.getElementById("images-form");
  if (!form) return;
  const pid = LW.projectId();
  const error = document.getElementById("images-error");
  const result = document.getElementById("images-result");
  const input = form.elements.files;
  error.tabIndex = -1;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    result.textContent = "";
    input.removeAttribute("aria-invalid");
    if (!input.files.length) {
      error.textContent = "Choose images (JPEG, PNG, WebP, GIF, BMP, TIFF) or a zip of them.";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    const data = new FormData();
    for (const file of input.files) data.append("files", file);
    const params = new URLSearchParams({ labels: form.elements.folder_labels.checked ? "folder" : "none" });
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    result.textContent = `Uploading ${input.files.length} file${input.files.length === 1 ? "" : "s"}…`;
    try {
      const r = await LW.api(`/api/projects/${pid}/images:upload?${params}`, { method: "POST", body: data });
      const ignored = r.n_ignored ? `, ${r.n_ignored} non-image zip entries skipped` : "";
      result.textContent = `Imported ${r.n_created} new images (${r.n_read} read, ${r.n_skipped} already present${ignored}).`;
      form.reset();
      // the dashboard's own refresh (every few seconds) picks up the new item count
    } catch (e) {
      result.textContent = "";
      error.textContent = e instanceof LW.ApiError ? e.detail : "The server cannot be reached; nothing was imported.";
      input.setAttribute("aria-invalid", "true");
      error.focus();
    } finally {
      button.disabled = false;
    }
  });
})();
