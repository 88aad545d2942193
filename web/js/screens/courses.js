// Courses: the catalog (search and filters), a course page with lesson
// progress, and a lesson played in the typing stage with its goal shown.
//
// A lesson's result goes to POST /api/v1/results like any test; the server's
// `courses` worker completes the lesson a moment later, so after a result
// that meets the goal the screen asks for the course until the lesson shows
// as completed (or says it is still being checked).

import { enroll, getCourse, lessonTest, listCourses, submitResult } from "../api.js";
import { authStore } from "../auth-store.js";
import { h, replace } from "../dom.js";
import { LANGUAGES } from "../languages.js";
import { notifyError } from "../notices.js";
import { playText } from "../typing-stage.js";
import { resultView } from "./result.js";

const LEVELS = [["", "Any level"], ["beginner", "Beginner"], ["intermediate", "Intermediate"], ["advanced", "Advanced"]];
const PRICING = [["", "Free and premium"], ["false", "Free"], ["true", "Premium"]];
const CONFIRM_TRIES = 40; // × 250 ms: how long a completion is waited for
const CONFIRM_MS = 250;

const courseHref = (slug) => `#/course?slug=${encodeURIComponent(slug)}`;
const lessonHref = (slug, n) => `#/lesson?course=${encodeURIComponent(slug)}&n=${n}`;

