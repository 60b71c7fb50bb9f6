// Signing in: when the gateway asks for an API key (docs/security.md), the page in view gives
// way to a form asking for one; the key is kept for this tab only (sessionStorage).

import { apiKey, useKey } from "./api.js";
import { field } from "./forms.js";
import { h, notice, pageHeader } from "./ui.js";

/**
 * The sign-in form, to show in place of a page the API refused; `signedIn` is called once a
 * key is entered. A key the API refused is dropped, and the form says so.
 */
export function signInForm(signedIn) {
  const refused = apiKey() !== null;
  useKey(null);
  const key = h("input", { name: "key", type: "password", autocomplete: "off", spellcheck: "false", required: true });
  const form = h("form", { class: "form sign-in" },
    field("API key", key, { hint: "Made with python -m voicebus_gateway keys create; kept until this tab is closed." }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button" }, "Sign in")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const entered = key.value.trim();
    if (!entered) return;
    useKey(entered);
    signedIn();
  });
  return [
    pageHeader("Sign in"),
    refused ? notice("The gateway refused that key: it is unknown, revoked or mistyped.", "error") : null,
    h("section", { class: "card" }, h("h2", {}, "This gateway needs an API key"), form),
  ];
}
