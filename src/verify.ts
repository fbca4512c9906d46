// verify: the ledger and files checks, schema drift against the stored snapshot (or the files rebuilt
// on a scratch database), and with --rollbacks the proof that every rollback undoes its migration.
import { constants } from 'node:os';
import type { Config, Target } from './config.js';
import type { Driver } from './drivers/driver.js';
import { createScratch } from './drivers/scratch.js';
import { ExitCode, TidemarkError } from './errors.js';
import { fileChecksums, type Migration } from './files.js';
import { driftFinding, ledgerFindings, rebuildObstacle, rollbackFinding, scratchFailure, type Finding, type VerifyReport } from './findings.js';
import type { EventListener } from './migrator.js';
import { currentVersion } from './plan.js';
import { diffSnapshots, parseStoredSnapshot, serializeSnapshot, type Snapshot } from './schema.js';

export interface VerifyOptions {
  /** Also prove every rollback on a scratch database. */
  rollbacks?: boolean;
  /** The version the application expects; default: SCHEMA_VERSION (environment or .env). */
  expectedVersion?: number;
}

/** What verify needs of a migrator pointed at a scratch database. */
export interface ScratchMigrator {
  migrate(options: { target: number }): Promise<unknown>;
  rollback(options: { steps: number }): Promise<unknown>;
  schema(): Promise<Snapshot>;
}

export interface VerifyContext {
  /** Connected to the database being verified; verify only reads through it. */
  driver: Driver;
  target: Target;
  config: Config;
  migrations: Migration[];
  emit: EventListener;
  /** A migrator for the same project on another database (a scratch one), reporting nothing. */
  migratorFor: (config: Config) => ScratchMigrator;
}

/**
 * Stores the live schema as the one expected at `version`; called after every command that changed
 * the schema or the ledger. The migrations are committed by then, so a failure here is a warning,
 * not a failed deploy: without the snapshot, verify compares with the files instead.
 */
export async function recordSnapshot(driver: Driver, version: number, emit: EventListener): Promise<void> {
  try {
    await driver.saveSnapshot(version, serializeSnapshot(await driver.snapshot()));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    emit({ type: 'warning', message: `could not record the schema snapshot for version ${version} (${reason}); verify will compare with the migration files instead` });
  }
}

export async function verify(ctx: VerifyContext, options: VerifyOptions = {}): Promise<VerifyReport> {
  const { driver, migrations } = ctx;
  const expectedVersion = options.expectedVersion ?? ctx.config.schemaVersion;
  const ledger = await driver.readLedger();
  const applied = new Set(ledger.map((r) => r.version));
  const checksums = fileChecksums(migrations, applied);
  const version = currentVersion(ledger);
  const findings: Finding[] = ledgerFindings({ migrations, ledger, checksums, expectedVersion });

  const expected = await expectedSchema(ctx, version, rebuildObstacle(migrations, ledger));
  if (expected.finding) findings.push(expected.finding);
  if (expected.schema && expected.baseline.source !== 'none') {
    const differences = diffSnapshots(expected.schema, await driver.snapshot());
    if (differences.length > 0) findings.push(driftFinding(differences, expected.baseline.description, version));
  }

  let rollbacksProven: number | null = null;
  if (options.rollbacks) {
    const proof = await proveRollbacks(ctx);
    findings.push(...proof.findings);
    rollbacksProven = proof.proven;
  }
  return { database: driver.description, version, expectedVersion, baseline: expected.baseline, rollbacksProven, findings, ok: findings.length === 0 };
}

interface ExpectedSchema {
  baseline: VerifyReport['baseline'];
  schema: Snapshot | null;
  /** The files could not be applied to build it. */
  finding?: Finding;
}

/**
 * The snapshot stored after the current version; without one (the SQL was run by hand, or the ledger
 * predates snapshots), the applied migrations' files run on a scratch database.
 */
