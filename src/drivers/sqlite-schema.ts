// SQLite catalog reads behind schema snapshots (sqlite_schema and the pragmas), and scratch databases.
// SQLite keeps CHECK constraints and index definitions only as the SQL
// text they were created with, so those parts are parsed from it.
import { existsSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TableName } from '../config.js';
import type { ScratchResult } from './scratch.js';
import {
  closingQuote,
  normalizeSnapshot,
  normalizeSql,
  type Column,
  type Constraint,
  type Index,
  type Snapshot,
} from '../schema.js';

// biome-ignore lint/suspicious/noExplicitAny: catalog rows are checked by the queries that read them
type Row = Record<string, any>;
/** Runs one statement on the driver's connection and returns its rows. */
export type SqliteQuery = (sql: string, params?: readonly (string | number | null)[]) => Promise<Row[]>;

/** The application's schema; tidemark's own tables are left out, and `<table>_schema` of earlier versions. */
export async function readSqliteSnapshot(query: SqliteQuery, table: TableName): Promise<Snapshot> {
  const own = [table.name, `${table.name}_history`, `${table.name}_schema`];
  await query('begin');
  try {
    const objects = await query(
      `select type, name, tbl_name as "table", sql from sqlite_schema
       where name not like 'sqlite_%' and tbl_name not in (?, ?, ?) and sql is not null order by name`,
      own,
    );
    const of = (type: string) => objects.filter((o) => o.type === type);
    const pragmas = await readPragmas(query);
    const tables = of('table').map((t) => ({
      name: t.name,
      columns: columns(pragmas.columns.get(t.name) ?? []),
      constraints: constraints(pragmas, t.name, t.sql),
    }));
    return normalizeSnapshot({
      tables,
      indexes: of('index').map((i) => indexOf(i.name, i.table, i.sql)),
      views: of('view').map((v) => ({
        name: v.name,
        materialized: false,
        definition: withoutHeader(v.sql, /^CREATE (TEMP |TEMPORARY )?VIEW (IF NOT EXISTS )?\S+?( ?\([^)]*\))? AS /i),
      })),
      triggers: of('trigger').map((t) => ({
        name: t.name,
        table: t.table,
        definition: withoutHeader(t.sql, /^CREATE (TEMP |TEMPORARY )?TRIGGER (IF NOT EXISTS )?\S+ /i),
      })),
      types: [],
      sequences: [],
      functions: [],
    });
  } finally {
    await query('commit');
  }
}

function withoutHeader(sql: string, header: RegExp): string {
  return normalizeSql(sql).replace(header, '');
}

/** Each pragma's rows for every table, by table name. */
interface Pragmas {
  columns: Map<string, Row[]>;
  keys: Map<string, Row[]>;
  uniques: Map<string, Row[]>;
  references: Map<string, Row[]>;
}

/**
 * Every pragma read once for all tables (joined with sqlite_schema), not once per table: 4 queries, not 4 per table.
 */
async function readPragmas(query: SqliteQuery): Promise<Pragmas> {
  const perTable = async (select: string, from: string, order: string) =>
    groupBy(
      await query(
        `select m.name as tbl, ${select} from sqlite_schema m ${from} where m.type = 'table' order by m.name, ${order}`,
      ),
    );
  return {
    columns: await perTable(
      `p.name, p.type, p."notnull" as not_null, p.dflt_value, p.hidden`,
      `join pragma_table_xinfo(m.name) p on p.hidden <> 1`,
      'p.cid',
    ),
    keys: await perTable('p.name', 'join pragma_table_info(m.name) p on p.pk > 0', 'p.pk'),
    uniques: await perTable(
      'l.name as index_name, i.name',
      `join pragma_index_list(m.name) l on l.origin = 'u' join pragma_index_info(l.name) i`,
      'l.seq, i.seqno',
    ),
    references: await perTable(
      'f.id, f."table", f."from", f."to", f.on_update, f.on_delete',
      'join pragma_foreign_key_list(m.name) f',
      'f.id, f.seq',
    ),
  };
}

function groupBy(rows: Row[]): Map<string, Row[]> {
  const groups = new Map<string, Row[]>();
  for (const row of rows) {
    const group = groups.get(row.tbl);
    if (group) group.push(row);
    else groups.set(row.tbl, [row]);
  }
  return groups;
}

function columns(rows: Row[]): Column[] {
  return rows.map((c) => ({
    name: c.name,
    type: normalizeSql(c.type).toLowerCase() || 'untyped',
    nullable: !c.not_null,
    // hidden 2 and 3 are generated columns; SQLite does not say by what expression.
    default: c.hidden > 1 ? 'generated always' : c.dflt_value === null ? null : normalizeSql(c.dflt_value),
  }));
}

function constraints(pragmas: Pragmas, table: string, sql: string): Constraint[] {
  const list = (names: string[]) => `(${names.join(', ')})`;
  const found: Constraint[] = [];
  const keyColumns = pragmas.keys.get(table) ?? [];
  if (keyColumns.length > 0)
    found.push({ kind: 'primary key', name: null, definition: list(keyColumns.map((c) => c.name)) });
  const uniques = pragmas.uniques.get(table) ?? [];
  for (const index of new Set(uniques.map((u) => u.index_name))) {
    found.push({
      kind: 'unique',
      name: null,
      definition: list(uniques.filter((u) => u.index_name === index).map((c) => c.name)),
    });
  }
  const references = pragmas.references.get(table) ?? [];
  for (const id of new Set(references.map((r) => r.id))) {
    const parts = references.filter((r) => r.id === id);
    const target = parts.every((r) => r.to !== null)
      ? `${parts[0]!.table}${list(parts.map((r) => r.to))}`
      : parts[0]!.table;
    // Written as PostgreSQL writes it: NO ACTION, the default, is not spelled out.
    const actions = [`ON UPDATE ${parts[0]!.on_update}`, `ON DELETE ${parts[0]!.on_delete}`].filter(
      (a) => !a.endsWith('NO ACTION'),
    );
    found.push({
      kind: 'foreign key',
      name: null,
      definition: [`${list(parts.map((r) => r.from))} REFERENCES ${target}`, ...actions].join(' '),
    });
  }
  for (const check of checkExpressions(sql)) found.push({ kind: 'check', name: null, definition: check });
  return found;
}

