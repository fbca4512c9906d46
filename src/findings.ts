// What verify reports, as pure functions of the ledger, the files and schema differences. No I/O here.
import kleur from 'kleur';
import { printable } from './printable.js';
import type { Checksums, Migration } from './files.js';
import {
  currentVersion,
  dirtyResolution,
  editedFiles,
  LEDGER_REPAIR,
  ledgerAnomalies,
  notInRelease,
  type LedgerRow,
  versionLabel,
} from './plan.js';
import type { Irreversible } from './reversibility.js';
import type { Difference } from './schema.js';
import { compareVersions, type Version } from './version.js';

/** The checks of `verify`, in the order they are reported. */
export const CHECKS = [
  'ledger',
  'pending',
  'expected-version',
  'missing-file',
  'checksum',
  'dirty',
  'rollback-file',
  'reference',
  'drift',
  'rollbacks',
] as const;
export type CheckName = (typeof CHECKS)[number];

export interface Finding {
  check: CheckName;
  message: string;
  /** One line per item: a migration, a file, a schema difference. */
  details: string[];
  /** What a person does about it. */
  fix: string;
  /** The versions it is about. */
  versions: Version[];
  /** drift and rollbacks: the differences as data (`details` holds their lines). */
  differences?: Difference[];
}

export interface VerifyReport {
  database: string;
  version: Version;
  /** SCHEMA_VERSION, when set. */
  expectedVersion: Version | null;
  /** What the live schema was compared with, or why it could not be. */
  reference: Reference;
  /** With --rollbacks: each migration's verdict and their counts; null without. */
  rollbacks: RollbackSummary | null;
  /** Migrations whose rollback file says they are not to be undone: decisions, listed, not problems. */
  irreversible: Irreversible[];
  findings: Finding[];
  ok: boolean;
}

/**
 * The expected schema: always the migration files of the applied versions (`versions`, in apply
 * order) run on a scratch database; `none` when they could not be, with the reason.
 */
export type Reference =
  | { source: 'files'; description: string; versions: Version[] }
  | { source: 'none'; reason: string };

/**
 * What `verify --rollbacks` found for one migration; lossy: its rollback ran but did not restore the
 * schema; irreversible: its rollback file says it is not to be undone, so it was applied and skipped.
 */
export const ROLLBACK_VERDICTS = ['proven', 'lossy', 'failed', 'irreversible', 'unchecked'] as const;
export type RollbackVerdict = (typeof ROLLBACK_VERDICTS)[number];

export interface RollbackResult {
  version: Version;
  versionText: string;
  name: string;
  verdict: RollbackVerdict;
  /** Why it is unchecked (or what failed), in a few words. */
  reason: string | null;
}

export interface RollbackSummary {
  /** --from: the first version checked; null: from the first migration. */
  from: Version | null;
  counts: Record<RollbackVerdict, number>;
  results: RollbackResult[];
}

export function summarizeRollbacks(from: Version | null, results: RollbackResult[]): RollbackSummary {
  const count = (verdict: RollbackVerdict) => results.filter((r) => r.verdict === verdict).length;
  const counts = Object.fromEntries(ROLLBACK_VERDICTS.map((v) => [v, count(v)])) as RollbackSummary['counts'];
  return { from, counts, results };
}

/** Its words: `the migration files at version 7 (applied in the order 1, 3, 2), built on a scratch database`. */
export function filesReference(versions: Version[]): Reference {
  if (versions.length === 0) return { source: 'files', description: 'an empty schema (no version applied)', versions };
  const sorted = [...versions].sort(compareVersions);
  const order = versions.some((v, i) => v !== sorted[i]) ? ` (applied in the order ${versions.join(', ')})` : '';
  const description = `the migration files at version ${sorted.at(-1)}${order}, built on a scratch database`;
  return { source: 'files', description, versions };
}

export interface LedgerFacts {
  migrations: Migration[];
  ledger: LedgerRow[];
  /** The current checksums of each applied version's files. */
  checksums: Checksums;
  expectedVersion: Version | null;
  /** Rollback files still as `tidemark create` wrote them, for migrations that do something; none when left out. */
  unwritten?: Irreversible[];
}

