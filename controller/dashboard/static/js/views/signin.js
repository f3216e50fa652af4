// Sign-in: paste an API token (`polyfleet tokens create`); it is checked against GET /me and kept
// only in this tab's sessionStorage.

import { el, replace, errorBox } from "../dom.js";

export function signIn(begin) {
  const input = el("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-help",
  });
  const problem = el("div", { "aria-live": "assertive" });
  const button = el("button", { type: "submit", class: "primary" }, "Sign in");
  const form = el(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    el("h1", { id: "signin-title" }, "Sign in"),
    el("label", { for: "token" }, "API token"),
    input,
    el("p", { id: "token-help" }, "A token from ", el("code", {}, "polyfleet tokens create"),
      ". It stays in this browser tab only."),
    el("div", { class: "actions" }, button),
    problem,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    replace(problem);
    try {
      await begin(input.value.trim());
    } catch (error) {
      replace(problem, errorBox(error.status === 401 ? "That token was not accepted." : error));
      button.disabled = false;
      input.focus();
    }
  });
  queueMicrotask(() => input.focus());
  return form;
}
