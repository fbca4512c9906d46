// verify: the ledger and files checks; schema drift against the files of the applied versions, run in
// apply order on a scratch database (never against anything taken from the live database); and with
// --rollbacks the proof that every rollback undoes its migration.
import { constants } from 'node:os';
import { parseTarget, type Config, type Target } from './config.js';
import { connect, createScratch } from './drivers/connect.js';
import type { Driver } from './drivers/driver.js';
import { isUnavailable, type ScratchDatabase, type ScratchUnavailable } from './drivers/scratch.js';
import { ExitCode, TidemarkError, UsageError } from './errors.js';
import { fileChecksums, type Migration } from './files.js';
import { loadScript, type Script } from './script.js';
import { irreversibleMigrations, type Irreversible } from './reversibility.js';
import {
  driftFinding,
  filesReference,
  ledgerFindings,
  rebuildObstacle,
  referenceFinding,
  rollbackFinding,
  scratchFailure,
  summarizeRollbacks,
  type Finding,
  type Reference,
  type RollbackResult,
  type RollbackSummary,
  type RollbackVerdict,
  type VerifyReport,
} from './findings.js';
import type { EventListener } from './events.js';
import { currentVersion, inApplyOrder, type LedgerRow } from './plan.js';
import { diffSnapshots, EMPTY_SNAPSHOT, type Snapshot } from './schema.js';
import type { Version } from './version.js';

export interface VerifyOptions {
  /** Also prove every rollback on a scratch database. */
  rollbacks?: boolean;
  /** --rollbacks: start at this version (the migrations below it are applied, not checked). */
  from?: Version;
  /** --rollbacks: stop at the first rollback that fails or leaves something behind, as verify once did. */
  failFast?: boolean;
  /** The version the application expects; default: SCHEMA_VERSION (environment or .env). */
  expectedVersion?: Version;
}

