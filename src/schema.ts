// The dialect-free part of schema snapshots: what a snapshot holds, how it is normalized, compared
// and printed. The catalog queries that fill one live in the drivers (drivers/*-schema.ts).
import { createHash } from 'node:crypto';

/** A database schema as tidemark compares it: no OIDs, no data, tidemark's own tables left out. */
export interface Snapshot {
  tables: Table[];
  indexes: Index[];
  views: View[];
  triggers: Trigger[];
  /** PostgreSQL enum types. */
  types: EnumType[];
  sequences: Sequence[];
  functions: Routine[];
}

export interface Table {
  name: string;
  /** In the table's own order. */
  columns: Column[];
  constraints: Constraint[];
}

export interface Column {
  name: string;
  type: string;
  nullable: boolean;
  default: string | null;
}

export type ConstraintKind = 'primary key' | 'unique' | 'check' | 'foreign key' | 'exclusion';

export interface Constraint {
  kind: ConstraintKind;
  /** null where the database keeps no name (SQLite): such a constraint is known by its definition. */
  name: string | null;
  /** What follows the kind: `(user_id) REFERENCES users(id) ON DELETE CASCADE`, `((price > 0))`. */
  definition: string;
}

/** An index that is not just the implementation of a primary key or unique constraint. */
export interface Index {
  name: string;
  table: string;
  unique: boolean;
  /** btree, gin, ...; null where the database has one kind only (SQLite). */
  method: string | null;
  columns: string[];
  /** The WHERE of a partial index. */
  predicate: string | null;
}

export interface View {
  name: string;
  materialized: boolean;
  definition: string;
}

export interface Trigger {
  name: string;
  table: string;
  /** Everything after `CREATE TRIGGER name`: timing, event, table and action. */
  definition: string;
}

export interface EnumType {
  name: string;
  labels: string[];
}

export interface Sequence {
  name: string;
  type: string;
  start: string;
  increment: string;
  cycle: boolean;
  /** `table.column` of a serial or identity column; the sequence goes when that table goes. */
  ownedBy: string | null;
}

export interface Routine {
  kind: 'function' | 'procedure' | 'aggregate';
  /** name(argument types) */
  signature: string;
  returns: string | null;
  language: string;
  /** A fingerprint of the body: a body edited by hand shows up without printing it. */
  body: string;
}

export const EMPTY_SNAPSHOT: Snapshot = {
  tables: [],
  indexes: [],
  views: [],
  triggers: [],
  types: [],
  sequences: [],
  functions: [],
};

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const sortedBy = <T>(items: T[], key: (item: T) => string) => [...items].sort((a, b) => byText(key(a), key(b)));
const CONSTRAINT_ORDER: ConstraintKind[] = ['primary key', 'unique', 'check', 'foreign key', 'exclusion'];

/**
 * Puts every list in a fixed order, so the same schema built twice is the same snapshot. Columns keep the table's
 * order.
 */
export function normalizeSnapshot(s: Snapshot): Snapshot {
  return {
    tables: sortedBy(s.tables, (t) => t.name).map((t) => ({
      ...t,
      constraints: sortedBy(
        t.constraints,
        (c) => `${CONSTRAINT_ORDER.indexOf(c.kind)} ${c.name ?? ''} ${c.definition}`,
      ),
    })),
    indexes: sortedBy(s.indexes, (i) => i.name),
    views: sortedBy(s.views, (v) => v.name),
    triggers: sortedBy(s.triggers, (t) => `${t.table}.${t.name}`),
    types: sortedBy(s.types, (t) => t.name),
    sequences: sortedBy(s.sequences, (q) => q.name),
    functions: sortedBy(s.functions, (f) => f.signature),
  };
}

/**
 * SQL text as stored by the database, made comparable: comments dropped, whitespace collapsed,
 * no space inside parentheses or before commas, and needless double quotes around lower-case
 * identifiers removed (SQLite adds them when a table is renamed). String literals stay as written.
 */
export function normalizeSql(text: string): string {
  let out = '';
  let space = false;
  let i = 0;
  const emit = (piece: string) => {
    const tight = /^[),]/.test(piece) || out.endsWith('(') || out === '';
    out += (space && !tight ? ' ' : '') + piece;
    space = false;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      space = true;
      i++;
    } else if (text.startsWith('--', i)) {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
      space = true;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
      space = true;
    } else if (c === "'" || c === '"' || c === '`') {
      const end = closingQuote(text, i);
      const quoted = text.slice(i, end);
      emit(c === '"' && /^"[a-z_][a-z0-9_]*"$/.test(quoted) ? quoted.slice(1, -1) : quoted);
      i = end;
    } else {
      emit(c);
      i++;
    }
  }
  return out;
}

