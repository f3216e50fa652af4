// Fleet overview: health counts by status and product group, licenses expiring soon, devices
// whose license state could not be read, sites with their agents, and the last scan.

import { api } from "../api.js";
import { el, table } from "../dom.js";
import { when, mac, text } from "../format.js";
import { deviceHref, href } from "../route.js";
import { may } from "../session.js";
import { scanButton } from "./jobs.js";

export const STATUSES = ["OK", "WARNING", "CRITICAL", "UNKNOWN"];

export async function overview() {
  const [summary, sites] = await Promise.all([api("/overview"), api("/sites")]);
  return el(
    "section",
    { "aria-labelledby": "overview-title" },
    el("h1", { id: "overview-title" }, "Fleet overview"),
    el("p", {}, "Last scan: ", el("strong", { id: "last-scan" }, when(summary.last_scan)),
      ` · checked ${when(summary.checked_at)}`),
    may("technician") ? scanButton() : null,
    el("h2", {}, "Devices by health"),
    el(
      "ul",
      { class: "cards", "aria-label": "Devices by health status" },
      STATUSES.map((status) =>
        el(
          "li",
          {},
          el("a", { href: href("/devices", { status }), class: `status-${status}` },
            el("span", { class: "n" }, summary.counts[status] ?? 0), status),
        ),
      ),
    ),
    el("h2", {}, "By product group"),
    table(
      "Devices per product group and health status",
      ["Product group", ...STATUSES, "Total"].map((h, i) =>
        el("th", { scope: "col", class: i ? "num" : null }, h)),
      summary.product_groups.map((group) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, el("a", { href: href("/devices", { product_group: group.product_group ?? "" }) },
            text(group.title ?? group.product_group))),
          STATUSES.map((status) => el("td", { class: "num" }, group.counts[status] ?? 0)),
          el("td", { class: "num" }, group.devices),
        ),
      ),
    ),
    el("h2", {}, "Licenses expiring"),
    el(
      "ul",
      { class: "cards", "aria-label": "Licenses expiring" },
      summary.expiring.map((window) =>
        el("li", {}, el("span", { class: "n" }, window.licenses),
          `within ${window.days} days (${window.devices} device${window.devices === 1 ? "" : "s"})`),
      ),
    ),
    el("h2", {}, "License state not read"),
    summary.unreadable.length
      ? table(
          `${summary.unreadable_total} device(s) whose license state could not be read` +
            (summary.unreadable_total > summary.unreadable.length
              ? `, first ${summary.unreadable.length} shown` : ""),
          ["Serial", "MAC", "Site", "Reason"],
          summary.unreadable.map((d) =>
            el("tr", {}, el("td", {}, el("a", { href: deviceHref(d.serial) }, d.serial)),
              el("td", { class: "mono" }, mac(d.mac)), el("td", {}, text(d.site)), el("td", {}, d.reason))),
        )
      : el("p", {}, "Every scanned device's license state was read."),
    el("h2", {}, "Sites"),
    table(
      "Devices per site and the site agent's last contact",
      ["Site", ...STATUSES, "Devices", "Agent last seen"].map((h, i) =>
        el("th", { scope: "col", class: i && i < 6 ? "num" : null }, h)),
      sites.map((site) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, el("a", { href: href("/devices", { site: site.site ?? "" }) }, text(site.site))),
          STATUSES.map((status) => el("td", { class: "num" }, site.counts?.[status] ?? 0)),
          el("td", { class: "num" }, site.devices),
          el("td", {}, site.agent_last_seen ? when(site.agent_last_seen) : "no agent (the controller scans it)"),
        ),
      ),
    ),
  );
}
