// What migrate is about to run, read and checked before anything changes: the plan, the loaded
// files, and the warnings and refusals about them (templates, empty files, lint). Shared with `sql`.
import type { RowChange, StepSource } from '../drivers/driver.js';
import { UsageError } from '../errors.js';
import { readSourceText, type Checksums, type Dialect, type Migration } from '../files.js';
import { loadScript } from '../script.js';
import { notInReleaseWarning, planMigrate, type Backfill, type LedgerRow, type MigratePlan } from '../plan.js';
import type { Session } from '../run/session.js';
import { isUntouchedTemplate } from '../templates.js';
import type { Version } from '../version.js';

/** What planning a migration needs of migrate's (or sql's) options. */
export interface PendingOptions {
  target?: Version;
  allowChanged?: boolean;
  allowOutOfOrder?: boolean;
  strict?: boolean;
}

const OUT_OF_ORDER_FLAG = '(--allow-out-of-order)';

/**
 * migrate's plan with the loaded files it runs; warns about migrations that could not be undone
 * and about applied versions this release does not have (the database is ahead of the code).
 */
export async function planMigration(
  session: Session,
  dialect: Dialect,
  { migrations, checksums, ledger }: { migrations: Migration[]; checksums: Checksums; ledger: LedgerRow[] },
  options: PendingOptions,
): Promise<MigratePlan & { runs: StepSource[] }> {
  const plan = planMigrate(migrations, ledger, checksums, options);
  warnAboutPlan(session, plan, migrations);
  const runs: StepSource[] = [];
  for (const m of plan.pending) {
    const script = await loadScript(m.forward, dialect);
    const rollback = m.rollback ? readSourceText(m.rollback) : null;
    const run = { script, rollback, outOfOrder: plan.outOfOrder.has(m.version) };
    checkWritten(session, m, run);
    runs.push(run);
  }
  if (runs.length > 0) {
    // The lint is loaded only when something is pending: a no-op run does not pay for it.
    const { lintPending } = await import('../lint/command.js');
    const scripts = runs.map((r) => r.script);
    await lintPending(session, scripts, dialect, options.strict ?? session.config.strict);
  }
  return { ...plan, runs };
}

function warnAboutPlan(session: Session, plan: MigratePlan, migrations: Migration[]): void {
  const ahead = notInReleaseWarning(plan.notInRelease, migrations);
  if (ahead) session.emit({ type: 'warning', message: ahead });
  for (const m of plan.pending.filter((m) => !m.rollback)) {
    session.emit({
      type: 'warning',
      message: `${m.forward.path} has no rollback file; write ${rollbackName(m)} so it can be undone`,
    });
  }
  for (const m of plan.pending.filter((m) => plan.outOfOrder.has(m.version))) {
    session.emit({
      type: 'warning',
      message: `${m.forward.path} runs out of order, below the applied version ${plan.current} ${OUT_OF_ORDER_FLAG}`,
    });
  }
}

/**
 * A pending migration that is still create's template is refused; one with no statement runs with
 * a warning, and so does one whose rollback was never written.
 */
function checkWritten(session: Session, m: Migration, run: StepSource): void {
  const { script } = run;
  if (isUntouchedTemplate(m.forward, script.text)) {
    const { path } = m.forward;
    const message = `${path} is still the template \`tidemark create\` wrote: write the migration or delete the file`;
    throw new UsageError(`${message}; nothing was run`, {
      file: path,
      hint: `write the change in ${path} (its undoing in the rollback file), or delete both files`,
    });
  }
  if (script.statements.length === 0) {
    const message = `${m.forward.path} has no statement: it will be recorded as applied and changes nothing`;
    session.emit({ type: 'warning', message });
  } else if (run.rollback && m.rollback && isUntouchedTemplate(m.rollback, run.rollback.text)) {
    const fix = 'write the rollback, or make its first line -- tidemark:irreversible';
    const message = `${m.rollback.path} is still the template \`tidemark create\` wrote: ${fix}`;
    session.emit({ type: 'warning', message });
  }
}

function rollbackName(m: Migration): string {
  return `${m.versionText}_${m.name}_rollback.sql`;
}

/** The ledger change a backfill makes: the forward checksum, the rollback file's text, or both. */
export function backfillChange(b: Backfill, checksums: Checksums): RowChange {
  return {
    checksum: b.checksum ? checksums.forward.get(b.migration.version) : undefined,
    rollback: b.rollback ? readSourceText(b.migration.rollback!) : undefined,
  };
}