function choice(id, label, options, value) {
  return h("label", { class: "field inline" }, h("span", { class: "field-label" }, label),
    h("select", { id, name: id }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

function goalText(goal) {
  const parts = [`${goal.wpm} WPM`, `${goal.accuracy}% accuracy`];
  if (goal.seconds) parts.push(`within ${goal.seconds} s`);
  return parts.join(" · ");
}

function courseCard(course) {
  return h("a", { class: "course-card", href: courseHref(course.slug), dataset: { slug: course.slug },
    style: { borderTopColor: course.cover_color } },
  h("h3", {}, course.title, course.premium ? h("span", { class: "tag premium" }, "Premium") : null),
  h("p", { class: "muted" }, `${course.level} · ${course.language} · ${course.lesson_count} lessons`),
  h("p", {}, course.description),
  h("p", {}, course.tags.map((tag) => h("span", { class: "tag" }, tag))));
}

export function catalogScreen() {
  const filters = { q: "", language: "", level: "", premium: "" };
  return {
    mount(view) {
      let ticket = 0;
      const list = h("div", { class: "course-grid", id: "course-list" });
      const more = h("button", { type: "button", class: "secondary", id: "more-courses", hidden: true }, "More");
      let cursor = null;
      const load = async (append = false) => {
        const mine = ++ticket;
        try {
          const page = await listCourses({ ...filters, cursor: append ? cursor : "", limit: 12 });
          if (mine !== ticket) return;
          cursor = page.next_cursor;
          more.hidden = !cursor;
          const cards = page.courses.map(courseCard);
          if (append) list.append(...cards);
          else replace(list, cards.length ? cards : h("p", { class: "muted", id: "no-courses" }, "No course matches."));
          list.dataset.loaded = String(mine);
        } catch (err) {
          notifyError(err);
        }
      };
      more.addEventListener("click", () => load(true));
      const search = h("input", { type: "search", id: "course-search", placeholder: "Search courses", maxLength: 200,
        "aria-label": "Search courses" });
      let debounce = null;
      search.addEventListener("input", () => {
        clearTimeout(debounce);
        debounce = setTimeout(() => { filters.q = search.value.trim(); load(); }, 250);
      });
      const selects = [
        choice("course-language", "Language", [["", "Any language"], ...LANGUAGES], ""),
        choice("course-level", "Level", LEVELS, ""),
        choice("course-premium", "Pricing", PRICING, ""),
      ];
      const names = ["language", "level", "premium"];
      selects.forEach((wrapper, i) => wrapper.querySelector("select").addEventListener("change", (e) => {
        filters[names[i]] = e.target.value;
        load();
      }));
      view.append(h("section", { class: "card", id: "courses" },
        h("div", { class: "toolbar" }, h("h2", {}, "Courses"), search, ...selects), list, more));
      load();
      return () => { ticket += 1; clearTimeout(debounce); };
    },
  };
}

function lessonRow(course, lesson) {
  const state = lesson.progress?.state ?? "available";
  const done = state === "completed";
  return h("li", { class: `lesson ${state}`, dataset: { number: String(lesson.number), state } },
    h("span", { class: "lesson-number" }, done ? "✓" : String(lesson.number)),
    h("div", { class: "lesson-body" },
      h("b", {}, lesson.title), h("p", { class: "muted" }, lesson.instructions),
      h("small", { class: "muted" }, `Goal: ${goalText(lesson.goal)}`,
        lesson.progress?.attempts ? ` · ${lesson.progress.attempts} tries, best ${Math.round(lesson.progress.best_wpm)} WPM` : "")),
    state === "locked"
      ? h("span", { class: "tag" }, "Locked")
      : h("a", { class: `button ${done ? "secondary" : "primary"}`, href: lessonHref(course.slug, lesson.number) },
        done ? "Again" : "Start"));
}

export function courseScreen() {
  return {
    mount(view, params) {
      const slug = params.get("slug") ?? "";
      const root = h("section", { class: "card", id: "course" }, h("p", { class: "muted" }, "Loading course…"));
      view.append(root);
      let alive = true;
      const show = (course) => {
        if (!alive) return;
        const enrolled = Boolean(course.enrollment);
        const action = !authStore.signedIn || authStore.isGuest
          ? h("a", { class: "button primary", href: "#/signup" }, "Sign up to take this course")
          : course.premium && !course.access
            ? h("p", { class: "badge premium", id: "needs-subscription" }, "Premium: needs an active subscription")
            : enrolled
              ? h("p", { class: "muted", id: "enrolled" }, course.enrollment.completed_at ? "Course completed!" : "You are enrolled.")
              : h("button", { type: "button", class: "primary", id: "enroll", onclick: async () => {
                try {
                  await enroll(slug);
                  show(await getCourse(slug));
                } catch (err) {
                  notifyError(err);
                }
              } }, "Enrol");
        const done = course.lessons.filter((l) => l.progress?.state === "completed").length;
        replace(root,
          h("div", { class: "course-head", style: { borderLeftColor: course.cover_color } },
            h("h2", { id: "course-title" }, course.title, course.premium ? h("span", { class: "tag premium" }, "Premium") : null),
            h("p", { class: "muted" }, `${course.level} · ${course.language} · ${course.lesson_count} lessons`,
              enrolled ? ` · ${done} of ${course.lesson_count} completed` : ""),
            h("p", {}, course.description), action),
          h("ol", { class: "lessons", id: "lessons" }, course.lessons.map((lesson) => (enrolled
            ? lessonRow(course, lesson)
            : h("li", { class: "lesson", dataset: { number: String(lesson.number) } },
              h("span", { class: "lesson-number" }, String(lesson.number)),
              h("div", { class: "lesson-body" }, h("b", {}, lesson.title),
                h("small", { class: "muted" }, `Goal: ${goalText(lesson.goal)}`)))))),
          h("a", { href: "#/courses" }, "All courses"));
      };
      getCourse(slug).then(show).catch((err) => {
        notifyError(err);
        replace(root, h("p", { class: "muted" }, "This course could not be loaded. ", h("a", { href: "#/courses" }, "All courses")));
      });
      return () => { alive = false; };
    },
  };
}

/** Asks for the course until lesson `number` is completed; true when it is. */
async function confirmed(slug, number, alive) {
  for (let i = 0; i < CONFIRM_TRIES && alive(); i += 1) {
    const course = await getCourse(slug);
    if (course.lessons[number - 1]?.progress?.state === "completed") return true;
    await new Promise((resolve) => { setTimeout(resolve, CONFIRM_MS); });
  }
  return false;
}

function meets(goal, result) {
  return !result.flagged && result.wpm >= goal.wpm && result.accuracy >= goal.accuracy
    && (result.mode !== "words" || result.chars.missed === 0)
    && (!goal.seconds || result.duration_ms <= goal.seconds * 1000);
}

export function lessonScreen() {
  return {
    mount(view, params) {
      const slug = params.get("course") ?? "";
      const number = Number(params.get("n") ?? "1");
      const stage = h("div", { class: "stage" });
      const title = h("h2", {}, "Lesson");
      const goal = h("p", { class: "goal", id: "lesson-goal" });
      view.append(h("section", { class: "card solo", id: "lesson" },
        h("div", { class: "toolbar" }, title, h("a", { href: courseHref(slug) }, "Back to the course")), goal, stage));
      let alive = true;
      let cleanup = () => {};
      const finish = async (test, spec) => {
        cleanup();
        let saved = null;
        try {
          saved = await submitResult(spec.test_id, test.keystrokes);
        } catch (err) {
          notifyError(err);
        }
        const outcome = h("div", { class: "lesson-outcome", id: "lesson-outcome" });
        replace(stage, outcome, resultView(test, saved, () => start()));
        stage.dataset.phase = "result";
        if (!saved) return;
        if (!meets(spec.lesson.goal, saved.result)) {
          replace(outcome, h("p", { class: "muted", id: "lesson-missed" }, `Not yet: the goal is ${goalText(spec.lesson.goal)}. Try again!`));
          return;
        }
        replace(outcome, h("p", { class: "muted" }, "Goal met — recording…"));
        const done = await confirmed(slug, number, () => alive);
        if (!alive) return;
        if (!done) {
          replace(outcome, h("p", { class: "muted" }, "Goal met. Your progress is still being recorded."));
          return;
        }
        const course = await getCourse(slug);
        const next = course.lessons[number];
        replace(outcome, h("div", { class: "lesson-complete", id: "lesson-complete", role: "status" },
          h("p", { class: "badge" }, "Lesson complete!"),
          course.enrollment?.completed_at ? h("p", { id: "course-complete" }, `You finished “${course.title}”.`) : null,
          next ? h("a", { class: "button primary", id: "next-lesson", href: lessonHref(slug, number + 1) }, `Next: ${next.title}`)
            : h("a", { class: "button primary", href: courseHref(slug) }, "Back to the course")));
      };
      const start = async () => {
        cleanup();
        stage.dataset.phase = "loading";
        replace(stage, h("p", { class: "muted" }, "Getting the lesson…"));
        try {
          const spec = await lessonTest(slug, number);
          if (!alive) return;
          title.textContent = `${spec.lesson.number}. ${spec.lesson.title}`;
          replace(goal, h("b", {}, "Goal: "), goalText(spec.lesson.goal),
            spec.lesson.instructions ? h("span", { class: "muted" }, ` — ${spec.lesson.instructions}`) : null);
          cleanup = playText(stage, spec, { hint: "Start typing — the clock starts with your first key.",
            onFinish: (test) => finish(test, spec) });
        } catch (err) {
          if (!alive) return;
          stage.dataset.phase = "error";
          const why = { subscription_required: "This lesson is part of a premium course: it needs an active subscription.",
            lesson_locked: "Complete the lessons before this one first.", not_enrolled: "Enrol in the course first." }[err.code];
          replace(stage, h("p", { class: "muted", id: "lesson-refused" }, why ?? err.message, " ",
            h("a", { href: courseHref(slug) }, "Back to the course")));
          if (!why) notifyError(err);
        }
      };
      start();
      return () => { alive = false; cleanup(); };
    },
  };
}