/** Offset just past the quote that closes the one at `start` (a doubled quote is an escaped one). */
export function closingQuote(text: string, start: number): number {
  const quote = text[start]!;
  let i = start + 1;
  while (i < text.length) {
    if (text[i] === quote) {
      if (text[i + 1] !== quote) return i + 1;
      i++;
    }
    i++;
  }
  return text.length;
}

/** A short, stable fingerprint of a text, e.g. a function body. */
function indexPhrase(i: Index): string {
  const unique = i.unique ? 'unique ' : '';
  const method = i.method ? `${i.method} ` : '';
  const where = i.predicate ? ` where ${i.predicate}` : '';
  return `on ${i.table} ${unique}${method}(${i.columns.join(', ')})${where}`;
}

export function fingerprint(text: string): string {
  return createHash('sha256').update(normalizeSql(text)).digest('hex').slice(0, 12);
}

export type ObjectKind =
  | 'table'
  | 'column'
  | ConstraintKind
  | 'index'
  | 'view'
  | 'materialized view'
  | 'trigger'
  | 'type'
  | 'sequence'
  | Routine['kind'];

/** One comparable object of a snapshot, flattened. */
interface SchemaObject {
  kind: ObjectKind;
  /** How differences name it: `trades.user_id`, `trades_user_id_idx`, `exchange_type`. */
  id: string;
  /** A column's or constraint's name inside its table's block of the schema text ('' for an unnamed constraint). */
  local: string;
  /** The table it belongs to: it goes when the table goes, so its difference is not repeated. */
  table: string | null;
  /** Identity: the name, or for an unnamed constraint the table and what it says. */
  key: string;
  /** Its properties as phrases (`text`, `not null`, `default now()`), compared position by position. */
  phrases: string[];
}

/** Phrases that state the default case: spelled out in a `~` difference, left out elsewhere. */
const UNSTATED = new Set(['nullable', 'no default']);

function objectsOf(snapshot: Snapshot): SchemaObject[] {
  const s = normalizeSnapshot(snapshot);
  const top = (kind: ObjectKind, name: string, phrases: string[], table: string | null = null): SchemaObject => ({
    kind,
    id: name,
    local: name,
    table,
    key: name,
    phrases,
  });
  return [
    ...s.types.map((t) => top('type', t.name, [`enum (${t.labels.map(quoteLiteral).join(', ')})`])),
    ...s.sequences.map((q) =>
      top(
        'sequence',
        q.name,
        [
          `${q.type} start ${q.start} increment ` +
            `${q.increment}${q.cycle ? ' cycle' : ''}${q.ownedBy ? ` owned by ${q.ownedBy}` : ''}`,
        ],
        q.ownedBy?.replace(/\.[^.]*$/, '') ?? null,
      ),
    ),
    ...s.tables.flatMap((t) => [
      top('table', t.name, []),
      ...t.columns.map((c) => ({
        kind: 'column' as const,
        id: `${t.name}.${c.name}`,
        local: c.name,
        table: t.name,
        key: `${t.name}.${c.name}`,
        phrases: [
          c.type,
          c.nullable ? 'nullable' : 'not null',
          c.default === null ? 'no default' : `default ${c.default}`,
        ],
      })),
      ...t.constraints.map((c) => ({
        kind: c.kind,
        id: c.name ? `${t.name}.${c.name}` : t.name,
        local: c.name ?? '',
        table: t.name,
        key: c.name ? `${t.name}.${c.name}` : `${t.name} ${c.definition}`,
        phrases: [c.definition],
      })),
    ]),
    ...s.indexes.map((i) => top('index', i.name, [indexPhrase(i)], i.table)),
    ...s.views.map((v) => top(v.materialized ? 'materialized view' : 'view', v.name, [v.definition])),
    ...s.functions.map((f) =>
      top(f.kind, f.signature, [`${f.returns ? `returns ${f.returns} ` : ''}language ${f.language} body ${f.body}`]),
    ),
    ...s.triggers.map((t) => top('trigger', `${t.table}.${t.name}`, [t.definition], t.table)),
  ];
}

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function shown(object: SchemaObject): string {
  return object.phrases.filter((p) => !UNSTATED.has(p)).join(' ');
}

