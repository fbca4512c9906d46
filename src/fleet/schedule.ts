// The order databases of a fleet start in: a canary first, then the rest N at a time, and when to stop
// starting new ones. No I/O here: the work is given.

export interface ScheduleOptions {
  /** Most databases in flight at once. */
  concurrency: number;
  /** The first `canary` items run (and must all succeed) before any other starts. */
  canary: number;
  /** Start every item whatever fails; otherwise none starts after the first failure. */
  keepGoing: boolean;
  /** Checked before each start: a signal arrived, start nothing more. */
  halted: () => boolean;
}

/**
 * Runs `work` over the items; `work` resolves true on success and never rejects. Items already
 * running when the fleet stops are let finish: a migration is never abandoned halfway.
 * @returns the items never started.
 */
export async function schedule<T>(
  items: T[],
  work: (item: T) => Promise<boolean>,
  options: ScheduleOptions,
): Promise<T[]> {
  const canary = items.slice(0, options.canary);
  const rest = items.slice(canary.length);
  const canaryFailed = await runPool(canary, work, { ...options, keepGoing: false });
  if (canaryFailed.failed || canaryFailed.notStarted.length > 0) return [...canaryFailed.notStarted, ...rest];
  return (await runPool(rest, work, options)).notStarted;
}

async function runPool<T>(
  items: T[],
  work: (item: T) => Promise<boolean>,
  options: ScheduleOptions,
): Promise<{ failed: boolean; notStarted: T[] }> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !(failed && !options.keepGoing) && !options.halted()) {
      const item = items[next++]!;
      if (!(await work(item))) failed = true;
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency, items.length));
  await Promise.all(Array.from({ length: workers }, worker));
  return { failed, notStarted: items.slice(next) };
}
