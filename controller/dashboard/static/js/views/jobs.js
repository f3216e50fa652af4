// Jobs (scans, re-activations, probes, discoveries) with their progress, live from the event
// stream; technicians can start a scan from here and from the overview.

import { api, query } from "../api.js";
import { el, table, replace, errorBox, announce } from "../dom.js";
import { when, text } from "../format.js";
import { onJob, finished } from "../events.js";
import { may } from "../session.js";

/** "running 3/10" while a job runs; its state alone once queued or finished. */
export function progressText(job) {
  const p = job.progress;
  return job.state === "running" && p && p.total ? `running ${p.done}/${p.total}` : job.state;
}

function progressCell(job) {
  const p = job.progress;
  if (job.state !== "running" || !p || !p.total) return el("td", {}, progressText(job));
  return el("td", {}, el("progress", { max: p.total, value: p.done, "aria-label": `Job ${job.id} progress` }),
    ` ${p.done}/${p.total}`);
}

function row(job) {
  return el(
    "tr",
    { "data-job": job.id },
    el("td", { class: "mono" }, job.id),
    el("td", {}, job.kind),
    el("td", {}, text(job.site)),
    progressCell(job),
    el("td", {}, when(job.created_at)),
    el("td", {}, when(job.finished_at)),
    el("td", {}, text(job.agent)),
    el("td", {}, text(job.error)),
  );
}

export async function jobs() {
  const page = await api("/jobs" + query({ limit: 50 }));
  const items = page.items ?? page;
  const body = el("tbody", {}, items.map(row));
  const view = el(
    "section",
    { "aria-labelledby": "jobs-title" },
    el("h1", { id: "jobs-title" }, "Jobs"),
    may("technician") ? scanButton() : null,
    el("table", {}, el("caption", {}, "Recent jobs, updated live"),
      el("thead", {}, el("tr", {}, ["Job", "Kind", "Site", "Progress", "Created", "Finished", "Agent", "Error"]
        .map((h) => el("th", { scope: "col" }, h)))), body),
  );
  const stop = onJob((job) => {
    if (!view.isConnected) {
      stop();
      return;
    }
    const existing = body.querySelector(`tr[data-job="${CSS.escape(String(job.id))}"]`);
    if (existing) existing.replaceWith(row(job));
    else body.prepend(row(job));
  });
  return view;
}

/** "Scan the fleet now": queues a scan and shows its progress until it ends. */
export function scanButton() {
  const status = el("span", { id: "scan-status", "aria-live": "polite" });
  const button = el("button", { type: "button" }, "Scan now");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const { job } = await api("/scans", { method: "POST", body: {} });
      const done = await finished(job, (id) => api(`/jobs/${encodeURIComponent(id)}`),
        (j) => replace(status, `Scan job ${job}: ${progressText(j)}`));
      replace(status, `Scan job ${job}: ${done.state}${done.error ? ` (${done.error})` : ""}`);
      announce(status.textContent);
    } catch (error) {
      replace(status, errorBox(error));
    }
    button.disabled = false;
  });
  return el("div", { class: "actions" }, button, status);
}
