// Lock-hazard rules on PostgreSQL's own syntax tree (libpg-query's JSON). Pure: the trees come in,
// findings go out. A table created earlier in the same file is new: nothing else can be using it yet,
// so changes to it are not hazards.
import type { PostgresTree } from '../sql/postgres-parser.js';
import type { RawFinding } from './rules.js';

type Node = Record<string, unknown>;

export interface PostgresLintContext {
  noTransaction: boolean;
  /** migrate sets lock_timeout itself (--pg-lock-timeout): a file need not. */
  lockTimeoutConfigured: boolean;
}

/** Functions whose value differs per row: as a default of an added column they make PostgreSQL rewrite the table. */
const VOLATILE_FUNCTIONS = new Set([
  'random',
  'gen_random_uuid',
  'uuid_generate_v1',
  'uuid_generate_v1mc',
  'uuid_generate_v4',
  'uuidv4',
  'uuidv7',
  'clock_timestamp',
  'timeofday',
  'nextval',
  'txid_current',
]);

const SERIAL_TYPES = new Set(['serial', 'serial2', 'serial4', 'serial8', 'smallserial', 'bigserial']);

/** New types that a varchar column takes without a rewrite (binary-coercible, no length check). */
const NO_REWRITE_TYPES = new Set(['text', 'varchar']);

/** What the walk has seen so far in the file. */
class FileState {
  readonly created = new Set<string>();
  readonly validated = new Set<string>();
  lockTimeoutSet = false;
  /** The first statement that takes a table lock (ACCESS EXCLUSIVE or close) before any lock_timeout. */
  unguardedLock: { index: number; offset: number; table: string } | null = null;
  schemaChange = false;
  dataChange: { index: number; offset: number; table: string } | null = null;
}

export function lintPostgres(trees: PostgresTree[], text: string, context: PostgresLintContext): RawFinding[] {
  const findings: RawFinding[] = [];
  const state = new FileState();
  const tableRenames = trees.filter((t) => t.type === 'RenameStmt' && t.node.renameType === 'OBJECT_TABLE');
  const renamedTo = new Set(tableRenames.map((t) => String(t.node.newname)));
  const at = byteOffsets(text);
  trees.forEach((tree, index) => {
    const add = (rule: RawFinding['rule'], message: string, location?: unknown) => {
      const offset = typeof location === 'number' ? at(location) : tree.statement.offset;
      findings.push({ rule, message, offset: Math.max(offset, tree.statement.offset), statement: index });
    };
    const lockOn = (table: string) => {
      if (state.lockTimeoutSet) return;
      state.unguardedLock ??= { index, offset: tree.statement.offset, table };
    };
    const isNew = (table: string) => state.created.has(table);
    STATEMENT_RULES[tree.type]?.({ tree, node: tree.node, index, state, renamedTo, add, lockOn, isNew });
  });
  if (state.unguardedLock && !context.lockTimeoutConfigured) {
    const { index, offset, table } = state.unguardedLock;
    const why = `locks "${table}" with no lock_timeout: queued behind a long transaction, it stalls all queries on it`;
    findings.push({ rule: 'lock-timeout', message: why, offset, statement: index });
  }
  if (!context.noTransaction && state.schemaChange && state.dataChange) {
    const { index, offset, table } = state.dataChange;
    const why = `changes rows of "${table}" in a schema change's transaction: its lock is held until every row is done`;
    findings.push({ rule: 'mixed-schema-data', message: why, offset, statement: index });
  }
  return findings;
}

type Add = (rule: RawFinding['rule'], message: string, location?: unknown) => void;

type LockOn = (table: string) => void;

/** One statement of the walk, with what the rules for its type read and write. */
interface Visit {
  tree: PostgresTree;
  node: Node;
  index: number;
  state: FileState;
  /** Tables that a later RENAME gives their name to (a rebuild): dropping the old one is not a hazard. */
  renamedTo: Set<string>;
  add: Add;
  lockOn: LockOn;
  /** Created earlier in this file: nothing else can be using it yet. */
  isNew: (table: string) => boolean;
}

/** The rules for each statement type; a type not listed has none. */
const STATEMENT_RULES: Record<string, (visit: Visit) => void> = {
  CreateStmt: ({ node, state }) => state.created.add(relationName(node.relation)),
  CreateTableAsStmt: ({ node, state }) => state.created.add(relationName((node.into as Node | undefined)?.rel)),
  VariableSetStmt: ({ node, state }) => {
    if (node.name === 'lock_timeout') state.lockTimeoutSet = !isZero(node.args);
  },
  IndexStmt: lintIndex,
  AlterTableStmt: lintAlterTable,
  RenameStmt: lintRename,
  DropStmt: lintDrop,
  VacuumStmt: lintVacuum,
  ClusterStmt: lintCluster,
  LockStmt: lintLock,
  TruncateStmt: lintTruncate,
  UpdateStmt: noteDataChange,
  DeleteStmt: noteDataChange,
  InsertStmt: noteDataChange,
};