/** Every finding that the ledger and the files alone show. */
export function ledgerFindings(facts: LedgerFacts): Finding[] {
  return [impossibleLedger, pending, expectedVersion, missingFiles, changedFiles, dirtyRows, missingRollbacks]
    .map((check) => check(facts))
    .filter((f): f is Finding => f !== null);
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

function impossibleLedger({ ledger }: LedgerFacts): Finding | null {
  const anomalies = ledgerAnomalies(ledger);
  if (anomalies.length === 0) return null;
  const message = 'the ledger is not one a serial run could have written';
  return { check: 'ledger', message, details: anomalies, fix: LEDGER_REPAIR, versions: [] };
}

function pending({ migrations, ledger }: LedgerFacts): Finding | null {
  const applied = new Set(ledger.map((r) => r.version));
  const waiting = migrations.filter((m) => !applied.has(m.version));
  if (waiting.length === 0) return null;
  return {
    check: 'pending',
    message: `${plural(waiting.length, 'migration is', 'migrations are')} pending`,
    details: waiting.map((m) => `${m.versionText} ${m.name}`),
    fix: 'run `tidemark migrate` (npm run migrate)',
    versions: waiting.map((m) => m.version),
  };
}

function expectedVersion({ migrations, ledger, expectedVersion: expected }: LedgerFacts): Finding | null {
  const current = currentVersion(ledger);
  if (expected === null || expected === current) return null;
  const known = expected === 0n || migrations.some((m) => m.version === expected);
  return {
    check: 'expected-version',
    message: `the database is at version ${current}, but SCHEMA_VERSION expects ${expected}`,
    details: [],
    fix:
      current < expected
        ? known
          ? `run \`tidemark migrate ${expected}\``
          : `no migration file has version ${expected} here: deploy the files of the release that expects it, or ` +
            `correct SCHEMA_VERSION`
        : `the database is ahead of this release: deploy the release that expects ${current}, or run \`tidemark ` +
          `rollback --to ${expected}\``,
    versions: [expected],
  };
}

function missingFiles({ migrations, ledger }: LedgerFacts): Finding | null {
  const orphans = notInRelease(migrations, ledger);
  if (orphans.length === 0) return null;
  return {
    check: 'missing-file',
    message:
      `${plural(orphans.length, 'applied version is', 'applied versions are')} not in this release: no ` +
      `migration file`,
    details: orphans.map(
      (r) =>
        `version ${versionLabel(r.version, null, r)} (${r.name})` +
        (r.rollbackChecksum ? ': its rollback is stored in the ledger' : ''),
    ),
    fix:
      'deploy the release that has the files, or undo them with `tidemark rollback` (it runs the rollback stored in ' +
      'the ledger when the file is gone); ' +
      'for an abandoned migration with nothing stored, undo its changes by hand and run `tidemark force <version> ' +
      '--yes`',
    versions: orphans.map((r) => r.version),
  };
}

function changedFiles({ migrations, ledger, checksums }: LedgerFacts): Finding | null {
  const edited = editedFiles(migrations, ledger, checksums);
  if (edited.length === 0) return null;
  return {
    check: 'checksum',
    message:
      `${plural(edited.length, 'applied migration file was', 'applied migration files were')} edited after ` +
      `the migration ran`,
    details: edited.map(
      ({ file, versionText }) => `${file.path}: checksum differs from the one recorded when ${versionText} was applied`,
    ),
    fix:
      'restore the files as they were applied (git checkout) and put the change in a new migration (`tidemark ' +
      'create <name>`); for a harmless edit such as a comment, or a fixed rollback file, `tidemark migrate ' +
      "--allow-changed` records the new checksum (and the rollback's new text)",
    versions: [...new Set(edited.map((e) => e.version))],
  };
}

function dirtyRows({ ledger }: LedgerFacts): Finding | null {
  const dirty = ledger.filter((r) => r.dirty);
  if (dirty.length === 0) return null;
  return {
    check: 'dirty',
    message:
      `${plural(dirty.length, 'version is', 'versions are')} dirty: a no-transaction migration started and ` +
      `did not finish`,
    details: dirty.map((r) => `version ${versionLabel(r.version, null, r)} (${r.name})`),
    fix: dirtyResolution(versionLabel(dirty[0]!.version, null, dirty[0]), dirty[0]!.dirtyAction),
    versions: dirty.map((r) => r.version),
  };
}

function missingRollbacks({ migrations, unwritten = [] }: LedgerFacts): Finding | null {
  const without = migrations.filter((m) => !m.rollback);
  if (without.length + unwritten.length === 0) return null;
  const what = !unwritten.length
    ? 'no rollback file'
    : !without.length
      ? 'an unwritten rollback file'
      : 'no rollback file, or an unwritten one';
  const missing = without.map((m) => `${m.forward.path}: write ${m.versionText}_${m.name}_rollback.sql`);
  return {
    check: 'rollback-file',
    message: `${plural(without.length + unwritten.length, 'migration has', 'migrations have')} ${what}`,
    details: [...missing, ...unwritten.map((u) => u.reason)],
    fix:
      'write each rollback file named above so that it undoes its migration ' +
      '(`tidemark verify --rollbacks` proves that it does), ' +
      'or make its first line -- tidemark:irreversible if the migration is not to be undone',
    versions: [...without.map((m) => m.version), ...unwritten.map((u) => u.version)],
  };
}

/** Why the expected schema cannot be rebuilt from the files, or null: every applied version needs its file. */
export function rebuildObstacle(migrations: Migration[], ledger: LedgerRow[]): string | null {
  const files = new Set(migrations.map((m) => m.version));
  const orphan = ledger.find((r) => !files.has(r.version));
  if (!orphan) return null;
  return `version ${orphan.version} (${orphan.name}) is applied but this release has no file to rebuild it from`;
}

/** verify could not build what the files produce, so it cannot say whether the schema matches: never "verified". */
export function referenceFinding(reason: string, fix: string, versions: Version[] = []): Finding {
  const message = `the schema was not compared with the migration files: ${reason}`;
  return { check: 'reference', message, details: [], fix, versions };
}

/** The fix never suggests force: force changes the ledger, not what the files produce. */
export function driftFinding(differences: Difference[], reference: string, version: Version): Finding {
  return {
    check: 'drift',
    message: `the schema differs from ${reference} (+ only in the database, - missing from it, ~ changed)`,
    details: differences.map((d) => d.line),
    fix:
      'undo these changes by hand; to keep them instead, undo them here too, put them in a new migration ' +
      '(`tidemark create <name>`) and run `tidemark migrate`, so that every database gets them',
    versions: [version],
    differences,
  };
}

export function rollbackFinding(migration: Migration, differences: Difference[]): Finding {
  return {
    check: 'rollbacks',
    message:
      `the rollback of ${migration.versionText} ${migration.name} does not restore the schema it started from ` +
      `(+ left behind, - removed, ~ changed)`,
    details: differences.map((d) => d.line),
    fix: `make ${migration.rollback?.path ?? 'the rollback file'} undo everything ${migration.forward.path} does`,
    versions: [migration.version],
    differences,
  };
}

/** A step that failed on a scratch database: the migrations do not build, or a rollback does not run. */
export function scratchFailure(
  check: 'reference' | 'rollbacks',
  what: string,
  migration: Migration | null,
  error: { message: string; context: string[]; hint?: string },
): Finding {
  return {
    check,
    message: `${what} failed on the scratch database: ${error.message}`,
    details: error.context,
    fix:
      error.hint ??
      'fix the file named above; every migration must run on a database built by the migrations before it',
    versions: migration ? [migration.version] : [],
  };
}

/** What each check says when it holds. */
function passed(check: CheckName, report: VerifyReport): string | null {
  switch (check) {
    case 'ledger':
      return 'the ledger is one a serial run could have written';
    case 'pending':
      return 'nothing pending';
    case 'expected-version':
      return report.expectedVersion === null ? null : `version ${report.version} is the one SCHEMA_VERSION expects`;
    case 'missing-file':
      return 'every applied version has its file';
    case 'checksum':
      return 'no applied file was edited';
    case 'dirty':
      return 'no dirty version';
    case 'rollback-file':
      return `every migration has a rollback file${report.irreversible.length ? ' (some say it is irreversible)' : ''}`;
    case 'reference':
      return null;
    case 'drift':
      return report.reference.source === 'none' ? null : `the schema matches ${report.reference.description}`;
    case 'rollbacks': {
      if (report.rollbacks === null) return null;
      const proven = plural(report.rollbacks.counts.proven, 'rollback', 'rollbacks');
      return `every rollback checked undoes its migration (${proven} proven on a scratch database)`;
    }
  }
}

/** `rollbacks: 3 proven, 1 lossy, 1 failed, 1 irreversible, 1 unchecked`, then each skipped or unchecked and why. */
function rollbackSummaryLines(summary: RollbackSummary): string[] {
  const counts = ROLLBACK_VERDICTS.map((v) => `${summary.counts[v]} ${v}`).join(', ');
  const from = summary.from === null ? '' : ` (from version ${summary.from})`;
  const unchecked = summary.results
    .filter((r) => r.verdict === 'unchecked' || r.verdict === 'irreversible')
    .map((r) => `  ${r.versionText} ${r.name}: ${r.verdict}: ${r.reason}`);
  return [`rollbacks: ${counts}${from}`, ...unchecked];
}

/** The report as lines for a person: each check that holds, each finding with its details and fix, a total. */
export function formatVerifyReport(report: VerifyReport, quiet = false): string[] {
  const lines = quiet ? [] : [`verify ${report.database} at version ${report.version}`];
  for (const check of CHECKS) {
    const found = report.findings.filter((f) => f.check === check);
    for (const f of found) {
      const details = f.details.map((d) => `  ${printable(d)}`);
      lines.push(`${kleur.red('✗')} ${printable(f.message)}`, ...details);
      lines.push(`  ${kleur.cyan('fix:')} ${printable(f.fix)}`);
    }
    const ok = found.length === 0 ? passed(check, report) : null;
    if (ok && !quiet) lines.push(`${kleur.green('✓')} ${ok}`);
  }
  for (const i of report.irreversible) {
    lines.push(`${kleur.cyan('•')} irreversible on purpose: ${i.versionText} ${i.name} (${printable(i.reason)})`);
  }
  if (report.rollbacks) lines.push(...rollbackSummaryLines(report.rollbacks));
  const { reference } = report;
  const verified = report.ok && reference.source === 'files';
  const problems = plural(report.findings.length, 'problem', 'problems');
  lines.push(verified ? `verified: matches ${reference.description}` : `verify found ${problems}`);
  return lines;
}
