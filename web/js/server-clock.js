// The server's clock as seen from here: `ping` → `pong {ts}` (server epoch ms)
// gives the offset, taken from the round trip with the least delay.

const SAMPLES = 3;

export class ServerClock {
  offsetMs = 0;
  synced = false;

  /** Server epoch ms now (local clock corrected by the measured offset). */
  now() {
    return Date.now() + this.offsetMs;
  }

  /** Measures the offset over the gateway; keeps the old one when it fails. */
  async sync(gateway) {
    let best = null;
    for (let i = 0; i < SAMPLES; i += 1) {
      const sent = Date.now();
      try {
        const { ts } = await gateway.request("ping", {}, 3000);
        const back = Date.now();
        const rtt = back - sent;
        if (typeof ts === "number" && (!best || rtt < best.rtt)) best = { rtt, offset: ts - (sent + back) / 2 };
      } catch {
        break;
      }
    }
    if (best) {
      this.offsetMs = Math.round(best.offset);
      this.synced = true;
    }
    return this.offsetMs;
  }
}