function lintIndex({ node, state, add, isNew }: Visit): void {
  const table = relationName(node.relation);
  if (isNew(table) || node.concurrent) return;
  state.schemaChange = true;
  add('index-concurrently', `CREATE INDEX without CONCURRENTLY blocks writes to "${table}" while it builds`);
}

function lintAlterTable({ node, state, add, lockOn, isNew }: Visit): void {
  const table = relationName(node.relation);
  if (node.objtype !== 'OBJECT_TABLE' || isNew(table)) return;
  const commands = list(node.cmds).map((c) => (c as Node).AlterTableCmd as Node);
  for (const command of commands) lintAlterCommand(command, table, state, add);
  if (!commands.every((c) => c.subtype === 'AT_ValidateConstraint')) {
    state.schemaChange = true;
    lockOn(table);
  }
}

function lintRename({ node, state, add, lockOn, isNew }: Visit): void {
  const table = relationName(node.relation);
  if (isNew(table) || !['OBJECT_TABLE', 'OBJECT_COLUMN'].includes(String(node.renameType))) return;
  state.schemaChange = true;
  lockOn(table);
  const column = `column "${table}.${String(node.subname)}"`;
  const what = node.renameType === 'OBJECT_TABLE' ? `table "${table}"` : column;
  add('rename', `renames ${what}, which the running release may still use`);
}

function lintDrop({ node, state, renamedTo, add, lockOn, isNew }: Visit): void {
  if (node.removeType !== 'OBJECT_TABLE') return;
  for (const table of list(node.objects).map(objectName)) {
    if (isNew(table)) continue;
    state.schemaChange = true;
    lockOn(table);
    // A table dropped and then replaced by a renamed one (a rebuild) keeps its name.
    if (!renamedTo.has(table)) add('drop', `drops table "${table}", which the running release may still use`);
  }
}

function lintVacuum({ node, add, lockOn }: Visit): void {
  if (!JSON.stringify(node.options ?? []).includes('"defname":"full"')) return;
  const tables = list(node.rels).map((r) => relationName(((r as Node).VacuumRelation as Node).relation));
  for (const table of tables) lockOn(table);
  const what = tables.length ? `"${tables.join('", "')}"` : 'every table';
  add('vacuum-full', `VACUUM FULL rewrites ${what} under an ACCESS EXCLUSIVE lock`);
}

function lintCluster({ node, add, lockOn, isNew }: Visit): void {
  const table = node.relation ? relationName(node.relation) : 'every clustered table';
  if (isNew(table)) return;
  lockOn(table);
  add('cluster', `CLUSTER rewrites "${table}" under an ACCESS EXCLUSIVE lock`);
}

function lintLock({ node, add, lockOn, isNew }: Visit): void {
  const tables = list(node.relations).map((r) => relationName((r as Node).RangeVar));
  if (tables.every(isNew)) return;
  for (const table of tables) lockOn(table);
  add('lock-table', `LOCK TABLE "${tables.join('", "')}" holds the lock until commit: every query on it waits`);
}

function lintTruncate({ node, lockOn, isNew }: Visit): void {
  for (const relation of list(node.relations)) {
    const table = relationName((relation as Node).RangeVar);
    if (!isNew(table)) lockOn(table);
  }
}

/** UPDATE, DELETE and INSERT ... SELECT change rows in bulk; a plain INSERT of values does not count. */
function noteDataChange({ tree, node, index, state, isNew }: Visit): void {
  const table = relationName(node.relation);
  const select = (node.selectStmt as Node | undefined)?.SelectStmt as Node | undefined;
  const bulk = tree.type !== 'InsertStmt' || Boolean(select?.fromClause);
  if (bulk && !isNew(table)) state.dataChange ??= { index, offset: tree.statement.offset, table };
}

