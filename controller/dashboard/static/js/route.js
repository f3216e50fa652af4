// Pages are addressed by the URL hash (#/devices?site=hq), so links, reloads and Back work.

/** The current hash as a path and its query parameters. */
export function here() {
  const hash = window.location.hash.slice(1) || "/overview";
  const cut = hash.indexOf("?");
  const path = cut < 0 ? hash : hash.slice(0, cut);
  return { path, params: new URLSearchParams(cut < 0 ? "" : hash.slice(cut + 1)) };
}

/** The hash for a path with query parameters (empty ones dropped). */
export function href(path, params = {}) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

export function go(path, params = {}) {
  window.location.hash = href(path, params);
}

/** A link to one device's page. */
export function deviceHref(serial) {
  return href(`/devices/${encodeURIComponent(serial)}`);
}
