// One device: identity, licenses, observation history, confirmations, a probe, and for
// technicians the re-activation: quote first (eligibility, fee, SLA due date), then confirm.

import { api, query } from "../api.js";
import { el, facts, replace, table, errorBox, announce } from "../dom.js";
import { when, day, mac, text } from "../format.js";
import { may } from "../session.js";
import { finished } from "../events.js";
import { progressText } from "./jobs.js";
import { confirmationRows, CONFIRMATION_HEADERS } from "./confirmations.js";
import { pager, range } from "./pager.js";

const getJob = (id) => api(`/jobs/${encodeURIComponent(id)}`);
const HISTORY_PAGE = 20; // what GET /devices/{id} includes; older pages come from /observations

export async function device({ id }) {
  const d = await api(`/devices/${encodeURIComponent(id)}`);
  const read = d.license_read;
  return el(
    "section",
    { "aria-labelledby": "device-title" },
    el("h1", { id: "device-title" }, `Device ${d.serial}`),
    facts([
      ["Serial", d.serial],
      ["MAC", el("span", { class: "mono" }, mac(d.mac))],
      ["Model", text(d.model)],
      ["Product group", text(d.product_group)],
      ["Site", text(d.site)],
      ["Host", text(d.host)],
      ["Driver", text(d.driver)],
      ["Firmware", text(d.firmware)],
      ["Health", el("span", { class: `status-${d.status}` }, text(d.status))],
      ["Reason", text(d.reason)],
      ["License read", read ? (read.ok ? "read" : `not read: ${text(read.call)}: ${text(read.detail)}`) : "—"],
      ["Last observed", when(d.observed_at)],
      ["Tags", tagList(d.tags)],
    ]),
    el("h2", {}, "Licenses"),
    d.licenses?.length
      ? table("Licenses the last scan read", ["Feature", "State", "Expires"],
          d.licenses.map((l) => el("tr", {}, el("td", {}, l.feature), el("td", {}, l.state), el("td", {}, day(l.expires_at)))))
      : el("p", {}, "No license known."),
    may("technician") ? reactivation(d) : null,
    el("h2", {}, "Observations"),
    history(d),
    el("h2", {}, "Confirmations"),
    d.confirmations?.length
      ? table("Re-activations confirmed for this device", CONFIRMATION_HEADERS, confirmationRows(d.confirmations))
      : el("p", { id: "no-confirmations" }, "No re-activation confirmed yet."),
    el("h2", {}, "Probe"),
    may("technician")
      ? probe(d)
      : el("p", {}, "A technician can probe this device: every read-only call its driver uses."),
  );
}

/** The device's kept observations, newest first: the detail's first page, then pages of
 * GET /devices/{id}/observations. */
function history(d) {
  const box = el("div", { id: "history", tabindex: "-1" });
  const show = (page, offset) => {
    replace(box, historyView(page, offset, async (to, label) => {
      try {
        const next = await api(`/devices/${encodeURIComponent(d.serial)}/observations`
          + query({ limit: HISTORY_PAGE, offset: to }));
        show(next, to);
        const same = [...box.querySelectorAll(".pager button")].find((b) => b.textContent === label);
        (same && !same.disabled ? same : box).focus();
        announce(`Observations ${range(next, to)}`);
      } catch (error) {
        replace(box, errorBox(error));
      }
    }));
  };
  show({ items: d.observations || [], total: d.observations_total ?? 0 }, 0);
  return box;
}

function historyView(page, offset, go) {
  if (!page.total) return el("p", {}, "Never scanned.");
  const rows = page.items.map((o) =>
    el("tr", {}, el("td", { class: "nowrap" }, when(o.observed_at)), el("td", {}, o.reachable ? "yes" : "no"),
      el("td", {}, licenseSummary(o)), el("td", {}, text(o.error))));
  const paged = offset > 0 || page.total > page.items.length;
  return [
    table("Scans of this device, newest first", ["Observed", "Reachable", "Licenses", "Error"], rows),
    paged ? pager(page, offset, HISTORY_PAGE, (to) => go(to, to > offset ? "Next" : "Previous")) : null,
  ];
}

/** What one observation read of the licenses: each feature's state and expiry, or why the
 * state is unknown (the call that failed and what came back). */
function licenseSummary(o) {
  if (Array.isArray(o.licenses)) {
    return o.licenses.length
      ? o.licenses.map((l) => `${l.feature} ${l.state}${l.expires_at ? ` until ${day(l.expires_at)}` : ""}`).join("; ")
      : "no licensed feature";
  }
  const read = o.license_read;
  if (read && !read.ok) return `unknown: ${read.call || "no call"}: ${read.detail || "nothing came back"}`;
  return o.reachable ? "unknown: not read" : "unknown: not read (unreachable)";
}

