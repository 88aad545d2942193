// Staff: blog posts. A list by status, and an editor with a live preview of the
// Markdown as the post's page will show it (rendered and sanitised by the server).

import {
  createPost, deletePost, getPost, listPosts, previewMarkdown, publishPost, unpublishPost, updatePost,
} from "../admin-api.js";
import { field, h, replace, sanitizedFragment } from "../dom.js";
import { LANGUAGES } from "../languages.js";
import { notify, notifyError } from "../notices.js";

const STATUSES = [["", "Every post"], ["draft", "Drafts"], ["scheduled", "Scheduled"], ["published", "Published"]];
const PREVIEW_MS = 300;
const when = (ms) => (ms == null ? "—" : new Date(ms).toLocaleString());
const editHref = (id) => `#/admin?tab=posts&post=${encodeURIComponent(id)}`;

function postList(root) {
  const status = h("select", { id: "post-status" }, STATUSES.map(([v, t]) => h("option", { value: v }, t)));
  const rows = h("tbody", { id: "post-list" });
  const load = async () => {
    try {
      const page = await listPosts({ status: status.value, limit: 50 });
      replace(rows, page.posts.map((p) => h("tr", { dataset: { slug: p.slug, status: p.status } },
        h("td", {}, h("a", { href: editHref(p.id) }, p.title)), h("td", {}, p.status),
        h("td", {}, when(p.published_at)), h("td", {}, when(p.updated_at)))));
      rows.dataset.loaded = "true";
    } catch (err) {
      notifyError(err);
    }
  };
  status.addEventListener("change", load);
  root.append(h("div", { class: "toolbar" }, h("h3", {}, "Posts"), status,
    h("a", { class: "button primary", id: "new-post", href: editHref("new") }, "New post")),
  h("div", { class: "table-scroll" }, h("table", { class: "board" },
    h("thead", {}, h("tr", {}, ["Title", "Status", "Published", "Updated"].map((c) => h("th", {}, c)))), rows)));
  load();
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date().getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

function postEditor(root, postId) {
  let post = null;
  let debounce = null;
  const input = (name, attrs = {}) => h("input", { id: `post-${name}`, name, ...attrs });
  const title = input("title", { maxLength: 200, required: true });
  const slug = input("slug", { maxLength: 64, placeholder: "made from the title when empty", pattern: "[a-z0-9][a-z0-9-]{1,62}[a-z0-9]" });
  const tags = input("tags", { placeholder: "news, guides" });
  const language = h("select", { id: "post-language" }, LANGUAGES.map(([v, t]) => h("option", { value: v }, t)));
  const cover = input("cover", { type: "url", maxLength: 500, placeholder: "https://…" });
  const excerpt = h("textarea", { id: "post-excerpt", maxLength: 500, rows: 2, placeholder: "the start of the post when empty" });
  const body = h("textarea", { id: "post-body", rows: 18, maxLength: 60000, spellcheck: true });
  const preview = h("div", { class: "post-preview", id: "post-preview", "aria-live": "polite" });
  const status = h("p", { class: "muted", id: "post-state" });
  const scheduleAt = h("input", { type: "datetime-local", id: "post-schedule" });
  const refreshPreview = async () => {
    try {
      const rendered = await previewMarkdown(body.value);
      replace(preview, sanitizedFragment(rendered.html));
      preview.dataset.rendered = String(Date.now());
    } catch (err) {
      notifyError(err);
    }
  };
  body.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(refreshPreview, PREVIEW_MS); });
  const fields = () => {
    const out = {
      title: title.value.trim(), body_markdown: body.value, language: language.value,
      tags: tags.value.split(",").map((t) => t.trim().toLowerCase()).filter(Boolean),
      cover_url: cover.value.trim() || null, excerpt: excerpt.value.trim() || null,
    };
    if (slug.value.trim()) out.slug = slug.value.trim();
    return out;
  };
  const show = (p) => {
    post = p;
    title.value = p.title;
    slug.value = p.slug;
    tags.value = p.tags.join(", ");
    language.value = p.language;
    cover.value = p.cover_url ?? "";
    excerpt.value = p.excerpt_given ? p.excerpt : "";
    body.value = p.body_markdown;
    replace(status, `${p.status}${p.published_at ? ` · ${when(p.published_at)}` : ""}`,
      p.status !== "draft" ? h("span", {}, " · ", h("a", { href: `/blog/${p.slug}`, id: "view-page", target: "_blank", rel: "noopener" }, "View page")) : null,
      p.old_slugs.length ? ` · old links: ${p.old_slugs.join(", ")}` : "");
    root.dataset.status = p.status;
    actions.hidden = false;
    replace(preview, sanitizedFragment(p.html));
  };
  const run = (fn, done) => async () => {
    try {
      show(await fn());
      notify(done);
    } catch (err) {
      notifyError(err);
    }
  };
  const form = h("form", { class: "stack", id: "post-form" },
    field("Title", title), field("Slug", slug, "lower-case letters, digits and dashes; a change keeps the old link working"),
    h("div", { class: "grid-2" }, field("Tags", tags, "comma-separated"), field("Language", language)),
    field("Cover image", cover), field("Excerpt", excerpt),
    h("div", { class: "grid-2 editor" }, field("Markdown", body), h("div", {}, h("span", { class: "field-label" }, "Preview"), preview)),
    h("button", { type: "submit", class: "primary", id: "save-post" }, "Save"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      if (post) {
        show(await updatePost(post.id, fields()));
      } else {
        const created = await createPost(fields());
        location.replace(editHref(created.id));
        return;
      }
      notify("Saved");
    } catch (err) {
      notifyError(err);
    }
  });
  const actions = h("div", { class: "toolbar", id: "post-actions", hidden: true },
    h("button", { type: "button", class: "primary", id: "publish-post", onclick: run(() => publishPost(post.id), "Published") }, "Publish now"),
    scheduleAt,
    h("button", { type: "button", id: "schedule-post", onclick: run(() => publishPost(post.id, new Date(scheduleAt.value).getTime()), "Scheduled") }, "Schedule"),
    h("button", { type: "button", id: "unpublish-post", onclick: run(() => unpublishPost(post.id), "Unpublished") }, "Unpublish"),
    h("button", { type: "button", class: "danger", id: "delete-post", onclick: async () => {
      try {
        await deletePost(post.id);
        notify("Deleted");
        location.replace("#/admin?tab=posts");
      } catch (err) {
        notifyError(err);
      }
    } }, "Delete"));
  scheduleAt.value = toLocalInput(Date.now() + 3_600_000);
  root.append(h("div", { class: "toolbar" }, h("h3", {}, postId === "new" ? "New post" : "Edit post"),
    h("a", { href: "#/admin?tab=posts" }, "All posts")), status, form, actions);
  if (postId !== "new") getPost(postId).then(show).catch(notifyError);
  return () => clearTimeout(debounce);
}

export function postsTab(root, params) {
  const postId = params.get("post");
  if (postId) return postEditor(root, postId);
  postList(root);
  return null;
}
