// A minimal typed event emitter: on(name, fn) returns the function that unsubscribes.

export class Emitter {
  #listeners = new Map();

  on(name, fn) {
    if (!this.#listeners.has(name)) this.#listeners.set(name, new Set());
    this.#listeners.get(name).add(fn);
    return () => this.#listeners.get(name)?.delete(fn);
  }

  emit(name, payload) {
    for (const fn of [...(this.#listeners.get(name) ?? [])]) {
      try {
        fn(payload);
      } catch (err) {
        console.error(`listener for ${name} failed`, err);
      }
    }
  }
}
