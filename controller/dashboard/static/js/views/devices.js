// The device table: filters, search and sort are done by the API (GET /devices), so 100,000
// devices cost one page at a time. The filters live in the URL hash: reload and Back keep them.

import { api, query } from "../api.js";
import { el, table } from "../dom.js";
import { mac, text, day } from "../format.js";
import { deviceHref, go } from "../route.js";
import { STATUSES } from "./overview.js";
import { pager, range } from "./pager.js";

const PAGE = 50;
const FILTERS = ["q", "site", "model", "product_group", "status"];
const COLUMNS = [
  ["serial", "Serial"],
  [null, "MAC"],
  ["model", "Model"],
  [null, "Product group"],
  ["site", "Site"],
  ["status", "Health"],
  ["expires_at", "Next expiry"],
  [null, "Reason"],
];

export async function devices({ params }) {
  const state = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) ?? ""]));
  const sort = params.get("sort") || "serial";
  const order = params.get("order") === "desc" ? "desc" : "asc";
  const offset = Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
  const [page, sites, groups] = await Promise.all([
    api("/devices" + query({ ...state, sort, order, limit: PAGE, offset })),
    api("/sites"),
    api("/product-groups"),
  ]);
  const show = (changes) => go("/devices", { ...state, sort, order, offset: 0, ...changes });

  const form = el("form", { class: "filters", role: "search", "aria-label": "Filter devices" });
  const field = (id, label, control) =>
    el("div", { class: "field" }, el("label", { for: id }, label), control);
  const select = (id, name, options, anyLabel) =>
    el(
      "select",
      { id, name },
      el("option", { value: "" }, anyLabel),
      options.map(([value, label]) => el("option", { value, selected: value === state[name] }, label)),
    );
  form.append(
    field("f-q", "Serial or MAC", el("input", { id: "f-q", name: "q", type: "search", value: state.q,
      placeholder: "e.g. 0004.f2aa.bbcc" })),
    field("f-site", "Site", select("f-site", "site", sites.map((s) => [s.site ?? "", text(s.site)]), "All sites")),
    field("f-model", "Model", el("input", { id: "f-model", name: "model", value: state.model })),
    field("f-group", "Product group",
      select("f-group", "product_group", groups.items.map((g) => [g.id, g.title]), "All groups")),
    field("f-status", "Health", select("f-status", "status", STATUSES.map((s) => [s, s]), "Any health")),
    el("div", { class: "field" }, el("button", { type: "submit", class: "primary" }, "Apply"),
      " ", el("button", { type: "button", onclick: () => go("/devices") }, "Clear")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    show(Object.fromEntries(FILTERS.map((name) => [name, String(data.get(name) ?? "").trim()])));
  });

  const header = ([key, label]) => {
    if (!key) return el("th", { scope: "col" }, label);
    const active = key === sort;
    const next = active && order === "asc" ? "desc" : "asc";
    return el(
      "th",
      { scope: "col", "aria-sort": active ? (order === "asc" ? "ascending" : "descending") : null },
      el("button", { type: "button", onclick: () => show({ sort: key, order: next }),
        "aria-label": `Sort by ${label}` }, label, active ? (order === "asc" ? " ▲" : " ▼") : ""),
    );
  };
  const rows = page.items.map((d) =>
    el(
      "tr",
      {},
      el("td", {}, el("a", { href: deviceHref(d.serial) }, d.serial)),
      el("td", { class: "mono nowrap" }, mac(d.mac)),
      el("td", {}, text(d.model)),
      el("td", {}, text(d.product_group)),
      el("td", {}, text(d.site)),
      el("td", { class: `status-${d.status}` }, text(d.status)),
      el("td", { class: "nowrap" }, day(nextExpiry(d.licenses))),
      el("td", {}, text(d.reason)),
    ),
  );
  return el(
    "section",
    { "aria-labelledby": "devices-title" },
    el("h1", { id: "devices-title" }, "Devices"),
    form,
    page.items.length
      ? table(`Devices ${range(page, offset)}`, COLUMNS.map(header), rows)
      : el("p", { class: "notice" }, "No device matches these filters."),
    pager(page, offset, PAGE, (to) => show({ sort, order, offset: to })),
  );
}

/** The earliest expiry among a device's licenses (ISO strings compare in time order in UTC). */
function nextExpiry(licenses = []) {
  const dates = licenses.map((l) => l.expires_at).filter(Boolean).sort();
  return dates[0] ?? null;
}
