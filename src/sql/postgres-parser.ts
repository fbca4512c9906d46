// PostgreSQL statements from PostgreSQL's own parser: libpg-query is the server's grammar compiled
// to WASM, so statement boundaries (BEGIN ATOMIC bodies, nested comments, dollar quotes) and each
// statement's kind come from the grammar itself, not from keyword sightings. It costs ~50 ms to
// load, so it is imported only when a file is about to be run, never on a no-op migrate or --help.
import { statementAt, type Statement, type StatementKind } from './statements.js';
import { Locator, type Token } from './tokens.js';

type LibPgQuery = typeof import('libpg-query');
let loaded: Promise<LibPgQuery> | null = null;

function libPgQuery(): Promise<LibPgQuery> {
  loaded ??= import('libpg-query').then(async (module) => {
    await module.loadModule();
    return module;
  });
  return loaded;
}

interface RawStatement {
  stmt: Record<string, Record<string, unknown>>;
  stmt_location?: number;
  stmt_len?: number;
}

/** One statement of the parser's tree: the node's type (`AlterTableStmt`, ...) and its fields. */
export interface PostgresTree {
  statement: Statement;
  type: string;
  node: Record<string, unknown>;
}

/**
 * The statements of `text` as the server will read them (with standard_conforming_strings = on),
 * or null when the parser rejects the text: the server will then reject it too (it parses the whole
 * query before running any of it), unless it is of another version, and the lexer's reading stands.
 * `tokens` are the lexer's tokens of the same text: a statement starts at its first token after
 * the comments that the parser counts into it.
 */
export async function parsePostgres(text: string, tokens: Token[]): Promise<Statement[] | null> {
  return (await parsePostgresTrees(text, tokens))?.map((tree) => tree.statement) ?? null;
}

/**
 * Trees already parsed, by text: a pending file is parsed to run it and again to lint it. Bounded, as a
 * long-lived process (an app that migrates at start-up through the API) may read many files.
 */
const parsedTrees = new Map<string, PostgresTree[] | null>();
const PARSED_TREES_KEPT = 1000;

/** As parsePostgres, with each statement's syntax tree (node locations inside it count UTF-8 bytes). */
export async function parsePostgresTrees(text: string, tokens: Token[]): Promise<PostgresTree[] | null> {
  if (parsedTrees.has(text)) return parsedTrees.get(text)!;
  const trees = parseTrees((await libPgQuery()).parseSync, text, tokens);
  if (parsedTrees.size >= PARSED_TREES_KEPT) parsedTrees.clear();
  parsedTrees.set(text, trees);
  return trees;
}

function parseTrees(parseSync: LibPgQuery['parseSync'], text: string, tokens: Token[]): PostgresTree[] | null {
  let raw: RawStatement[];
  try {
    raw = (parseSync(text) as unknown as { stmts?: RawStatement[] }).stmts ?? [];
  } catch {
    return null;
  }
  const toChars = byteToCharOffsets(text);
  const locator = new Locator(text);
  const trees: PostgresTree[] = [];
  for (const { stmt, stmt_location: location = 0, stmt_len: length = 0 } of raw) {
    const from = toChars(location);
    const end = length > 0 ? toChars(location + length) : text.length;
    const first = firstTokenAt(tokens, from);
    if (first === undefined || first >= end) continue;
    const [type, node] = Object.entries(stmt)[0] ?? ['', {}];
    trees.push({ statement: statementAt(text, locator, first, end, kindOf(stmt)), type, node });
  }
  return trees;
}

/** The parser counts in UTF-8 bytes; JavaScript strings in UTF-16 units. Offsets must be asked in ascending order. */
function byteToCharOffsets(text: string): (byte: number) => number {
  const bytes = Buffer.from(text, 'utf8');
  let byteAt = 0;
  let charAt = 0;
  return (byte) => {
    charAt += bytes.toString('utf8', byteAt, byte).length;
    byteAt = byte;
    return charAt;
  };
}

/** The start of the first token at or after `from` that is neither a comment nor a (blanked) meta-command. */
function firstTokenAt(tokens: Token[], from: number): number | undefined {
  let low = 0;
  let high = tokens.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (tokens[mid]!.start < from) low = mid + 1;
    else high = mid;
  }
  // A loop, not slice().find(): a copy of the rest per statement made a 20,000-statement file quadratic.
  for (let i = low; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.kind !== 'comment' && token.kind !== 'meta') return token.start;
  }
  return undefined;
}

const TRANSACTION_KINDS: Record<string, StatementKind> = {
  TRANS_STMT_BEGIN: 'transaction-start',
  TRANS_STMT_START: 'transaction-start',
  TRANS_STMT_COMMIT: 'transaction-end',
  TRANS_STMT_ROLLBACK: 'transaction-end',
  TRANS_STMT_PREPARE: 'transaction-end',
  TRANS_STMT_COMMIT_PREPARED: 'transaction-end',
  TRANS_STMT_ROLLBACK_PREPARED: 'transaction-end',
  TRANS_STMT_SAVEPOINT: 'savepoint',
  TRANS_STMT_RELEASE: 'savepoint',
  TRANS_STMT_ROLLBACK_TO: 'savepoint',
};

/** Statements the server refuses inside a transaction block ("cannot run inside a transaction block"). */
const NO_TRANSACTION_NODES = new Set([
  'CreatedbStmt',
  'DropdbStmt',
  'AlterSystemStmt',
  'CreateTableSpaceStmt',
  'DropTableSpaceStmt',
]);

function kindOf(stmt: RawStatement['stmt']): StatementKind {
  const [type, node] = Object.entries(stmt)[0] ?? ['', {}];
  if (type === 'TransactionStmt') return TRANSACTION_KINDS[String(node.kind)] ?? 'other';
  if (type === 'CopyStmt') return node.is_from && !node.filename ? 'copy-from-stdin' : 'other';
  if (type === 'VariableSetStmt' && node.name === 'standard_conforming_strings' && node.kind !== 'VAR_RESET') {
    return 'string-syntax';
  }
  if (NO_TRANSACTION_NODES.has(type)) return 'no-transaction';
  if ((type === 'IndexStmt' || type === 'DropStmt') && node.concurrent) return 'no-transaction';
  if (type === 'VacuumStmt' && node.is_vacuumcmd) return 'no-transaction';
  const concurrently = JSON.stringify(node.params ?? []).includes('"defname":"concurrently"');
  if (type === 'ReindexStmt' && concurrently) return 'no-transaction';
  return 'other';
}