function lintAlterCommand(command: Node, table: string, state: FileState, add: Add): void {
  const def = command.def as Node | undefined;
  switch (command.subtype) {
    case 'AT_AddColumn': {
      const column = def?.ColumnDef as Node;
      const rewrite = addColumnRewrite(column);
      if (!rewrite) return;
      const added = `"${table}.${String(column.colname)}"`;
      const why = `adds ${added} ${rewrite}: the table is rewritten under an ACCESS EXCLUSIVE lock`;
      add('volatile-default', why, column.location);
      return;
    }
    case 'AT_AlterColumnType': {
      const type = (def?.ColumnDef as Node | undefined)?.typeName as Node | undefined;
      if (type && NO_REWRITE_TYPES.has(typeName(type)) && !type.typmods) return;
      const why = `changes the type of "${table}.${String(command.name)}": unless the types are binary-compatible, `;
      add('column-type-rewrite', `${why}the table is rewritten under an ACCESS EXCLUSIVE lock`, type?.location);
      return;
    }
    case 'AT_SetNotNull': {
      if (state.validated.has(table)) return;
      const column = `"${table}.${String(command.name)}"`;
      add('set-not-null', `SET NOT NULL on ${column} scans the table under an ACCESS EXCLUSIVE lock`);
      return;
    }
    case 'AT_AddConstraint': {
      const constraint = def?.Constraint as Node;
      lintAddConstraint(constraint, table, add);
      return;
    }
    case 'AT_ValidateConstraint':
      state.validated.add(table);
      return;
    case 'AT_DropColumn':
      add('drop', `drops column "${table}.${String(command.name)}", which the running release may still use`);
      return;
    default:
  }
}

function lintAddConstraint(constraint: Node, table: string, add: Add): void {
  const name = constraint.conname ? ` "${String(constraint.conname)}"` : '';
  const { contype, location } = constraint;
  if (contype === 'CONSTR_FOREIGN' && !constraint.skip_validation) {
    const why = `adds foreign key${name} to "${table}" without NOT VALID: every row is checked while writes wait`;
    add('constraint-not-valid', why, location);
  } else if (contype === 'CONSTR_CHECK' && constraint.initially_valid) {
    const why = `adds check${name} to "${table}" without NOT VALID: each row is checked under an ACCESS EXCLUSIVE lock`;
    add('constraint-not-valid', why, location);
  } else if ((contype === 'CONSTR_UNIQUE' || contype === 'CONSTR_PRIMARY') && !constraint.indexname) {
    const what = contype === 'CONSTR_UNIQUE' ? 'UNIQUE' : 'PRIMARY KEY';
    add('index-concurrently', `ADD ${what} builds its index on "${table}" under an ACCESS EXCLUSIVE lock`, location);
  }
}

/** Why adding this column rewrites the table, or null when it does not. */
function addColumnRewrite(column: Node): string | null {
  const type = column.typeName as Node | undefined;
  if (type && SERIAL_TYPES.has(typeName(type))) return `as ${typeName(type)} (a volatile nextval default)`;
  for (const item of list(column.constraints)) {
    const constraint = (item as Node).Constraint as Node;
    if (constraint.contype === 'CONSTR_GENERATED') return 'as GENERATED ... STORED';
    if (constraint.contype === 'CONSTR_DEFAULT') {
      const volatile = volatileCall(constraint.raw_expr);
      if (volatile) return `with the volatile default ${volatile}()`;
    }
  }
  return null;
}

/** The name of a volatile function called anywhere in an expression tree. */
function volatileCall(expression: unknown): string | null {
  if (Array.isArray(expression)) return expression.map(volatileCall).find(Boolean) ?? null;
  if (typeof expression !== 'object' || expression === null) return null;
  const call = (expression as Node).FuncCall as Node | undefined;
  if (call) {
    const name = String(((list(call.funcname).at(-1) as Node | undefined)?.String as Node | undefined)?.sval ?? '');
    if (VOLATILE_FUNCTIONS.has(name)) return name;
  }
  return Object.values(expression).map(volatileCall).find(Boolean) ?? null;
}

function typeName(type: Node): string {
  return String(((list(type.names).at(-1) as Node | undefined)?.String as Node | undefined)?.sval ?? '');
}

function relationName(relation: unknown): string {
  const range = relation as Node | undefined;
  return String(range?.relname ?? '');
}

/** A DROP's object: a list of name parts, the last one the table's name. */
function objectName(object: unknown): string {
  const parts = list(((object as Node).List as Node | undefined)?.items);
  return String(((parts.at(-1) as Node | undefined)?.String as Node | undefined)?.sval ?? '');
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** SET lock_timeout = 0 (or '0') turns the limit off. */
function isZero(args: unknown): boolean {
  const constant = (list(args)[0] as Node | undefined)?.A_Const as Node | undefined;
  if (!constant) return false;
  const ival = constant.ival as Node | undefined;
  const sval = (constant.sval as Node | undefined)?.sval;
  return (ival !== undefined && !ival.ival) || sval === '0';
}

/** The parser's locations count UTF-8 bytes; findings count characters. */
function byteOffsets(text: string): (byte: number) => number {
  const bytes = Buffer.from(text, 'utf8');
  return (byte) => bytes.toString('utf8', 0, byte).length;
}