/** What verify needs of a migrator pointed at a scratch database. */
export interface ScratchMigrator {
  migrate(options: { target: Version }): Promise<unknown>;
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

export async function verify(ctx: VerifyContext, options: VerifyOptions = {}): Promise<VerifyReport> {
  const { driver, migrations } = ctx;
  const expectedVersion = options.expectedVersion ?? ctx.config.schemaVersion;
  const ledger = await driver.readLedger();
  const applied = new Set(ledger.map((r) => r.version));
  const checksums = fileChecksums(migrations, applied);
  const version = currentVersion(ledger);
  const reversibility = irreversibleMigrations(migrations, ctx.target.dialect);
  const irreversible = reversibility.filter((i) => i.onPurpose);
  const unwritten = reversibility.filter((i) => !i.onPurpose);
  const findings: Finding[] = ledgerFindings({ migrations, ledger, checksums, expectedVersion, unwritten });

  const expected = await expectedSchema(ctx, ledger);
  if (expected.finding) findings.push(expected.finding);
  if (expected.schema && expected.reference.source === 'files') {
    const differences = diffSnapshots(expected.schema, await driver.snapshot());
    if (differences.length > 0) findings.push(driftFinding(differences, expected.reference.description, version));
  }

  let rollbacks: RollbackSummary | null = null;
  if (options.rollbacks) {
    const proof = await proveRollbacks(ctx, options, new Map(irreversible.map((i) => [i.version, i])));
    findings.push(...proof.findings);
    rollbacks = proof.summary;
  }
  const { reference } = expected;
  const ok = findings.length === 0;
  return { database: driver.description, version, expectedVersion, reference, rollbacks, irreversible, findings, ok };
}

interface ExpectedSchema {
  reference: Reference;
  schema: Snapshot | null;
  /** Why there is no reference to compare with. */
  finding?: Finding;
}

/**
 * What the files produce at the recorded state: each applied version's forward file, once, in the
 * order the ledger says they were applied (out-of-order ones included), run on a scratch database.
 */
async function expectedSchema(ctx: VerifyContext, ledger: LedgerRow[]): Promise<ExpectedSchema> {
  const none = (finding: Finding): ExpectedSchema => ({
    reference: { source: 'none', reason: finding.message },
    schema: null,
    finding,
  });
  const files = new Map(ctx.migrations.map((m) => [m.version, m]));
  const obstacle = rebuildObstacle(ctx.migrations, ledger);
  if (obstacle) {
    const fix = 'deploy the release that has the files of every applied version (see `tidemark status`), then verify';
    return none(
      referenceFinding(
        obstacle,
        fix,
        ledger.filter((r) => !files.has(r.version)).map((r) => r.version),
      ),
    );
  }
  const order = [...new Set(inApplyOrder(ledger).map((r) => r.version))].map((v) => files.get(v)!);
  const reference = filesReference(order.map((m) => m.version));
  if (order.length === 0) return { reference, schema: EMPTY_SNAPSHOT };
  const built = await onScratch(ctx, 'building the expected schema', async (_, scratch) => {
    const target = parseTarget(scratch.url, ctx.config.cwd);
    const driver = await connect(target, { ...ctx.config, url: scratch.url }, { create: true, onNotice: () => {} });
    try {
      for (const m of order) {
        const run = async () => runFile(driver, await loadScript(m.forward, driver.dialect));
        const failure = await attempt('reference', `applying ${label(m)}`, m, run);
        if (failure) return none(failure);
      }
      return { reference, schema: await driver.snapshot() };
    } finally {
      await driver.close();
    }
  });
  return isUnavailable(built) ? none(referenceFinding(built.unavailable, built.fix)) : built;
}

/** A forward file alone, as psql would run it: in a transaction unless it says no-transaction; no ledger row. */
async function runFile(driver: Driver, script: Script): Promise<void> {
  if (script.noTransaction) return driver.runScript(script);
  await driver.begin();
  try {
    await driver.runScript(script);
    await driver.commit();
  } catch (error) {
    await driver.rollback().catch(() => {});
    throw error;
  }
}

interface Proof {
  results: RollbackResult[];
  findings: Finding[];
}

/**
 * For each migration in order: snapshot, apply, roll back, compare with the snapshot, apply again.
 * A rollback that fails or leaves something behind does not end the check: it carries on from a fresh
 * scratch database with the migrations up to that one applied (unless --fail-fast).
 */
async function proveRollbacks(
  ctx: VerifyContext,
  options: VerifyOptions,
  irreversible: Map<Version, Irreversible>,
): Promise<{ summary: RollbackSummary; findings: Finding[] }> {
  const todo = ctx.migrations.filter((m) => m.version >= (options.from ?? 0));
  if (options.from !== undefined && !ctx.migrations.some((m) => m.version === options.from)) {
    throw new UsageError(`--from ${options.from}: there is no migration with that version for this database`, {
      hint: 'use one of the versions `tidemark status` lists',
    });
  }
  const proof: Proof = { results: [], findings: [] };
  while (proof.results.length < todo.length) {
    const rest = todo.slice(proof.results.length);
    const settings = { failFast: Boolean(options.failFast), irreversible };
    const prove = (scratch: ScratchMigrator) => proveFrom(scratch, rest, proof, settings);
    const built = await onScratch(ctx, 'proving rollbacks', prove);
    if (isUnavailable(built)) {
      const message = `the rollbacks were not proven: ${built.unavailable}`;
      proof.findings.push({ ...referenceFinding(built.unavailable, built.fix), check: 'rollbacks', message });
      markUnchecked(proof, rest, 'no scratch database');
    }
  }
  return { summary: summarizeRollbacks(options.from ?? null, proof.results), findings: proof.findings };
}

const label = (m: Migration) => `${m.versionText} ${m.name}`;

/** Proves `rest` in order on one scratch database, until one leaves it in a state the next cannot be judged on. */
async function proveFrom(
  scratch: ScratchMigrator,
  rest: Migration[],
  proof: Proof,
  { failFast, irreversible }: { failFast: boolean; irreversible: Map<Version, Irreversible> },
): Promise<void> {
  const [first] = rest;
  const what = `applying the migrations below ${label(first!)}`;
  const below = await attempt('rollbacks', what, null, () => scratch.migrate({ target: first!.version - 1n }));
  if (below) {
    proof.findings.push(below);
    return markUnchecked(proof, rest, `not reached: the migrations below it do not apply on a scratch database`);
  }
  for (const [i, m] of rest.entries()) {
    const { result, findings, fresh } = await proveOne(scratch, m, irreversible.get(m.version) ?? null);
    proof.results.push(result);
    proof.findings.push(...findings);
    const later = rest.slice(i + 1);
    if (result.reason === FORWARD_FAILED) {
      const why = `not reached: ${label(m)} does not apply on a database built by the migrations before it`;
      return markUnchecked(proof, later, why);
    }
    if (failFast && result.verdict !== 'proven' && result.verdict !== 'unchecked') {
      return markUnchecked(proof, later, `--fail-fast stopped at ${label(m)}`);
    }
    if (fresh) return;
  }
}

function markUnchecked(proof: Proof, migrations: Migration[], reason: string): void {
  for (const m of migrations) proof.results.push(resultOf(m, 'unchecked', reason));
}

function resultOf(m: Migration, verdict: RollbackVerdict, reason: string | null = null): RollbackResult {
  return { version: m.version, versionText: m.versionText, name: m.name, verdict, reason };
}

const FORWARD_FAILED = 'its migration does not apply';

/** One migration's proof; `fresh`: the scratch database is no longer what the files say: the next needs a new one. */
async function proveOne(
  scratch: ScratchMigrator,
  m: Migration,
  irreversible: Irreversible | null,
): Promise<{ result: RollbackResult; findings: Finding[]; fresh: boolean }> {
  const outcome = (verdict: RollbackVerdict, reason: string | null, finding: Finding | null) => ({
    result: resultOf(m, verdict, reason),
    findings: finding ? [finding] : [],
    fresh: finding !== null,
  });
  const before = await scratch.schema();
  const applying = await attempt('rollbacks', `applying ${label(m)}`, m, () => scratch.migrate({ target: m.version }));
  if (applying) return outcome('failed', FORWARD_FAILED, applying);
  if (!m.rollback) return outcome('unchecked', 'no rollback file', null);
  if (irreversible) return outcome('irreversible', `skipped (${irreversible.reason})`, null);
  const rolling = await attempt('rollbacks', `rolling back ${label(m)}`, m, () => scratch.rollback({ steps: 1 }));
  if (rolling) return outcome('failed', 'its rollback fails', rolling);
  const differences = diffSnapshots(before, await scratch.schema());
  if (differences.length > 0) {
    return outcome('lossy', 'its rollback does not restore the schema', rollbackFinding(m, differences));
  }
  const fix = `the rollback leaves behind something ${m.forward.path} makes: make ${m.rollback.path} undo all it does`;
  const reapply = () => scratch.migrate({ target: m.version });
  const again = await attempt('rollbacks', `applying ${label(m)} again after its rollback`, m, reapply, { fix });
  if (again) return outcome('lossy', 'it does not apply again after its rollback', again);
  return outcome('proven', null, null);
}

/**
 * Runs a step on the scratch database; a migration that fails there is a finding (with the error's
 * own hint unless `fix` knows better), anything else an error.
 */
async function attempt(
  check: 'reference' | 'rollbacks',
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
    const context = [...(error.details.context ?? [])];
    return scratchFailure(check, what, migration, { message: error.message, context, hint: fix ?? error.details.hint });
  }
}

