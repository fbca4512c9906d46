// --shard K/N: a stable slice of a fleet, so N machines or N jobs split it with no coordination.
import { createHash } from 'node:crypto';
import { UsageError } from '../errors.js';

export interface Shard {
  /** 1-based, as `--shard 2/4` reads. */
  index: number;
  count: number;
}

export function parseShard(text: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || index < 1 || index > count) {
    throw new UsageError(`--shard takes K/N with 1 <= K <= N, not "${text}"`, {
      hint:
        'e.g. --shard 1/4 on the first of four jobs ' +
        '(a Kubernetes indexed Job: --shard $((JOB_COMPLETION_INDEX + 1))/4)',
    });
  }
  return { index, count };
}

/**
 * Whether a database belongs to this shard: by a hash of its name, so the split does not depend on
 * the listing's order, and a tenant added later does not move the others to another shard.
 */
export function inShard(name: string, shard: Shard): boolean {
  return createHash('sha256').update(name).digest().readUInt32BE(0) % shard.count === shard.index - 1;
}
