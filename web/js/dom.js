// Building DOM nodes without innerHTML: every text goes in as a text node.

/**
 * h("button", {class: "primary", onclick: fn, dataset: {x: "1"}}, "Label", child)
 * Attributes starting with "on" become listeners; `dataset` and `style` are
 * objects; false/null/undefined attributes and children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "style") {
      Object.assign(el.style, value);
    } else if (name in el && typeof el[name] !== "function" && name !== "list") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends children (nodes, strings, numbers, nested arrays) to `el`. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A labelled form field: <label>Text <input …></label>. */
export function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", { class: "field-label" }, label), input,
    hint ? h("small", { class: "field-hint" }, hint) : null);
}

/** The values of a form's named controls, as a plain object of strings. */
export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

const ACTIVE = /^(script|style|iframe|object|embed|form|template|link|meta|base)$/i;

/**
 * Nodes for HTML the server has already sanitised (a post preview). Parsed in an
 * inert document, then cleaned once more on the way in (no script-like
 * elements, no event-handler attributes, no javascript: URLs): a second layer,
 * the page's CSP being the third.
 */
export function sanitizedFragment(html) {
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, "text/html");
  for (const el of [...doc.body.querySelectorAll("*")]) {
    if (ACTIVE.test(el.tagName)) {
      el.remove();
      continue;
    }
    for (const attr of [...el.attributes]) {
      const value = attr.value.replace(/[\s\u0000-\u001f]/g, "").toLowerCase();
      if (attr.name.startsWith("on") || attr.name === "style" || /^(javascript|vbscript|data):/.test(value)) {
        el.removeAttribute(attr.name);
      }
    }
  }
  const fragment = document.createDocumentFragment();
  fragment.append(...doc.body.childNodes);
  return fragment;
}
