// What `tidemark import` prints: what it wrote, what it recorded, and everything it did not convert.
import type { ImportResult } from '../migrator.js';

/** `--json`: the report without the files' contents (those are in the files). */
export function importJson(result: ImportResult): object {
  const files = result.files.map(({ text: _text, ...file }) => file);
  return { ...result, files };
}

export function importLines(result: ImportResult): string[] {
  const would = result.dryRun ? 'would write' : 'wrote';
  const migrations = new Set(result.files.map((f) => f.version)).size;
  const count = result.files.length - result.kept.length;
  const lines = [`${would} ${count} files (${migrations} migrations) into ${result.dir}/`];
  if (result.kept.length > 0) lines[0] += `; ${result.kept.length} were there already, identical, and were kept`;
  const outside = result.files.filter((f) => f.noTransaction);
  if (outside.length > 0) {
    const names = outside.map((f) => f.fileName).join(', ');
    lines.push(`${outside.length} of them run outside a transaction (first line -- tidemark:no-transaction): ${names}`);
  }
  if (result.adopted) {
    const { database, table, versions } = result.adopted;
    const range = `${versions.length} versions (${versions[0]} to ${versions.at(-1)})`;
    const list = versions.length === 0 ? 'no version' : versions.length === 1 ? `version ${versions[0]}` : range;
    lines.push(
      result.dryRun
        ? `would record ${list} from ${table} in the ledger of ${database}`
        : `the ledger of ${database} now records ${list} as applied, as ${table} says; ${table} is unchanged`,
    );
  }
  if (result.skipped.length > 0) {
    lines.push(`not converted (${result.skipped.length}):`);
    for (const s of result.skipped) lines.push(`  ${s.path}: ${s.reason}`);
  }
  if (result.notes.length > 0) {
    lines.push(`converted with notes (${result.notes.length}):`);
    for (const n of result.notes) lines.push(`  ${n.path}: ${n.reason}`);
  }
  if (result.dryRun) lines.push('dry run: nothing was written');
  return lines;
}
