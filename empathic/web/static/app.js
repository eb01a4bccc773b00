// Empathic's web app: what every page shares. Pages work without it (plain forms); it adds
// the CSRF header to the app's own fetches and guards forms against a double submit.
"use strict";
window.Empathic = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  // fetch() against our own API with the session cookie and the CSRF token of this page.
  async function send(url, options = {}) {
    const headers = new Headers(options.headers || {});
    headers.set("X-CSRF-Token", csrf());
    if (options.json !== undefined) {
      headers.set("Content-Type", "application/json");
      options = { ...options, body: JSON.stringify(options.json) };
    }
    return fetch(url, { credentials: "same-origin", ...options, headers });
  }

  // A form marked data-once is sent once: its submit buttons are disabled while it goes.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-once")) return;
    if (form.dataset.sending === "1") { event.preventDefault(); return; }
    form.dataset.sending = "1";
    for (const button of form.querySelectorAll("button[type=submit], button:not([type])")) button.disabled = true;
  }, true);

  return { csrf, send };
})();
