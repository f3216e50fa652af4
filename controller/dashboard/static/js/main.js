// The dashboard shell: sign-in, navigation by URL hash, and what the signed-in role may see.

import { api, token, whenUnauthorized } from "./api.js";
import { el, replace, errorBox } from "./dom.js";
import * as events from "./events.js";
import { overview } from "./views/overview.js";
import { devices } from "./views/devices.js";
import { device } from "./views/device.js";
import { confirmations } from "./views/confirmations.js";
import { jobs } from "./views/jobs.js";
import { signIn } from "./views/signin.js";
import { session, isDashboardRole } from "./session.js";
import { here, go } from "./route.js";

const routes = [
  [/^\/overview$/, overview, "Overview"],
  [/^\/devices$/, devices, "Devices"],
  [/^\/devices\/(.+)$/, device, "Device"],
  [/^\/confirmations$/, confirmations, "Confirmations"],
  [/^\/jobs$/, jobs, "Jobs"],
];

const view = document.getElementById("view");
let generation = 0;

async function render() {
  const mine = ++generation;
  if (!session.me) {
    showChrome(false);
    replace(view, signIn(begin));
    return;
  }
  showChrome(true);
  const { path, params } = here();
  const match = routes.map(([pattern, page, title]) => [path.match(pattern), page, title]).find(([m]) => m);
  if (!match) {
    go("/overview");
    return;
  }
  const [found, page, title] = match;
  document.title = `${title} · polyfleet`;
  for (const link of document.querySelectorAll("#nav a")) {
    const current = path.startsWith(link.getAttribute("href").slice(1));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  replace(view, el("p", { class: "notice" }, "Loading…"));
  try {
    const content = await page({ params, id: found[1] === undefined ? undefined : decodeURIComponent(found[1]) });
    if (mine === generation) replace(view, content);
  } catch (error) {
    if (mine === generation) replace(view, el("h1", {}, title), errorBox(error));
  }
}

function showChrome(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  if (signedIn) {
    const me = session.me;
    replace(
      document.getElementById("who-text"),
      `${me.name || "token"} · ${me.role}${me.site ? ` · site ${me.site}` : ""}`,
    );
  }
}

/** Sign in with a token: it must answer GET /me with a dashboard role. */
async function begin(secret) {
  const me = await api("/me", { secret });
  if (!isDashboardRole(me.role)) {
    throw new Error(`a ${me.role} token cannot use the dashboard: sign in with a viewer, technician or admin token`);
  }
  token.set(secret);
  session.me = me;
  events.start();
  if (!window.location.hash) go("/overview");
  await render();
  view.focus();
}

function signOut() {
  token.clear();
  session.me = null;
  events.stop();
  render();
}

whenUnauthorized(signOut);
document.getElementById("sign-out").addEventListener("click", signOut);
// The hash is the router's, so the skip link moves the focus itself instead of navigating.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  view.focus();
});
window.addEventListener("hashchange", () => render().then(() => view.focus()));

(async () => {
  const saved = token.get();
  if (saved) {
    try {
      await begin(saved);
      return;
    } catch (error) {
      token.clear();
    }
  }
  render();
})();