/** One difference between an expected schema and an actual one. */
export interface Difference {
  /** added: only in the actual schema; removed: only in the expected one; changed: in both, differently. */
  change: 'added' | 'removed' | 'changed';
  kind: ObjectKind;
  name: string;
  /** The table it belongs to, or its own name. */
  table: string;
  /** The expected object's properties; null when it should not exist. */
  expected: string | null;
  /** The actual object's properties; null when it is missing. */
  actual: string | null;
  /** `+ index trades_user_idx: on trades (user_id)`, `~ column trades.user_id: nullable → not null`. */
  line: string;
}

/**
 * What differs from `expected` in `actual`, object by object. Objects of a table that is itself
 * added or removed are not listed again.
 */
export function diffSnapshots(expected: Snapshot, actual: Snapshot): Difference[] {
  const before = objectsOf(expected);
  const after = objectsOf(actual);
  const keyOf = (o: SchemaObject) => `${o.kind} ${o.key}`;
  const beforeKeys = new Map(before.map((o) => [keyOf(o), o]));
  const afterKeys = new Map(after.map((o) => [keyOf(o), o]));
  const vanished = new Set(before.filter((o) => o.kind === 'table' && !afterKeys.has(keyOf(o))).map((o) => o.id));
  const appeared = new Set(after.filter((o) => o.kind === 'table' && !beforeKeys.has(keyOf(o))).map((o) => o.id));
  const differences: Difference[] = [];
  for (const old of before) {
    const now = afterKeys.get(keyOf(old));
    if (!now) {
      if (old.kind === 'table' || !vanished.has(old.table ?? '')) differences.push(difference('removed', old, null));
    } else if (old.phrases.join('\n') !== now.phrases.join('\n')) {
      differences.push(difference('changed', old, now));
    }
  }
  for (const now of after) {
    if (beforeKeys.has(keyOf(now))) continue;
    if (now.kind === 'table' || !appeared.has(now.table ?? '')) differences.push(difference('added', null, now));
  }
  return differences.sort(byPlaceInSchema);
}

const KIND_ORDER: ObjectKind[] = [
  'type',
  'sequence',
  'table',
  'column',
  ...CONSTRAINT_ORDER,
  'index',
  'view',
  'materialized view',
  'function',
  'procedure',
  'aggregate',
  'trigger',
];
const inTableBlock = (kind: ObjectKind) =>
  kind === 'table' || kind === 'column' || CONSTRAINT_ORDER.includes(kind as ConstraintKind);

/** The order of the schema text: a table's columns and constraints together, then indexes, views, ... */
function byPlaceInSchema(a: Difference, b: Difference): number {
  const place = (d: Difference): [number, string, number, string] => {
    const rank = KIND_ORDER.indexOf(d.kind);
    return inTableBlock(d.kind) ? [KIND_ORDER.indexOf('table'), d.table, rank, d.name] : [rank, d.name, rank, d.name];
  };
  const [x, y] = [place(a), place(b)];
  return x[0] - y[0] || byText(x[1], y[1]) || x[2] - y[2] || byText(x[3], y[3]);
}

function difference(
  change: Difference['change'],
  expected: SchemaObject | null,
  actual: SchemaObject | null,
): Difference {
  const object = (actual ?? expected)!;
  const head = `${object.kind} ${object.id}`;
  let line: string;
  if (change === 'changed') {
    const changes = expected!.phrases.map((p, i) => [p, actual!.phrases[i]!]).filter(([a, b]) => a !== b);
    line = `~ ${head}: ${changes.map(([a, b]) => `${a} → ${b}`).join('; ')}`;
  } else {
    const properties = shown(object);
    line = `${change === 'added' ? '+' : '-'} ${head}${properties ? `: ${properties}` : ''}`;
  }
  return {
    change,
    kind: object.kind,
    name: object.id,
    table: object.table ?? object.id,
    expected: expected ? expected.phrases.join(' ') : null,
    actual: actual ? actual.phrases.join(' ') : null,
    line,
  };
}

/**
 * The schema as readable, stable text for review in git: enum types and sequences, then each table
 * with its columns and constraints, then indexes, views, functions and triggers, one per line.
 */
export function formatSnapshot(snapshot: Snapshot): string {
  const lines: string[] = [];
  let inTable = false;
  for (const o of objectsOf(snapshot)) {
    const properties = shown(o);
    if (o.kind === 'table') {
      lines.push('', `table ${o.id}`);
      inTable = true;
    } else if (inTableBlock(o.kind)) {
      lines.push(`  ${[o.kind, o.local, properties].filter(Boolean).join(' ')}`);
    } else {
      if (inTable) lines.push('');
      inTable = false;
      lines.push(`${o.kind} ${o.id}${properties ? ` ${properties}` : ''}`);
    }
  }
  const text = lines.join('\n').trim();
  return text === '' ? '(empty schema)' : text;
}