/** `(expression)` of every CHECK in a CREATE TABLE, column and table constraints alike. */
function checkExpressions(sql: string): string[] {
  const skeleton = mask(sql);
  const body = parenthesized(skeleton, skeleton.indexOf('('));
  if (!body) return [];
  const checks: string[] = [];
  const keyword = /\bCHECK\s*\(/gi;
  keyword.lastIndex = body.open + 1;
  for (let match = keyword.exec(skeleton); match && match.index < body.close; match = keyword.exec(skeleton)) {
    const open = match.index + match[0].length - 1;
    if (depthAt(skeleton, body.open + 1, match.index) !== 0) continue;
    const group = parenthesized(skeleton, open);
    if (group) checks.push(normalizeSql(sql.slice(group.open, group.close + 1)));
  }
  return checks;
}

/** An index as CREATE [UNIQUE] INDEX name ON table (columns) [WHERE predicate] wrote it. */
function indexOf(name: string, table: string, sql: string): Index {
  const skeleton = mask(sql);
  const group = parenthesized(skeleton, skeleton.indexOf('('));
  const columns = group ? splitTopLevel(sql, skeleton, group.open + 1, group.close).map(normalizeSql) : [];
  const predicate = group ? /^\s*WHERE\s+([\s\S]+)$/i.exec(sql.slice(group.close + 1))?.[1] : undefined;
  return {
    name,
    table,
    unique: /^\s*CREATE\s+UNIQUE\b/i.test(sql),
    method: null,
    columns,
    predicate: predicate ? normalizeSql(predicate) : null,
  };
}

/**
 * The text with string literals, quoted identifiers and comments replaced by filler of the same
 * length, so parentheses, commas and keywords can be found by position without being fooled by them.
 */
function mask(sql: string): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    let end = i + 1;
    if (c === "'" || c === '"' || c === '`') end = closingQuote(sql, i);
    else if (c === '[') end = sql.indexOf(']', i) < 0 ? sql.length : sql.indexOf(']', i) + 1;
    else if (sql.startsWith('--', i)) end = sql.indexOf('\n', i) < 0 ? sql.length : sql.indexOf('\n', i);
    else if (sql.startsWith('/*', i)) end = sql.indexOf('*/', i + 2) < 0 ? sql.length : sql.indexOf('*/', i + 2) + 2;
    out += end === i + 1 ? c : '_'.repeat(end - i);
    i = end;
  }
  return out;
}

/** The balanced parentheses opening at `open` in a masked text. */
function parenthesized(skeleton: string, open: number): { open: number; close: number } | null {
  if (open < 0 || skeleton[open] !== '(') return null;
  let depth = 0;
  for (let i = open; i < skeleton.length; i++) {
    if (skeleton[i] === '(') depth++;
    else if (skeleton[i] === ')' && --depth === 0) return { open, close: i };
  }
  return null;
}

function depthAt(skeleton: string, from: number, to: number): number {
  let depth = 0;
  for (let i = from; i < to; i++) depth += skeleton[i] === '(' ? 1 : skeleton[i] === ')' ? -1 : 0;
  return depth;
}

/** The pieces of sql[from, to) between commas that are not inside parentheses. */
function splitTopLevel(sql: string, skeleton: string, from: number, to: number): string[] {
  const pieces: string[] = [];
  let start = from;
  for (let i = from; i < to; i++) {
    if (skeleton[i] === ',' && depthAt(skeleton, from, i) === 0) {
      pieces.push(sql.slice(start, i));
      start = i + 1;
    }
  }
  pieces.push(sql.slice(start, to));
  return pieces;
}

/**
 * A database file in a new temporary folder (dropping it removes the folder), or the --scratch-url
 * file while it is absent or empty (a 0-byte file is an empty database); it is left as it was found.
 */
export function createSqliteScratch(given: string | null): ScratchResult {
  if (given === null) {
    const folder = mkdtempSync(join(tmpdir(), 'tidemark-scratch-'));
    const file = join(folder, 'scratch.db');
    const drop = async () => rmSync(folder, { recursive: true, force: true });
    return { url: `sqlite:${file}`, description: `sqlite:${file}`, drop, afterwards: 'removed afterwards' };
  }
  const existed = existsSync(given);
  if (existed && statSync(given).size > 0) {
    return {
      unavailable: `the file given with --scratch-url (${given}) is not empty`,
      fix: 'give --scratch-url a file that does not exist yet (or is empty); verify removes or empties it afterwards',
    };
  }
  const drop = async () => (existed ? truncateSync(given, 0) : rmSync(given, { force: true }));
  const afterwards = existed ? 'emptied afterwards' : 'removed afterwards';
  return { url: `sqlite:${given}`, description: `sqlite:${given}`, drop, afterwards };
}