/**
 * Runs work against a new scratch database and removes it afterwards, also when the work fails or
 * the process is interrupted (Ctrl-C, SIGTERM from a CI timeout). Without one (the user may not
 * create databases), says why instead of running the work.
 */
async function onScratch<T>(
  ctx: VerifyContext,
  purpose: string,
  work: (migrator: ScratchMigrator, scratch: ScratchDatabase) => Promise<T>,
): Promise<T | ScratchUnavailable> {
  const given = ctx.config.scratchUrl === null ? null : parseTarget(ctx.config.scratchUrl, ctx.config.cwd);
  if (given && given.dialect !== ctx.target.dialect) {
    const { dialect } = ctx.target;
    throw new UsageError(`--scratch-url names a ${given.dialect} database, and the database to verify is ${dialect}`, {
      hint: `give --scratch-url a ${dialect} URL (the expected schema must be built by the same kind of database)`,
    });
  }
  const scratch = await createScratch(ctx.target, given);
  if ('unavailable' in scratch) return scratch;
  const dropAndExit = (signal: NodeJS.Signals) => {
    // The step in flight fails once its database is dropped under it; nothing it reports matters now.
    process.on('uncaughtException', () => {});
    process.on('unhandledRejection', () => {});
    void scratch.drop().finally(() => process.exit(128 + constants.signals[signal]));
  };
  process.once('SIGINT', dropAndExit);
  process.once('SIGTERM', dropAndExit);
  try {
    const message = `${purpose} on scratch database ${scratch.description} (${scratch.afterwards})`;
    ctx.emit({ type: 'notice', message });
    return await work(ctx.migratorFor({ ...ctx.config, url: scratch.url }), scratch);
  } finally {
    process.off('SIGINT', dropAndExit);
    process.off('SIGTERM', dropAndExit);
    await scratch.drop();
  }
}
