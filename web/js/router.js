// Hash routing: "#/name" picks a screen; a screen's mount() returns its cleanup.

export class Router {
  #routes;
  #view;
  #guard;
  #cleanup = null;

  /**
   * routes: {name: {mount(view, params) -> cleanup?}}; guard(name) may return
   * another route name to go to instead (e.g. sign-in before the profile).
   */
  constructor(view, routes, guard = () => null) {
    this.#view = view;
    this.#routes = routes;
    this.#guard = guard;
    window.addEventListener("hashchange", () => this.render());
  }

  get current() {
    return location.hash.replace(/^#\/?/, "").split("?")[0] || "home";
  }

  go(name) {
    if (this.current === name) this.render();
    else location.hash = `#/${name}`;
  }

  render() {
    const wanted = this.current;
    const redirect = this.#guard(wanted);
    if (redirect && redirect !== wanted) {
      location.replace(`#/${redirect}`);
      return;
    }
    const route = this.#routes[wanted] ?? this.#routes.notfound;
    this.#cleanup?.();
    this.#cleanup = null;
    this.#view.replaceChildren();
    this.#view.dataset.screen = wanted;
    const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
    this.#cleanup = route.mount(this.#view, params) ?? null;
    document.dispatchEvent(new CustomEvent("typogram:screen", { detail: wanted }));
  }
}
