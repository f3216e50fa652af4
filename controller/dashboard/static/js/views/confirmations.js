// The audit record: confirmations page by page, the hash chain's verification, and an export
// of every record as CSV or JSON (built in the browser from the API's pages).

import { api, query } from "../api.js";
import { el, table, replace, errorBox } from "../dom.js";
import { when, mac, text } from "../format.js";
import { deviceHref, go } from "../route.js";
import { pager, range } from "./pager.js";

const PAGE = 50;

export const CONFIRMATION_HEADERS = ["Number", "Serial", "MAC", "Feature", "Fee", "Contract", "Confirmed", "Actor"];

export function confirmationRows(records) {
  return records.map((c) =>
    el(
      "tr",
      {},
      el("td", { class: "mono" }, c.number),
      el("td", {}, el("a", { href: deviceHref(c.serial) }, c.serial)),
      el("td", { class: "mono" }, mac(c.mac)),
      el("td", {}, text(c.feature)),
      el("td", {}, `${text(c.fee)} ${c.currency ?? ""}`.trim()),
      el("td", {}, text(c.contract)),
      el("td", {}, when(c.confirmed_at)),
      el("td", {}, text(c.actor)),
    ),
  );
}

export async function confirmations({ params }) {
  const offset = Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
  const [page, chain] = await Promise.all([
    api("/confirmations" + query({ limit: PAGE, offset })),
    api("/confirmations/verify"),
  ]);
  const exported = el("div", { "aria-live": "polite" });
  const exporter = (format) =>
    el("button", { type: "button", onclick: () => download(format, exported) }, `Export ${format.toUpperCase()}`);
  return el(
    "section",
    { "aria-labelledby": "confirmations-title" },
    el("h1", { id: "confirmations-title" }, "Confirmations"),
    el(
      "p",
      { id: "chain-status", class: chain.intact ? "notice" : "error", role: chain.intact ? null : "alert" },
      chain.intact
        ? `Hash chain intact: ${chain.records} record(s) verified.`
        : `Hash chain BROKEN: ${text(chain.detail)}`,
      chain.head_hash ? el("span", { class: "mono" }, ` Head ${chain.head_hash}`) : null,
    ),
    el("div", { class: "actions" }, exporter("csv"), exporter("json")),
    exported,
    page.items.length
      ? table(`Confirmations ${range(page, offset)}, in chain order (oldest first)`, CONFIRMATION_HEADERS,
          confirmationRows(page.items))
      : el("p", {}, "No confirmation recorded yet."),
    pager(page, offset, PAGE, (to) => go("/confirmations", { offset: to })),
  );
}

/** The file `polyfleet confirmations export` would write, saved by the browser. */
async function download(format, status) {
  replace(status, "Preparing the export…");
  try {
    const body = await api(`/confirmations/export${query({ format })}`, { raw: true });
    const blob = new Blob([body], { type: format === "json" ? "application/json" : "text/csv" });
    const link = el("a", { href: URL.createObjectURL(blob), download: `confirmations.${format}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    replace(status, `Exported as confirmations.${format}: check it with `,
      el("code", {}, `polyfleet confirmations verify --export confirmations.${format}`), ".");
  } catch (error) {
    replace(status, errorBox(error));
  }
}
