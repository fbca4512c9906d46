// Lock-hazard and portability rules for SQLite, on the statements' words as SQLite's own lexer reads
// them. Pure: statements and the SQLite version in, findings out.
import { tokenizeSqlite } from '../sql/sqlite-lexer.js';
import type { Statement } from '../sql/statements.js';
import type { RawFinding } from './rules.js';

export interface SqliteLintContext {
  noTransaction: boolean;
  /** The SQLite library that will run the file (`3.45.0`); null when unknown (no sqlite3 package). */
  sqliteVersion: string | null;
}

/** ALTER TABLE forms and the SQLite release that brought them. */
const ALTER_SINCE = { renameColumn: '3.25.0', dropColumn: '3.35.0' } as const;

interface Words {
  words: string[];
  /** Identifiers with their quotes removed, lower-cased: how SQLite compares names. */
  names: string[];
}

type Add = (rule: RawFinding['rule'], message: string) => void;

const IN_USE = 'which the running release may still use';

export function lintSqlite(statements: Statement[], context: SqliteLintContext): RawFinding[] {
  const findings: RawFinding[] = [];
  const read = statements.map((st) => wordsOf(st.text));
  const renames = read.filter(({ words }) => isAlter(words) && words[3] === 'RENAME' && words[4] === 'TO');
  const renamedTo = new Set(renames.map((r) => r.names[5]!));
  const created = new Set<string>();
  statements.forEach((statement, index) => {
    const add: Add = (rule, message) => findings.push({ rule, message, offset: statement.offset, statement: index });
    const { words, names } = read[index]!;
    const createdTable = tableNameAfterCreate(words, names);
    if (createdTable) created.add(createdTable);
    else if (words[0] === 'PRAGMA' && names[1] === 'foreign_keys' && !context.noTransaction) {
      add('sqlite-foreign-keys-pragma', 'PRAGMA foreign_keys does nothing inside a transaction, as this file runs in');
    } else if (isAlter(words) && !created.has(names[2]!)) lintAlter(words, names, context, add);
    else if (words[0] === 'DROP' && words[1] === 'TABLE') {
      const table = words[2] === 'IF' ? names[4]! : names[2]!;
      if (!created.has(table) && !renamedTo.has(table)) add('drop', `drops table "${table}", ${IN_USE}`);
    }
  });
  return findings;
}

function lintAlter(words: string[], names: string[], context: SqliteLintContext, add: Add): void {
  const table = names[2]!;
  const action = words[3];
  const column = `"${table}.${words[4] === 'COLUMN' ? names[5] : names[4]}"`;
  const version = context.sqliteVersion ? `SQLite ${context.sqliteVersion}` : 'SQLite';
  const unsupported = (what: string) => add('sqlite-alter-unsupported', `${version} cannot ${what}`);
  if (action === 'RENAME' && words[4] === 'TO') {
    add('rename', `renames table "${table}", ${IN_USE}`);
  } else if (action === 'RENAME') {
    const since = ALTER_SINCE.renameColumn;
    if (older(context.sqliteVersion, since)) unsupported(`RENAME COLUMN (since ${since})`);
    else add('rename', `renames column ${column}, ${IN_USE}`);
  } else if (action === 'DROP') {
    const since = ALTER_SINCE.dropColumn;
    if (older(context.sqliteVersion, since)) unsupported(`DROP COLUMN (since ${since})`);
    else add('drop', `drops column ${column}, ${IN_USE}`);
  } else if (action === 'ADD' && words[4] !== 'CONSTRAINT') {
    const problem = addColumnProblem(words);
    if (problem) unsupported(`ADD COLUMN ${problem}`);
  } else {
    const form = words.slice(3, 5).join(' ');
    unsupported(`ALTER TABLE ... ${form}: it only renames a table or column, adds or drops a column`);
  }
}

/** What SQLite's ADD COLUMN refuses: a key, UNIQUE, NOT NULL without a default, a non-constant default. */
function addColumnProblem(words: string[]): string | null {
  const has = (word: string) => words.includes(word);
  if (has('PRIMARY')) return 'with PRIMARY KEY';
  if (has('UNIQUE')) return 'with UNIQUE';
  if (has('NOT') && words[words.indexOf('NOT') + 1] === 'NULL' && !has('DEFAULT')) return 'NOT NULL without a default';
  const fallback = has('DEFAULT') ? (words[words.indexOf('DEFAULT') + 1] ?? '') : '';
  const nonConstant = fallback === '(' || /^CURRENT_(TIME|DATE|TIMESTAMP)$/.test(fallback);
  return nonConstant ? `with the non-constant default ${fallback}` : null;
}

function isAlter(words: string[]): boolean {
  return words[0] === 'ALTER' && words[1] === 'TABLE';
}

/** `CREATE [TEMP] TABLE [IF NOT EXISTS] name`: the name, or null for other CREATE statements. */
function tableNameAfterCreate(words: string[], names: string[]): string | null {
  let i = /^TEMP(ORARY)?$/.test(words[1] ?? '') ? 2 : 1;
  if (words[0] !== 'CREATE' || words[i] !== 'TABLE') return null;
  i += words[i + 1] === 'IF' ? 4 : 1;
  return names[i] ?? null;
}

/** The statement's tokens, comments left out; `main.t` is one name. */
function wordsOf(text: string): Words {
  const words: string[] = [];
  const names: string[] = [];
  const tokens = tokenizeSqlite(text).filter((t) => t.kind !== 'comment' && t.kind !== 'meta');
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    let raw = text.slice(token.start, token.end);
    // A schema-qualified name: keep the table's part.
    while (tokens[i + 1] && text.slice(tokens[i + 1]!.start, tokens[i + 1]!.end) === '.' && tokens[i + 2]) {
      raw = text.slice(tokens[i + 2]!.start, tokens[i + 2]!.end);
      i += 2;
    }
    words.push(raw.toUpperCase());
    names.push(unquote(raw).toLowerCase());
  }
  return { words, names };
}

function unquote(name: string): string {
  const open = name[0];
  if (open === '"' || open === '`') return name.slice(1, -1).replaceAll(`${open}${open}`, open);
  if (open === '[') return name.slice(1, -1);
  return name;
}

/** Whether `version` is known and older than `since` (dotted numbers). */
function older(version: string | null, since: string): boolean {
  if (!version) return false;
  const [a, b] = [version, since].map((v) => v.split('.').map(Number));
  for (let i = 0; i < 3; i++) if ((a![i] ?? 0) !== (b![i] ?? 0)) return (a![i] ?? 0) < (b![i] ?? 0);
  return false;
}
