// Staff: courses through the existing admin course API. Create a course, change its
// title, description and order, publish or unpublish it, delete one nobody took.

import { createCourse, deleteCourse, staffCourses, updateCourse } from "../admin-api.js";
import { field, formValues, h, replace } from "../dom.js";
import { LANGUAGES } from "../languages.js";
import { notify, notifyError } from "../notices.js";

const LEVELS = ["beginner", "intermediate", "advanced"];

export function coursesTab(root) {
  const rows = h("tbody", { id: "staff-courses" });
  const load = async () => {
    try {
      const { courses } = await staffCourses();
      replace(rows, courses.map((c) => h("tr", { dataset: { slug: c.slug, published: String(c.published) } },
        h("td", {}, h("a", { href: `#/course?slug=${encodeURIComponent(c.slug)}` }, c.title)),
        h("td", {}, c.slug), h("td", {}, `${c.language} · ${c.level}`), h("td", {}, String(c.lesson_count)),
        h("td", {}, c.published ? "published" : "draft"),
        h("td", {}, h("button", { type: "button", class: "link", dataset: { action: "toggle" }, onclick: () => change(c.slug, { published: !c.published }) },
          c.published ? "Unpublish" : "Publish"), " ",
        h("button", { type: "button", class: "link", dataset: { action: "delete" }, onclick: () => remove(c.slug) }, "Delete")))));
      rows.dataset.loaded = "true";
    } catch (err) {
      notifyError(err);
    }
  };
  const change = async (slug, fields) => {
    try {
      await updateCourse(slug, fields);
      notify("Course saved");
      load();
    } catch (err) {
      notifyError(err);
    }
  };
  const remove = async (slug) => {
    try {
      await deleteCourse(slug);
      notify("Course deleted");
      load();
    } catch (err) {
      notifyError(err);
    }
  };
  const form = h("form", { class: "stack", id: "course-form" },
    h("h3", {}, "New course (a draft)"),
    h("div", { class: "grid-2" },
      field("Slug", h("input", { name: "slug", required: true, maxLength: 64, pattern: "[a-z0-9][a-z0-9-]{1,62}[a-z0-9]" })),
      field("Title", h("input", { name: "title", required: true, maxLength: 120 }))),
    field("Description", h("textarea", { name: "description", maxLength: 2000, rows: 3 })),
    h("div", { class: "grid-2" },
      field("Language", h("select", { name: "language" }, LANGUAGES.map(([v, t]) => h("option", { value: v }, t)))),
      field("Level", h("select", { name: "level" }, LEVELS.map((l) => h("option", { value: l }, l))))),
    h("button", { type: "submit", class: "primary" }, "Create"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await createCourse(formValues(form));
      notify("Course created");
      form.reset();
      load();
    } catch (err) {
      notifyError(err);
    }
  });
  root.append(h("h3", {}, "Courses"), h("p", { class: "muted" }, "Lessons are edited through the API (docs/api.md, Staff)."),
    h("div", { class: "table-scroll" }, h("table", { class: "board" },
      h("thead", {}, h("tr", {}, ["Title", "Slug", "Language", "Lessons", "State", ""].map((c) => h("th", {}, c)))), rows)),
    form);
  load();
  return null;
}
