// `tidemark sql`: the script migrate or rollback would run now, for a person to review and run in
// the database's own shell (psql, sqlite3). Planned as migrate and rollback plan, reading only the
// ledger; the assembly is pure: every statement comes from the driver.
import { stepRecords, type Driver, type ShellSql, type StepSource } from './drivers/driver.js';
import { fileChecksums, type Migration } from './files.js';
import type { Script } from './script.js';
import { backfillChange, planMigration } from './migrate/pending.js';
import { currentVersion, planRollback, versionAfterRollback, writesLedger, type LedgerRow } from './plan.js';
import { rollbackScripts, undoneRollbackChecksums } from './rollback/scripts.js';
import type { Session } from './run/session.js';
import type { Version, VersionInput } from './version.js';

/** `tidemark sql`: migrate's script up to `target`, or with `rollback` the rollback script for steps, to or all. */
export interface SqlOptions {
  target?: VersionInput;
  rollback?: boolean;
  steps?: number;
  to?: VersionInput;
  all?: boolean;
  allowOutOfOrder?: boolean;
  useStored?: boolean;
}

/** The sql command's options once `target` and `to` are exact versions. */
export type CheckedSqlOptions = Omit<SqlOptions, 'target' | 'to'> & { target?: Version; to?: Version };

export interface ShellScriptPlan {
  command: 'migrate' | 'rollback';
  /** The database as it is safe to print: never with a password. */
  database: string;
  from: Version;
  to: Version;
  generatedAt: Date;
  /** What tidemark runs before the first step: the ledger's DDL, checksums for adopted legacy rows. */
  setup: string[];
  /** The forward files to apply (migrate) or the rollbacks to run (rollback), in order. */
  steps: StepSource[];
}

/** Plans like migrate (or rollback) on the database as it is now and returns the script; see {@link Migrator.sql}. */
export async function sql(session: Session, options: CheckedSqlOptions): Promise<string> {
  const { migrations, target } = session.migrations();
  return session.withDriver(target, { create: false, lock: false }, async ({ driver }) => {
    const ledger = await driver.readLedger();
    const base = { database: driver.description, from: currentVersion(ledger), generatedAt: new Date() };
    const planned = { driver, migrations, ledger };
    const steps = options.rollback
      ? await rollbackPlan(session, planned, options)
      : await migratePlan(session, planned, options);
    const plan: ShellScriptPlan = { ...base, ...steps };
    for (const { script } of plan.steps)
      for (const line of script.skipped) session.emit({ type: 'notice', message: line });
    return shellScript(driver.shell, plan);
  });
}

type Planned = { driver: Driver; migrations: Migration[]; ledger: LedgerRow[] };
type PlannedSteps = Pick<ShellScriptPlan, 'command' | 'to' | 'setup' | 'steps'>;

async function rollbackPlan(
  session: Session,
  { driver, migrations, ledger }: Planned,
  options: CheckedSqlOptions,
): Promise<PlannedSteps> {
  const steps = planRollback(migrations, ledger, options, undoneRollbackChecksums(migrations, ledger, options));
  for (const step of steps) if (step.note) session.emit({ type: step.note.level, message: step.note.message });
  const scripts = await rollbackScripts(driver, steps, migrations);
  const setup = steps.length > 0 ? await driver.ledgerDdl() : [];
  const sources = scripts.map((script) => ({ script, rollback: null, outOfOrder: false }));
  return { command: 'rollback', to: versionAfterRollback(ledger, steps), setup, steps: sources };
}

async function migratePlan(
  session: Session,
  { driver, migrations, ledger }: Planned,
  options: CheckedSqlOptions,
): Promise<PlannedSteps> {
  const checksums = fileChecksums(migrations);
  const migration = await planMigration(session, driver.dialect, { migrations, checksums, ledger }, options);
  const backfill = migration.backfill.map((b) =>
    driver.shell.updateRow(b.migration.version, backfillChange(b, checksums)),
  );
  const setup = writesLedger(migration) ? [...(await driver.ledgerDdl()), ...backfill] : [];
  return { command: 'migrate', to: migration.version, setup, steps: migration.runs };
}

export function shellScript(shell: ShellSql, plan: ShellScriptPlan): string {
  const action = plan.command === 'migrate' ? 'up' : 'down';
  const sections = [header(shell, plan)];
  if (plan.setup.length > 0)
    sections.push(
      ['-- the ledger, prepared as tidemark does before its first write', ...plan.setup.map((s) => `${s};`)].join('\n'),
    );
  for (const source of plan.steps) sections.push(step(shell, action, source).join('\n'));
  return `${sections.join('\n\n')}\n`;
}

function header(shell: ShellSql, plan: ShellScriptPlan): string {
  const count = plan.steps.length;
  const lines = [
    shell.stopOnError,
    `-- tidemark sql: ${plan.command} ${plan.database} from version ${plan.from} to version ${plan.to}`,
    `-- generated ${plan.generatedAt.toISOString().replace(/\.\d+Z$/, 'Z')}`,
  ];
  const migrations = count === 1 ? '1 migration' : `${count} migrations`;
  if (count === 0) lines.push(`-- nothing to ${plan.command === 'migrate' ? 'apply' : 'roll back'}`);
  else
    lines.push(
      plan.command === 'migrate' ? `-- ${migrations} to apply, in order` : `-- ${migrations} to undo, newest first`,
    );
  return lines.join('\n');
}

/**
 * One file with the ledger statements that record it, as the migrator runs them: inside its own
 * transaction, or (no-transaction) guarded by a dirty row that stays if the script stops halfway.
 */
function step(shell: ShellSql, action: 'up' | 'down', source: StepSource): string[] {
  const { script } = source;
  const { file } = script;
  const { entry, history } = stepRecords(
    { action, ...source, ownTransaction: !script.noTransaction, recheck: false },
    null,
  );
  const heading = `-- ${file.versionText} ${file.name} (${file.path})`;
  const body = runnableText(script);
  const recordHistory = `${shell.appendHistory(history)};`;
  if (!script.noTransaction) {
    const record = action === 'up' ? shell.insertRow(entry) : shell.deleteRow(entry.version);
    return [heading, `${shell.begin};`, ...body, `${record};`, recordHistory, `${shell.commit};`];
  }
  const { version } = entry;
  const [markDirty, finish] =
    action === 'up'
      ? [shell.insertRow({ ...entry, dirty: true }), shell.updateRow(version, { dirty: false, dirtyAction: null })]
      : [shell.updateRow(version, { dirty: true, dirtyAction: 'down' }), shell.deleteRow(version)];
  return [
    heading,
    '-- no-transaction: runs outside a transaction; if it stops halfway, the row stays dirty',
    `${markDirty};`,
    ...body,
    `${finish};`,
    recordHistory,
  ];
}

/**
 * The text tidemark runs, closed with a semicolon if its last statement has none, so the next statement stands alone.
 */
function runnableText(script: Script): string[] {
  const text = script.text.trimEnd();
  if (text === '') return [];
  const last = script.statements.at(-1);
  const open = last !== undefined && script.text[last.offset + last.text.length] !== ';';
  return open ? [text, ';'] : [text];
}
