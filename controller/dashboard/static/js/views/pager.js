// Previous / Next over an API listing page ({items, total}), and the range it shows.

import { el } from "../dom.js";

/** "1–50 of 120" for a page starting at `offset`. */
export function range(page, offset) {
  const last = Math.min(offset + page.items.length, page.total);
  return page.total ? `${offset + 1}–${last} of ${page.total}` : "none";
}

/** The pager; `show(offset)` goes to another page. */
export function pager(page, offset, size, show) {
  const last = offset + page.items.length;
  return el(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    el("button", { type: "button", disabled: offset === 0, onclick: () => show(Math.max(0, offset - size)) },
      "Previous"),
    el("span", { id: "page-range" }, range(page, offset)),
    el("button", { type: "button", disabled: last >= page.total, onclick: () => show(offset + size) }, "Next"),
  );
}
