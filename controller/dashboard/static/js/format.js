// How values are shown: dates in the reader's locale, MACs with colons, absent values as a dash.

export function when(iso) {
  if (!iso) return "—";
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? String(iso) : moment.toLocaleString();
}

export function day(iso) {
  if (!iso) return "—";
  return String(iso).slice(0, 10);
}

export function mac(value) {
  if (!value) return "—";
  const hex = String(value).toLowerCase();
  return /^[0-9a-f]{12}$/.test(hex) ? hex.match(/../g).join(":") : hex;
}

export function text(value) {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}
