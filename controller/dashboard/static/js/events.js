// Live job progress from GET /api/v1/events (server-sent events). EventSource cannot send an
// Authorization header, so the stream is read with fetch and parsed here; it reconnects after a
// drop and stops on sign-out.

import { token } from "./api.js";

const listeners = new Set();
let controller = null;

/** Call `handler(job)` for every `job` event until the returned function is called. */
export function onJob(handler) {
  listeners.add(handler);
  return () => listeners.delete(handler);
}

export function stop() {
  controller?.abort();
  controller = null;
}

export function start() {
  if (controller) return;
  controller = new AbortController();
  const signal = controller.signal;
  (async () => {
    while (!signal.aborted) {
      try {
        await follow(signal);
      } catch (error) {
        if (signal.aborted) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  })();
}

async function follow(signal) {
  const response = await fetch("/api/v1/events", {
    headers: { Accept: "text/event-stream", Authorization: `Bearer ${token.get()}` },
    signal,
  });
  if (!response.ok || !response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      dispatch(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

function dispatch(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  if (name !== "job" || !data.length) return;
  let job;
  try {
    job = JSON.parse(data.join("\n"));
  } catch {
    return;
  }
  for (const handler of listeners) handler(job);
}

/** Wait until job `id` is done or failed. Events drive it; a GET now and every few seconds
 * covers a job that ended before the stream saw it, or a stream that dropped. */
export function finished(id, fetchJob, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = () => {
      settled = true;
      unsubscribe();
      clearInterval(timer);
    };
    const check = (job) => {
      if (settled || String(job.id) !== String(id)) return;
      onProgress(job);
      if (job.state === "done" || job.state === "failed") {
        settle();
        fetchJob(id).then(resolve, reject);
      }
    };
    const poll = () =>
      fetchJob(id).then(check, (error) => {
        if (settled) return;
        settle();
        reject(error);
      });
    const unsubscribe = onJob(check);
    const timer = setInterval(poll, 3000);
    poll();
  });
}
