// Each fleet command's result on one database, in the few words and numbers the fleet report shows.
import { ExitCode, TidemarkError } from '../errors.js';
import { formatVerifyReport, type VerifyReport } from '../findings.js';
import type { StatusReport } from '../migrator.js';
import type { WorkOutcome } from './run.js';

export function migrated(result: { applied: number; version: number }, dryRun: boolean): WorkOutcome {
  return {
    version: result.version,
    summary: `${result.applied} ${dryRun ? 'to apply' : 'applied'}, at ${result.version}`,
  };
}

export function reverted(result: { reverted: number; version: number }, dryRun: boolean): WorkOutcome {
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
