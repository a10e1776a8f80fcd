/**
 * The signal handed to a processor that declares no signal parameter (inline: and has no timeout). It could not
 * look at one, and an AbortController per job is measurable at tens of thousands of jobs a second, so such runs
 * share this one, which never aborts. Used on both sides of the thread boundary (runners.ts, thread-entry.ts).
 */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/** Whether `fn` declares a third parameter, the signal: processors are called as BullMQ calls them, (job, token, signal). */
export function takesSignal(fn: (...args: never[]) => unknown): boolean {
  return fn.length >= 3;
}
