/**
 * The clock seam: every reading of the time and every timer that the queue and its workers schedule by (the
 * owner's tick, delays, backoff, retention by age, `cooling` after a cut back, lease renewal and expiry, job
 * timeouts, abortGraceMs, close timeouts) goes through one Clock, so that a test can advance time instead of
 * sleeping. It is handed down as an internal option (INTERNAL_CLOCK, options.ts) from Queue and Worker to the Owner,
 * its desk, the Worker, its runners and its thread pool; every handle on one queue in a process must use the same
 * clock (registry.ts).
 *
 * What stays on real time, on purpose:
 *   - the log (lib/log): the writer's batchIntervalMs timer groups fsyncs, it decides no job's fate, and a log has
 *     no clock to be handed (it is below queue); segment headers' createdAt is informational;
 *   - the owner lock (proper-lockfile refreshes and judges its lock by mtimes on real time: another process's
 *     clock cannot be a test's);
 *   - the Worker's keep-alive handle (it holds the process, it measures nothing);
 *   - a Worker's measured run time of its jobs (performance.now(), for lookahead): a cost of the processors, not a
 *     schedule; on a test clock every job would look instant.
 *
 * Leases compare file mtimes with now (tickets.ts, leaseAge): a renewal stamps the clock's now on the file, so a
 * test clock ages a lease without sleeping.
 *
 * Hot path: systemClock's methods are the plain functions; the per-job code reads the clock from a field once and
 * calls now() on it, no allocation.
 */

/** What a timer handle must do: all the code here asks of one (unref: a timer must not hold the process). */
export interface ClockTimer {
  unref(): unknown;
}

export interface Clock {
  /** ms since the epoch, as Date.now(). */
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer | undefined): void;
  setInterval(fn: () => void, ms: number): ClockTimer;
  clearInterval(timer: ClockTimer | undefined): void;
}

/** Real time: Date.now and node's timers. */
export const systemClock: Clock = Object.freeze({
  now: Date.now,
  setTimeout: (fn: () => void, ms: number): ClockTimer => setTimeout(fn, ms),
  clearTimeout: (timer: ClockTimer | undefined): void => clearTimeout(timer as NodeJS.Timeout | undefined),
  setInterval: (fn: () => void, ms: number): ClockTimer => setInterval(fn, ms),
  clearInterval: (timer: ClockTimer | undefined): void => clearInterval(timer as NodeJS.Timeout | undefined),
});

interface TestTimer extends ClockTimer {
  at: number;
  /** Order of creation: timers due at the same time fire in the order they were set, as node's do. */
  seq: number;
  fn: () => void;
  /** The period of an interval; undefined for a timeout. */
  every: number | undefined;
}

/**
 * A clock that moves only when told (advance), for tests. It starts at the real time it was made (so that times
 * it stamps look like times) and from then on real time does not move it. Its timers fire only inside advance(),
 * in time order; between two fires advance() lets the event loop turn once (a real setImmediate), so the
 * microtasks a timer starts, and the log's flush they schedule, run before the next timer fires.
 *
 * Why a clock of our own rather than node:test's t.mock.timers: mocking the globals would stop the log writer's
 * timers and proper-lockfile's lock refresh too, and Date would move file mtimes' meaning; this clock moves only
 * what the queue schedules, and I/O keeps running on real time.
 */
export class TestClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Set<TestTimer>();

  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.#add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): ClockTimer {
    return this.#add(fn, ms, Math.max(1, ms));
  }

  clearTimeout(timer: ClockTimer | undefined): void {
    if (timer) this.#timers.delete(timer as TestTimer);
  }

  clearInterval(timer: ClockTimer | undefined): void {
    this.clearTimeout(timer);
  }

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way, in order, each at its own time (now()
   * reads its due time while it runs), with a turn of the event loop after each. Timers a fire sets are fired too
   * when they fall due before the end. Resolves after a last turn of the event loop at the end time.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      const next = this.#due(end);
      if (!next) break;
      this.#now = Math.max(this.#now, next.at);
      if (next.every === undefined) this.#timers.delete(next);
      else next.at += next.every;
      next.fn();
      await turn();
    }
    this.#now = Math.max(this.#now, end);
    await turn();
  }

  #due(end: number): TestTimer | undefined {
    let best: TestTimer | undefined;
    for (const t of this.#timers) {
      if (t.at <= end && (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq))) best = t;
    }
    return best;
  }

  #add(fn: () => void, ms: number, every: number | undefined): ClockTimer {
    const timer: TestTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, every, unref: () => timer };
    this.#timers.add(timer);
    return timer;
  }
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
