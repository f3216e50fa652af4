// The controller API under /api/v1: the token kept in sessionStorage (gone with the tab), every
// request with `Authorization: Bearer`, errors from application/problem+json turned into messages.

const BASE = "/api/v1";
const KEY = "polyfleet.token";

export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem?.detail || problem?.title || `HTTP ${status}`;
    const fields = (problem?.errors || []).map((e) => e.field ?? e.loc ?? "").filter(Boolean);
    super(fields.length ? `${detail} (${fields.join(", ")})` : detail);
    this.status = status;
    this.problem = problem;
  }
}

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

let onUnauthorized = () => {};
/** What to do when the token stops working (expired, revoked): sign out. */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** One request; JSON in, JSON out (`raw`: the response body as text). `secret` overrides the
 * stored token (sign-in checks it). */
export async function api(path, { method = "GET", body, secret, raw = false } = {}) {
  const headers = { Accept: "application/json" };
  const bearer = secret ?? token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(BASE + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") && !(raw && response.ok) ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401 && secret === undefined) onUnauthorized();
    throw new ApiError(response.status, typeof data === "object" ? data : { detail: data });
  }
  return data;
}
