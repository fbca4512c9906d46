// `tidemark sql`: the script migrate or rollback would run now, for a person to review and run in
// the database's own shell (psql, sqlite3). Pure assembly: every statement comes from the driver.
import { stepRecords, type ShellSql, type StepSource } from './drivers/driver.js';
import type { Script } from './files.js';
import type { Version } from './version.js';

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
