// Building DOM nodes without HTML strings: every stored value becomes a text node, so a
// device name or error message can never be read as markup.

/** el("td", {class: "num"}, "42", child) -> <td class="num">42 child</td>. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  append(node, children);
  return node;
}

/** Append children; strings and numbers become text nodes, null is skipped. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a node's content. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** A table with a caption, header cells and one row per item. */
export function table(caption, headers, rows) {
  return el(
    "table",
    {},
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, headers.map((h) => (h instanceof Node ? h : el("th", { scope: "col" }, h))))),
    el("tbody", {}, rows),
  );
}

/** A <dl> of label/value pairs, values shown as text ("—" when absent). */
export function facts(pairs) {
  return el(
    "dl",
    { class: "facts" },
    pairs.map(([label, value]) => [el("dt", {}, label), el("dd", {}, value ?? "—")]),
  );
}

/** Say something to screen-reader users (and the tests) without moving focus. */
export function announce(text) {
  replace(document.getElementById("announce"), text);
}

/** An error box for an exception or message. */
export function errorBox(error) {
  return el("p", { class: "error", role: "alert" }, error?.message ?? String(error));
}
