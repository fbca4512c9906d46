// The files `tidemark create` writes, and recognizing one that was never edited.
import type { SqlFile } from './files.js';

export function forwardTemplate(id: string): string {
  return `-- ${id}: the change. tidemark runs this file in one transaction together with its
-- schema_version row, so a failure leaves nothing behind. Plain SQL: psql can run it as it is.
-- For statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY), make the first
-- line: -- tidemark:no-transaction
-- Dialect-specific SQL? Rename to ${id}.postgres.sql / ${id}.sqlite.sql.
--
-- The old release keeps serving while this runs (tidemark lint checks these; docs/zero-downtime.md):
--   SET lock_timeout = '5s';                   -- first: give up rather than queue traffic behind a lock
--   CREATE INDEX CONCURRENTLY ...;             -- in its own file, first line -- tidemark:no-transaction
--   ALTER TABLE t ADD COLUMN c text;           -- no volatile default; backfill in a later migration
--   ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES p (id) NOT VALID;
--   ALTER TABLE t VALIDATE CONSTRAINT f;       -- in the next migration (no exclusive lock)
--   Rename or drop only what the running release no longer uses (expand, then contract a release later).
--   SQLite table rebuild: first line -- tidemark:foreign-keys-off (keys checked before commit).
--   A hazard that is safe here: end its statement's line with -- tidemark:allow <rule> <why>.

`;
}

export function rollbackTemplate(id: string): string {
  return `-- ${id} rollback: undo everything ${id}.sql does, in reverse order.
-- Drop what it created (tables, indexes, types, functions) and restore what it changed,
-- so that the schema is exactly as it was before. If it cannot be undone, make the first
-- line: -- tidemark:irreversible

`;
}

/** Whether a file's text (normalized) is still exactly what `create` wrote for it. */
export function isUntouchedTemplate(file: SqlFile, text: string): boolean {
  const id = `${file.versionText}_${file.name}`;
  return text === (file.kind === 'forward' ? forwardTemplate(id) : rollbackTemplate(id));
}
