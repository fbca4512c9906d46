// The lock-hazard rules: what each one catches, why it can take a site down while the running
// release serves traffic, and the pattern that does the same change safely. Pure data.

export const RULE_IDS = [
  'index-concurrently',
  'volatile-default',
  'column-type-rewrite',
  'set-not-null',
  'constraint-not-valid',
  'rename',
  'drop',
  'vacuum-full',
  'cluster',
  'lock-table',
  'mixed-schema-data',
  'lock-timeout',
  'sqlite-foreign-keys-pragma',
  'sqlite-alter-unsupported',
] as const;

export type RuleId = (typeof RULE_IDS)[number];

/** `allow-comment` reports a `-- tidemark:allow` comment that names no known rule or gives no reason. */
export type FindingRule = RuleId | 'allow-comment';

export interface Rule {
  /** The safe pattern, in one line. */
  safe: string;
}

export const RULES: Readonly<Record<FindingRule, Rule>> = {
  'index-concurrently': {
    safe: 'CREATE INDEX CONCURRENTLY in a file whose first line is -- tidemark:no-transaction (one index per file)',
  },
  'volatile-default': {
    safe: 'ADD COLUMN without the default (or with a constant one), then backfill in batches in a later migration',
  },
  'column-type-rewrite': {
    safe: 'add a new column of the new type, backfill it in batches, switch the code over, then drop the old column',
  },
  'set-not-null': {
    safe:
      'ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; then VALIDATE CONSTRAINT c; then SET NOT NULL ' +
      '(PostgreSQL 12+ uses the check) and DROP CONSTRAINT c',
  },
  'constraint-not-valid': {
    safe: 'ADD CONSTRAINT ... NOT VALID (brief lock), then ALTER TABLE ... VALIDATE CONSTRAINT in the next migration',
  },
  rename: {
    safe: 'expand/contract: add the new name, write both, move reads over, drop the old one a release later',
  },
  drop: {
    safe: 'expand/contract: first release the code that no longer uses it, then drop it in a later release',
  },
  'vacuum-full': {
    safe: 'plain VACUUM (no exclusive lock), or pg_repack to reclaim space online',
  },
  cluster: {
    safe: 'pg_repack --order-by, or leave the table order alone (CLUSTER rewrites it under an exclusive lock)',
  },
  'lock-table': {
    safe: "let each statement take the lock it needs, after SET lock_timeout = '5s' (it gives up instead of queueing)",
  },
  'mixed-schema-data': {
    safe: 'put the data change in its own migration (in batches), apart from the schema change',
  },
  'lock-timeout': {
    safe: "start the file with SET lock_timeout = '5s' (or run migrate --pg-lock-timeout 5s)",
  },
  'sqlite-foreign-keys-pragma': {
    safe: 'remove the PRAGMA; make the first line -- tidemark:foreign-keys-off (set outside the transaction)',
  },
  'sqlite-alter-unsupported': {
    safe: 'rebuild the table (create the new one, copy, drop, rename) in a file marked -- tidemark:foreign-keys-off',
  },
  'allow-comment': {
    safe: 'write -- tidemark:allow <rule> <why it is safe here>, naming one of the rule ids',
  },
};

/** A finding before it is placed in a file: the rule, a one-line why, and where (a character offset). */
export interface RawFinding {
  rule: FindingRule;
  message: string;
  offset: number;
  /** The index of the statement it belongs to: an allow comment on that statement suppresses it. */
  statement: number;
}

/** A finding as reported: `file:line:column: [rule] message`, with the safe pattern. */
export interface Finding {
  rule: FindingRule;
  file: string;
  line: number;
  column: number;
  message: string;
  safe: string;
}
