// Waiting for a run lock, in both dialects: short attempts with pauses in between.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Calls attempt() until it returns true or timeoutSeconds pass. The pauses grow from 50 ms to about
 * 500 ms and are randomized, so that many runners started together do not retry in step. An abort
 * (a signal) ends the wait with its reason.
 */
export async function pollUntil(
  timeoutSeconds: number,
  attempt: () => Promise<boolean>,
  signal?: AbortSignal,
): Promise<boolean> {
  const deadline = performance.now() + timeoutSeconds * 1000;
  for (let pause = 50; ; pause = Math.min(pause * 1.5, 500)) {
    signal?.throwIfAborted();
    if (await attempt()) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    const wait = Math.min(left, pause * (0.5 + Math.random()));
    await sleep(wait, undefined, { signal }).catch(() => signal?.throwIfAborted());
  }
}
