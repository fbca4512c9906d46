// Each fleet command's result on one database, in the few words and numbers the fleet report shows.
import { formatVerifyReport, type VerifyReport } from '../findings.js';
import type { StatusReport } from '../migrator.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ExitCode, TidemarkError, UsageError } from '../errors.js';
import type { FleetMember, WorkOutcome } from './run.js';
import type { Version } from '../version.js';

export function migrated(result: { applied: number; version: Version }, dryRun: boolean): WorkOutcome {
  return {
    version: result.version,
    summary: `${result.applied} ${dryRun ? 'to apply' : 'applied'}, at ${result.version}`,
  };
}

export function reverted(result: { reverted: number; version: Version }, dryRun: boolean): WorkOutcome {
  return {
    version: result.version,
    summary: `${result.reverted} ${dryRun ? 'to undo' : 'undone'}, at ${result.version}`,
  };
}

export function statusOutcome(report: StatusReport): WorkOutcome {
  const pending = report.entries.filter((e) => e.state === 'pending' || e.state === 'out-of-order').length;
  const dirty = report.entries.find((e) => e.state === 'dirty')?.version ?? null;
  return {
    version: report.version,
    dirty,
    summary: `at ${report.version}, ${pending} pending${dirty === null ? '' : `, ${dirty} dirty`}`,
  };
}

/** A database with findings fails in the fleet's report (exit 3), its findings as the error. */
export function verified(report: VerifyReport): WorkOutcome {
  const outcome = { version: report.version, summary: report.ok ? `no findings at ${report.version}` : 'findings' };
  if (report.ok) return outcome;
  return { ...outcome, finding: new TidemarkError(formatVerifyReport(report, true).join('\n'), ExitCode.verifyFailed) };
}

/**
 * `sql` over a fleet: each database's script in `folder`, named after the database (characters a file
 * name cannot hold become `_`). Two names that would share a file fail rather than overwrite.
 */
export function scriptWriter(
  folder: string | undefined,
  cwd: string,
): (script: string, member: FleetMember) => WorkOutcome {
  if (!folder) {
    const hint = 'pass --out <folder>, e.g. --out scripts';
    throw new UsageError('sql over a fleet writes one script per database into a folder', { hint });
  }
  const written = new Set<string>();
  return (script, member) => {
    const file = join(folder, `${member.name.replace(/[^\w.-]+/g, '_')}.sql`);
    if (written.has(file)) {
      const hint = 'give the databases names that differ in letters or digits';
      throw new UsageError(`${member.name}: its script would overwrite ${file}`, { hint });
    }
    written.add(file);
    mkdirSync(resolve(cwd, folder), { recursive: true });
    writeFileSync(resolve(cwd, file), script);
    return { version: null, summary: `wrote ${relative(cwd, resolve(cwd, file))}` };
  };
}
