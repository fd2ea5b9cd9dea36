// Hands events to the service worker, which writes them to its outbox before anything else.
//
// Each event gets its id here, on the device, so a retry anywhere downstream is stored once. Events
// are gathered for a moment and handed over in one runtime message; what the worker does not take
// (it is restarting, or the extension was reloaded under this page) is kept and offered again.

const GATHER_MS = 150;
const RETRY_MS = 2000;
const BATCH = 1000; // events per hand-off (the worker's limit): a console loading a long history is fast
// Events kept while the worker cannot be reached (about 15 MB at worst). Past it the oldest go: a page
// cut off from its worker for that long has a broken extension, which the server sees as silence.
const MAX_PENDING = 50_000;

export class Outlet {
  constructor({ console: consoleId, send, now = () => Date.now(), setTimer = (fn, ms) => setTimeout(fn, ms), newId }) {
    this.console = consoleId;
    this.send = send;
    this.now = now;
    this.setTimer = setTimer;
    this.newId = newId ?? (() => crypto.randomUUID());
    this.pending = [];
    this.timer = null;
    this.sending = false;
  }

  add(event) {
    this.pending.push({ id: this.newId(), at: this.now(), console: this.console, ...event });
    if (this.pending.length > MAX_PENDING) this.pending.splice(0, this.pending.length - MAX_PENDING);
    this.schedule(this.pending.length >= BATCH ? 0 : GATHER_MS);
  }

  schedule(delay) {
    if (this.timer === null) this.timer = this.setTimer(() => this.flush(), delay);
  }

  async flush() {
    this.timer = null;
    if (this.sending || this.pending.length === 0) return;
    this.sending = true;
    const batch = this.pending.slice(0, BATCH);
    let taken = false;
    try {
      const answer = await this.send(batch);
      taken = answer?.ok === true;
    } catch {
      taken = false; // no worker to answer: keep them
    }
    this.sending = false;
    if (taken) this.pending.splice(0, batch.length);
    if (this.pending.length > 0) this.schedule(taken ? 0 : RETRY_MS);
  }
}
