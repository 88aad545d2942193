// One race as this client knows it, fed by gateway pushes and replies:
// queue ticket, phase, text, start time, players' live progress, standings.
//
// Phases: idle → queued → (lobby →) countdown → running → finished.
// Progress is batched: the screen reports every key, and the latest
// position goes out as `race.progress` about twice a second (and once at
// the end, just before `race.finish`).

import { Emitter } from "./events.js";

const PROGRESS_EVERY_MS = 500;
const REJOIN_TRIES = 20;
const REJOIN_RETRY_MS = 250;

const idOf = (p) => p.user ?? p.id;

export class RaceState extends Emitter {
  #gateway;
  #timer = null;
  #sent = { pos: 0, errors: 0 };
  #local = { pos: 0, errors: 0 };

  constructor(gateway) {
    super();
    this.#gateway = gateway;
    this.reset();
    gateway.on("match.found", (d) => this.#found(d));
    gateway.on("race.joined", (d) => this.#joined(d));
    gateway.on("race.countdown", (d) => d.race === this.race && this.#countdown(d));
    gateway.on("race.state", (d) => d.race === this.race && this.#state(d));
    gateway.on("race.result", (d) => d.race === this.race && this.#result(d));
    gateway.on("welcome", () => {
      // After any reconnect, resumed or not and maybe on another node (its old node
      // crashed): sit down again in the race we are in, so this node relays it.
      if (this.race && this.phase !== "finished") this.#rejoin(this.race, 0);
    });
  }

  #rejoin(race, attempt) {
    this.#gateway.request("race.join", { race }).catch((err) => {
      // `unavailable`: the race is changing hands (its node died); try again shortly.
      if (err.code === "unavailable" && attempt < REJOIN_TRIES && this.race === race) {
        setTimeout(() => this.#rejoin(race, attempt + 1), REJOIN_RETRY_MS);
      } else {
        this.emit("error", err);
      }
    });
  }

  reset() {
    clearInterval(this.#timer);
    this.#timer = null;
    this.ticket = null;
    this.race = null;
    this.code = null;
    this.text = "";
    this.host = null;
    this.startAt = null;
    this.phase = "idle";
    this.players = new Map(); // id -> {id, name, seat, pos, wpm, done, connected, place}
    this.standings = null;
    this.mine = null; // race.finished
    this.#sent = { pos: 0, errors: 0 };
    this.#local = { pos: 0, errors: 0 };
    this.emit("change", this);
  }

  get isHost() {
    return this.host !== null && this.host === this.#gateway.user?.id;
  }

  // -- requests ---------------------------------------------------------------

  async queue(difficulty, lang = "en") {
    this.reset();
    const { ticket } = await this.#gateway.request("match.join", { mode: "race", difficulty, lang });
    if (this.phase === "idle") {
      this.ticket = ticket;
      this.#set("queued");
    }
  }

  /**
   * Gives up the queue ticket. When the match crossed the cancel, the server answers
   * `conflict` naming the race (`details.race`): the seat there is ours, and a seat
   * never taken up is forfeited. `keepSeat` takes it up (`race.join`, as if
   * `match.found` had arrived); otherwise it is left at once (`race.leave`, a forfeit
   * the others need not wait for), e.g. when the player walked away from the queue.
   */
  async cancel({ keepSeat = true } = {}) {
    const ticket = this.ticket;
    if (!ticket) return;
    try {
      await this.#gateway.request("match.cancel", { ticket });
    } catch (err) {
      const race = err.code === "conflict" ? err.details?.race : undefined;
      if (!race) throw err;
      if (keepSeat) {
        if (this.race !== race) await this.#gateway.request("race.join", { race }); // race.joined seats us
        if (this.race === race) this.ticket = null;
      } else {
        await this.#gateway.request("race.leave", { race }).catch(() => {});
        if (this.ticket === ticket || this.race === race) this.reset();
      }
      return;
    }
    if (this.phase === "queued") this.reset();
  }

  async create({ text, difficulty = "medium", lang = "en" } = {}) {
    this.reset();
    const d = { difficulty, lang };
    if (text) d.text = text;
    const created = await this.#gateway.request("race.create", d);
    this.race = created.race;
    this.code = created.code;
    this.emit("change", this);
  }

  join(code) {
    this.reset();
    return this.#gateway.request("race.join", { code: code.trim().toUpperCase() });
  }

  start() {
    // No reply on success: everyone gets race.countdown; a refusal comes as an error frame.
    this.#gateway.send("race.start", { race: this.race });
  }

  async leave() {
    const race = this.race;
    if (race && this.phase !== "finished") {
      try {
        await this.#gateway.request("race.leave", { race });
      } catch {
        // Best effort: the session's end leaves the race anyway (in the lobby the seat is
        // freed; once started, leaving either way is a forfeit).
      }
    }
    this.reset();
  }

  /** The typist's position and error count; sent batched. */
  progress(pos, errors) {
    this.#local = { pos: Math.max(pos, this.#local.pos), errors }; // never backwards on the wire
    const me = this.players.get(this.#gateway.user?.id);
    if (me) me.pos = Math.max(me.pos, pos);
  }

  /** Sends the last position, then the keystroke log (t_ms from start_at). */
  async finish(keystrokes) {
    this.#flush();
    clearInterval(this.#timer);
    this.#timer = null;
    this.mine = await this.#gateway.request("race.finish", { race: this.race, keystrokes });
    this.emit("finished", this.mine);
    return this.mine;
  }

  // -- pushes -----------------------------------------------------------------

  #set(phase) {
    this.phase = phase;
    if (phase === "running" && !this.#timer) this.#timer = setInterval(() => this.#flush(), PROGRESS_EVERY_MS);
    if (phase === "finished") {
      clearInterval(this.#timer);
      this.#timer = null;
    }
    this.emit("change", this);
  }

  #flush() {
    const { pos, errors } = this.#local;
    if (this.phase !== "running" || (pos === this.#sent.pos && errors === this.#sent.errors)) return;
    if (this.#gateway.send("race.progress", { race: this.race, pos, errors })) this.#sent = { pos, errors };
  }

  #players(list) {
    const before = this.players;
    this.players = new Map(list.map((p) => [idOf(p), { pos: 0, wpm: 0, done: false, connected: true,
      ...before.get(idOf(p)), ...p, id: idOf(p) }]));
  }

  #found(d) {
    this.reset();
    this.race = d.race;
    this.text = d.text;
    this.startAt = d.start_at;
    this.#players(d.players ?? []);
    this.#set("countdown");
  }

  #joined(d) {
    if (this.race && d.race !== this.race) return;
    this.race = d.race;
    this.code = d.code ?? this.code;
    this.text = d.text;
    this.host = d.host ?? null;
    this.startAt = d.start_at ?? null;
    this.#players(d.players ?? []);
    if (d.standings) this.standings = d.standings;
    this.#set(d.phase === "running" ? "countdown" : d.phase); // the screen's clock says when it runs
  }

  #countdown(d) {
    this.startAt = d.start_at;
    if (d.text) this.text = d.text;
    if (d.players) this.#players(d.players);
    this.#set("countdown");
  }

  #state(d) {
    const me = this.#gateway.user?.id;
    const mine = this.players.get(me)?.pos ?? 0;
    this.#players(d.players ?? []);
    const self = this.players.get(me);
    if (self && !self.done) self.pos = Math.max(self.pos, mine); // ours is ahead of the server's
    if (d.phase === "lobby") this.phase = d.phase; // "finished" waits for race.result
    this.emit("change", this);
  }

  #result(d) {
    this.standings = d.standings ?? [];
    this.#set("finished");
  }

  /** Called by the screen when the countdown reaches start_at. */
  running() {
    if (this.phase === "countdown") this.#set("running");
  }
}
