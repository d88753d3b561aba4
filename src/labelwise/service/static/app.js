// labelwise pages: shared helpers. Plain JS, no build step.
// The API token lives in this tab's sessionStorage; every API call sends it as a bearer token.
"use strict";

const LW = (() => {
  const TOKEN_KEY = "labelwise.token";
  const LOGOUT_REASON_KEY = "labelwise.logout-reason";

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function setToken(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  }

  function toLogin() {
    const next = location.pathname + location.search;
    location.assign("/login?next=" + encodeURIComponent(next));
  }

  // An API error with the HTTP status and the server's {"detail": ...} message.
  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  // fetch() an API path with the token. Network failures reject with a TypeError (the caller
  // decides whether to retry); HTTP errors reject with ApiError; 401 sends the user to /login.
  async function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    const t = token();
    if (t) headers.set("Authorization", "Bearer " + t);
    let body = options.body;
    if (options.json !== undefined) {
      headers.set("Content-Type", "application/json");
      body = JSON.stringify(options.json);
    }
    const r = await fetch(path, { method: options.method || "GET", headers, body });
    if (r.status === 401 && !options.noRedirect) {
      let detail = "not logged in";
      try {
        const data = await r.json();
        if (data && typeof data.detail === "string") detail = data.detail;
      } catch (e) { /* not JSON */ }
      // a token that stopped working (revoked, expired): the login page says why
      if (t) sessionStorage.setItem(LOGOUT_REASON_KEY, detail);
      setToken(null);
      toLogin();
      throw new ApiError(401, detail);
    }
    if (!r.ok) {
      let detail = r.statusText || "request failed";
      try {
        const data = await r.json();
        if (data && data.detail) detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
      } catch (e) { /* not JSON */ }
      throw new ApiError(r.status, detail);
    }
    if (options.raw) return r;
    if (r.status === 204) return null;
    const type = r.headers.get("content-type") || "";
    return type.includes("json") ? r.json() : r.text();
  }

  let statusTimer = null;
  // One status line for the page (aria-live): kind is "info", "ok" or "error".
  function status(message, kind = "info", sticky = false) {
    const el = document.getElementById("status");
    if (!el) return;
    el.textContent = message || "";
    el.className = "status " + (message ? "visible " + kind : "");
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    clearTimeout(statusTimer);
    if (message && !sticky) statusTimer = setTimeout(() => status(""), 6000);
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  function fmt(x, digits = 3) {
    if (x === null || x === undefined || Number.isNaN(x)) return "–";
    return Number(x).toLocaleString("en", { maximumFractionDigits: digits });
  }

  function pct(x) {
    return x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%";
  }

  function when(iso) {
    if (!iso) return "–";
    const d = new Date(iso.endsWith("Z") || iso.includes("+") ? iso : iso + "Z");
    return d.toLocaleString("en-GB", { dateStyle: "short", timeStyle: "short" });
  }

  let mePromise = null;
  // The logged-in user (/api/me), or a redirect to /login when there is no valid token.
  function me() {
    if (!mePromise) {
      if (!token()) {
        toLogin();
        return new Promise(() => {});
      }
      mePromise = api("/api/me");
    }
    return mePromise;
  }

  function projectId() {
    return Number(document.body.dataset.projectId);
  }

  async function showUser() {
    const user = await me();
    const who = document.getElementById("whoami");
    if (who) who.textContent = user.name + (user.role === "admin" ? " (admin)" : "");
    const out = document.getElementById("logout");
    if (out) {
      out.hidden = false;
      out.addEventListener("click", () => {
        setToken(null);
        location.assign("/login");
      });
    }
    for (const node of document.querySelectorAll(".admin-only")) node.hidden = user.role !== "admin";
    // a project page's controls for its owners (import, rounds, snapshots): the API decides the
    // same way (an owner of this project, or the admin)
    const owns = isOwner(user, projectId());
    for (const node of document.querySelectorAll(".owner-only")) node.hidden = !owns;
    return user;
  }

  function isOwner(user, pid) {
    return user.role === "admin" || (user.project_roles || {})[String(pid)] === "owner";
  }

  return {
    api, ApiError, token, setToken, toLogin, status, el, fmt, pct, when, me, projectId, showUser,
    isOwner, LOGOUT_REASON_KEY,
  };
})();

// ---------------------------------------------------------------- the login page
// A link of the form /login#token=...&next=/projects/1/label (printed by `labelwise serve --demo`)
// logs in at once; the fragment never reaches the server and is removed from the address bar.
if (document.body.dataset.page === "login") {
  const form = document.getElementById("login-form");
  const input = document.getElementById("token");
  const error = document.getElementById("token-error");
  const reason = sessionStorage.getItem(LW.LOGOUT_REASON_KEY);
  if (reason) {
    sessionStorage.removeItem(LW.LOGOUT_REASON_KEY);
    error.textContent = "You were logged out: " + reason;
  }
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    input.value = fragment.get("token");
    const query = new URLSearchParams(location.search);
    if (fragment.get("next")) query.set("next", fragment.get("next"));
    history.replaceState(null, "", "/login" + (query.toString() ? "?" + query : ""));
    setTimeout(() => form.requestSubmit(), 0);
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    const value = input.value.trim();
    if (!value) {
      error.textContent = "Enter your token.";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    LW.setToken(value);
    try {
      await LW.api("/api/me", { noRedirect: true });
    } catch (e) {
      LW.setToken(null);
      error.textContent = e instanceof LW.ApiError ? e.detail : "The server cannot be reached; try again.";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    const next = new URLSearchParams(location.search).get("next");
    location.assign(next && next.startsWith("/") && !next.startsWith("//") ? next : "/");
  });
}
