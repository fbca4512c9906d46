// Where tidemark keeps its own tables on PostgreSQL: needed by every command, so kept apart from the
// catalog queries (postgres-schema.ts), which only verify and schema load.
import type { TableName } from '../config.js';

const quote = (identifier: string) => `"${identifier}"`;

/**
 * Quoted, schema-qualified names of the ledger, its history, the lock table (--lock table) and
 * `<table>_schema`, where earlier versions stored snapshots: never read or written now, only
 * kept out of snapshots so that an old installation does not see it as drift.
 */
export function tidemarkTables(table: TableName): { ledger: string; history: string; snapshots: string; lock: string } {
  const qualify = (name: string) => (table.schema ? `${quote(table.schema)}.` : '') + quote(name);
  return {
    ledger: qualify(table.name),
    history: qualify(`${table.name}_history`),
    snapshots: qualify(`${table.name}_schema`),
    lock: qualify(`${table.name}_lock`),
  };
}