async function expectedSchema(ctx: VerifyContext, version: number, obstacle: string | null): Promise<ExpectedSchema> {
  const stored = parseStoredSnapshot(await ctx.driver.savedSnapshot(version));
  if (stored) return { baseline: { source: 'snapshot', description: `the snapshot recorded after version ${version}` }, schema: stored };
  if (obstacle) return { baseline: { source: 'none', reason: `no snapshot is recorded for version ${version}, and ${obstacle}` }, schema: null };
  ctx.emit({
    type: 'notice',
    message: `no schema snapshot is recorded for version ${version} (the SQL was run by hand, or the ledger predates snapshots): comparing with the migration files applied to a scratch database`,
  });
  const baseline = { source: 'files' as const, description: `the migration files up to version ${version} applied to a scratch database` };
  return onScratch(ctx, 'building the expected schema', async (scratch) => {
    const failure = await attempt('drift', `applying the migrations up to version ${version}`, null, () => scratch.migrate({ target: version }));
    return failure ? { baseline, schema: null, finding: failure } : { baseline, schema: await scratch.schema() };
  });
}

/** For each migration in order: snapshot, apply, roll back, compare with the snapshot, apply again. */
async function proveRollbacks(ctx: VerifyContext): Promise<{ proven: number; findings: Finding[] }> {
  return onScratch(ctx, 'proving every rollback', async (scratch) => {
    const findings: Finding[] = [];
    let proven = 0;
    let before = await scratch.schema();
    for (const m of ctx.migrations) {
      const id = `${m.versionText} ${m.name}`;
      let failure = await attempt('rollbacks', `applying ${id}`, m, () => scratch.migrate({ target: m.version }));
      if (!failure && m.rollback) {
        failure = await attempt('rollbacks', `rolling back ${id}`, m, () => scratch.rollback({ steps: 1 }));
        if (!failure) {
          const differences = diffSnapshots(before, await scratch.schema());
          if (differences.length > 0) findings.push(rollbackFinding(m, differences));
          else proven++;
          failure = await attempt('rollbacks', `applying ${id} again after its rollback`, m, () => scratch.migrate({ target: m.version }), {
            fix: `the rollback leaves behind something ${m.forward.path} creates: make ${m.rollback.path} undo everything it does`,
          });
        }
      }
      // A failed step leaves the scratch database half-way: the migrations after it cannot be judged on it.
      if (failure) {
        const unchecked = ctx.migrations.filter((later) => later.version > m.version).length;
        if (unchecked > 0) failure.details.push(`the rollbacks of the ${unchecked} migration${unchecked === 1 ? '' : 's'} after it were not checked`);
        findings.push(failure);
        break;
      }
      before = await scratch.schema();
    }
    return { proven, findings };
  });
}

/**
 * Runs a step on the scratch database; a migration that fails there is a finding (with the error's
 * own hint unless `fix` knows better), anything else an error.
 */
async function attempt(
  check: 'drift' | 'rollbacks',
  what: string,
  migration: Migration | null,
  run: () => Promise<unknown>,
  { fix }: { fix?: string } = {},
): Promise<Finding | null> {
  try {
    await run();
    return null;
  } catch (error) {
    if (!(error instanceof TidemarkError) || error.exitCode !== ExitCode.migrationFailed) throw error;
    return scratchFailure(check, what, migration, { message: error.message, context: [...(error.details.context ?? [])], hint: fix ?? error.details.hint });
  }
}

/**
 * Runs work against a new scratch database and removes it afterwards, also when the work fails or
 * the process is interrupted (Ctrl-C, SIGTERM from a CI timeout).
 */
async function onScratch<T>(ctx: VerifyContext, purpose: string, work: (scratch: ScratchMigrator) => Promise<T>): Promise<T> {
  const scratch = await createScratch(ctx.target);
  const dropAndExit = (signal: NodeJS.Signals) => {
    // The step in flight fails once its database is dropped under it; nothing it reports matters now.
    process.on('uncaughtException', () => {});
    process.on('unhandledRejection', () => {});
    void scratch.drop().finally(() => process.exit(128 + constants.signals[signal]));
  };
  process.once('SIGINT', dropAndExit);
  process.once('SIGTERM', dropAndExit);
  try {
    ctx.emit({ type: 'notice', message: `${purpose} on scratch database ${scratch.description} (removed afterwards)` });
    return await work(ctx.migratorFor({ ...ctx.config, url: scratch.url }));
  } finally {
    process.off('SIGINT', dropAndExit);
    process.off('SIGTERM', dropAndExit);
    await scratch.drop();
  }
}
