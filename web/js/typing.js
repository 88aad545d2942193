// The typing engine: a text, the keys pressed, and what follows from them.
// Pure: no DOM and no clock; the caller passes each key's time in ms.
//
// Rules (the same replay the server does on the keystroke log):
// * a key is one character or "Backspace"; Backspace removes the last typed
//   character, if any; the clock starts with the first character (a Backspace
//   before it is ignored, as the server ignores it);
// * the test ends when the typed characters equal the text (the server
//   refuses a log that does not reproduce it); keys past the text's end are
//   ignored, so a wrong last character must be corrected;
// * WPM counts correctly placed characters / 5 per minute; raw WPM counts
//   every typed character; accuracy is the share of character keystrokes
//   that matched the expected character when they were typed.

export const BACKSPACE = "Backspace";
const CHARS_PER_WORD = 5;

export class TypingTest {
  constructor(text) {
    this.text = text;
    this.typed = [];
    this.keystrokes = []; // [[t_ms, key], …] since the first key
    this.hits = 0;
    this.misses = 0;
    this.mistakes = new Map(); // expected char -> Map(typed char -> count)
    this.startedAt = null;
    this.lastAt = 0;
  }

  get position() {
    return this.typed.length;
  }

  get finished() {
    return this.typed.length === this.text.length && this.correctChars() === this.text.length;
  }

  /** Applies one key at absolute time `now` (ms); returns false when ignored. */
  press(key, now) {
    if (this.finished) return false;
    if (key !== BACKSPACE && ([...key].length !== 1 || this.typed.length >= this.text.length)) return false;
    if (this.startedAt === null && key === BACKSPACE) return false; // nothing typed yet
    if (this.startedAt === null) this.startedAt = now;
    const t = Math.max(this.lastAt, Math.round(now - this.startedAt));
    this.lastAt = t;
    this.keystrokes.push([t, key]);
    if (key === BACKSPACE) {
      this.typed.pop();
      return true;
    }
    const expected = this.text[this.typed.length];
    if (key === expected) {
      this.hits += 1;
    } else {
      this.misses += 1;
      const byTyped = this.mistakes.get(expected) ?? new Map();
      byTyped.set(key, (byTyped.get(key) ?? 0) + 1);
      this.mistakes.set(expected, byTyped);
    }
    this.typed.push(key);
    return true;
  }

  correctChars() {
    let n = 0;
    this.typed.forEach((ch, i) => {
      if (ch === this.text[i]) n += 1;
    });
    return n;
  }

  /** Live numbers at `now` (ms); zero before the first key. */
  stats(now = null) {
    const elapsed = this.startedAt === null ? 0 : (now === null ? this.lastAt : now - this.startedAt);
    const minutes = elapsed / 60000;
    const keyed = this.hits + this.misses;
    return {
      elapsedMs: Math.max(0, Math.round(elapsed)),
      wpm: minutes > 0 ? this.correctChars() / CHARS_PER_WORD / minutes : 0,
      rawWpm: minutes > 0 ? this.typed.length / CHARS_PER_WORD / minutes : 0,
      accuracy: keyed ? this.hits / keyed : 1,
      errors: this.misses,
    };
  }

  /** WPM at the end of every second, replayed from the keystroke log. */
  wpmSeries() {
    const replay = new TypingTest(this.text);
    const series = [];
    const end = this.lastAt;
    let i = 0;
    for (let second = 1; second * 1000 < end + 1000; second += 1) {
      const until = Math.min(second * 1000, end);
      while (i < this.keystrokes.length && this.keystrokes[i][0] <= until) {
        const [t, key] = this.keystrokes[i++];
        replay.press(key, t);
      }
      const minutes = Math.max(until, 1) / 60000;
      series.push({ t: until / 1000, wpm: replay.correctChars() / CHARS_PER_WORD / minutes });
    }
    return series;
  }

  /** Mistakes grouped by the expected character, most frequent first. */
  errorBreakdown() {
    const rows = [];
    for (const [expected, byTyped] of this.mistakes) {
      const total = [...byTyped.values()].reduce((a, b) => a + b, 0);
      const typedAs = [...byTyped.entries()].sort((a, b) => b[1] - a[1]);
      rows.push({ expected, total, typedAs });
    }
    const uncorrected = this.typed.length - this.correctChars();
    return { rows: rows.sort((a, b) => b.total - a.total), uncorrected, corrected: this.misses - uncorrected };
  }
}
