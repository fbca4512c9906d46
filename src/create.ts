// `tidemark create`: the next version's migration and rollback files, from the templates.
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from './config.js';
import { discover, validateMigrationName } from './files.js';
import { makeFolders } from './folders.js';
import { forwardTemplate, rollbackTemplate } from './templates.js';

/** Writes the pair and returns their paths; see {@link Migrator.create}. */
export function createMigration(config: Config, name: string, options: { timestamp?: boolean } = {}): string[] {
  validateMigrationName(name);
  const folder = resolve(config.cwd, config.dir);
  makeFolders(folder);
  const next = discover(config.dir, config.cwd).nextVersionText(new Date(), Boolean(options.timestamp));
  const id = `${next}_${name}`;
  const files: [string, string][] = [
    [`${id}.sql`, forwardTemplate(id)],
    [`${id}_rollback.sql`, rollbackTemplate(id)],
  ];
  for (const [fileName, text] of files) writeFileSync(join(folder, fileName), text, { flag: 'wx' });
  return files.map(([fileName]) => join(config.dir, fileName));
}
