/**
 * Polling helpers for the lab: tests wait for a condition with a deadline instead of sleeping a
 * fixed time, so they are as fast as the system allows and fail with a message saying what never
 * happened.
 */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `pred` (errors count as false) every `intervalMs` until it returns true; rejects after
 * `timeoutMs` with `timed out after N ms waiting for <what>` plus the last error, if any.
 */
export async function waitFor(
  pred: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await pred()) return;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Resolves `null` after `ms` without keeping the process alive: for `Promise.race` against
 * something that itself keeps the event loop busy (a child process, a socket).
 */
export function timeoutNull(ms: number): Promise<null> {
  return new Promise((resolve) => setTimeout(() => resolve(null), ms).unref());
}