/** Quote, then confirm, then the job's progress and the confirmation number. */
function reactivation(d) {
  const expired = (d.licenses || []).filter((l) => l.state !== "active");
  const feature = el(
    "select",
    { id: "r-feature" },
    el("option", { value: "" }, "the expired feature (automatic)"),
    (d.licenses || []).map((l) => el("option", { value: l.feature, selected: expired.length === 1 && l === expired[0] },
      `${l.feature} (${l.state})`)),
  );
  const out = el("div", { id: "reactivation", "aria-live": "polite" });
  const quoteButton = el("button", { type: "button", class: "primary" }, "Get a quote");
  quoteButton.addEventListener("click", async () => {
    quoteButton.disabled = true;
    replace(out, "Asking for a quote…");
    try {
      const q = await api(`/quotes/${encodeURIComponent(d.serial)}` + query({ feature: feature.value }));
      replace(out, showQuote(d, q, feature.value, () => (quoteButton.disabled = false)));
      out.querySelector("button")?.focus();
    } catch (error) {
      replace(out, errorBox(error));
      quoteButton.disabled = false;
    }
  });
  return el(
    "section",
    { "aria-labelledby": "reactivate-title" },
    el("h2", { id: "reactivate-title" }, "Re-activate"),
    el("div", { class: "field" }, el("label", { for: "r-feature" }, "Feature"), feature),
    el("div", { class: "field" }, quoteButton),
    out,
  );
}

function showQuote(d, q, feature, reset) {
  const box = el("div", { class: "quote" });
  box.append(
    table(`Eligibility on ${q.on}`, ["Rule", "Result", "Reason"],
      q.rules.map((r) => el("tr", {}, el("td", {}, r.name), el("td", { class: r.passed ? "status-OK" : "status-CRITICAL" },
        r.passed ? "pass" : "FAIL"), el("td", {}, text(r.reason))))),
    facts([
      ["Verdict", el("strong", { id: "quote-verdict" }, q.eligible ? "Eligible" : "Not eligible")],
      ["Fee", q.fee !== null ? `${q.fee} ${q.currency} (${text(q.pricing)})` : "—"],
      ["Contract", q.contract ? `${q.contract} (${text(q.contract_kind)}, ends ${day(q.contract_end)})` : "—"],
      ["SLA due", `${day(q.sla_due)} (${q.sla_business_days} business day(s), ${q.sla_country})`],
      ["Pay-per-incident fee", q.ppi_fee !== null ? `${q.ppi_fee} ${q.currency}` : "—"],
      ...q.notes.map((note) => ["Note", note]),
    ]),
  );
  if (!q.eligible) {
    reset();
    return box;
  }
  const confirm = el("button", { type: "button", class: "primary" },
    `Re-activate for ${q.fee} ${q.currency}`);
  const cancel = el("button", { type: "button" }, "Cancel");
  const status = el("div", { id: "reactivation-status", "aria-live": "polite" });
  cancel.addEventListener("click", () => {
    replace(box);
    reset();
  });
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    cancel.disabled = true;
    try {
      const body = { device: d.serial };
      if (feature || q.feature) body.feature = feature || q.feature;
      const { job } = await api("/reactivations", { method: "POST", body });
      replace(status, `Job ${job} queued…`);
      const done = await finished(job, getJob, (j) => replace(status, `Job ${job}: ${progressText(j)}`));
      replace(status, outcome(done));
      announce(status.textContent);
    } catch (error) {
      replace(status, errorBox(error));
    }
    reset();
  });
  box.append(
    el("p", {}, "Confirm to obtain the key, apply it and verify it on the device."),
    el("div", { class: "actions" }, confirm, cancel),
    status,
  );
  return box;
}

/** The re-activation job's end: the confirmation number, or why it did not happen. */
function outcome(job) {
  const rows = Array.isArray(job.result) ? job.result : [];
  const confirmed = rows.find((r) => r.confirmation?.number);
  if (job.state === "done" && confirmed) {
    return el("p", { class: "notice" }, "Confirmed: confirmation number ",
      el("strong", { id: "confirmation-number", class: "mono" }, confirmed.confirmation.number),
      ` (${confirmed.feature}, ${confirmed.fee ?? ""})`);
  }
  const why = rows.map((r) => `${r.feature}: ${r.status}${r.reason ? ` (${r.reason})` : ""}`).join("; ");
  return errorBox(`Not re-activated: ${job.error || why || job.state}`);
}

function probe(d) {
  const out = el("div", { id: "probe", "aria-live": "polite" });
  const button = el("button", { type: "button" }, "Probe the device");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const { job } = await api("/probes", { method: "POST", body: { device: d.serial } });
      const done = await finished(job, getJob, (j) => replace(out, `Probe job ${job}: ${progressText(j)}`));
      replace(out, done.state === "done" && done.result ? probeReport(done.result) : errorBox(done.error || "probe failed"));
    } catch (error) {
      replace(out, errorBox(error));
    }
    button.disabled = false;
  });
  return el("div", {}, el("p", {}, "Every read-only call the driver uses, with what came back; nothing is applied."),
    el("div", { class: "actions" }, button), out);
}

function probeReport(report) {
  return el(
    "div",
    {},
    el("p", {}, report.ok ? "Every needed call answered." : "Some needed calls did not answer."),
    table("Calls made by the probe", ["Operation", "Call", "Documented", "Answered", "Conclusion"],
      (report.calls || []).map((c) => el("tr", {}, el("td", {}, c.operation), el("td", { class: "mono" }, c.call),
        el("td", {}, c.modeled ? "modeled" : "documented"), el("td", {}, c.answered ? "yes" : "no"),
        el("td", {}, text(c.conclusion))))),
  );
}

/** A device's tags ({name: value}) as "name=value, …"; "—" when it has none. */
function tagList(tags) {
  const entries = Object.entries(tags ?? {});
  return entries.length ? entries.map(([name, value]) => (value ? `${name}=${value}` : name)).join(", ") : "—";
}
