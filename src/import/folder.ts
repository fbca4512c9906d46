// The file side of `tidemark import`: read the other tool's folder, write tidemark's files (never over one).
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { UsageError } from '../errors.js';
import { makeFolders } from '../folders.js';
import type { ConvertedFile, SourceFile } from './convert.js';

/** Every file below the folder (sub-folders name dialects), bytes as latin1 so they pass through unchanged. */
export function readSourceFolder(dir: string, cwd: string): SourceFile[] {
  const root = resolve(cwd, dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new UsageError(`the folder to import, ${dir}, does not exist`, {
      hint: "name the other tool's migrations folder, e.g. tidemark import --from goose db/migrations",
    });
  }
  const files: SourceFile[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const full = join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        files.push({ path: relative(root, full).split(sep).join('/'), text: readFileSync(full).toString('latin1') });
      }
    }
  };
  walk(root);
  return files;
}

/**
 * The files to write: those that do not exist yet. A file that exists with the same bytes is kept (a
 * second database adopted from the committed folder); any other existing file is refused, before
 * anything is written.
 */
export function filesToWrite(files: ConvertedFile[], dir: string, cwd: string): ConvertedFile[] {
  const folder = resolve(cwd, dir);
  const existing = files.filter((f) => existsSync(join(folder, f.fileName)));
  const same = (f: ConvertedFile) => readFileSync(join(folder, f.fileName)).equals(Buffer.from(f.text, 'latin1'));
  const different = existing.filter((f) => !same(f));
  if (different.length > 0) {
    const paths = different.map((f) => `${join(dir, f.fileName)} (from ${f.from})`);
    const files = paths.length === 1 ? 'a file' : `${paths.length} files`;
    throw new UsageError(`${files} to write exist already in ${dir}/ with other contents; nothing was written`, {
      context: paths,
      hint: `import into an empty folder with --dir (e.g. --dir ${dir}-imported), or move those files away first`,
    });
  }
  return files.filter((f) => !existing.includes(f));
}

/** Writes the files (exclusive create) and returns their paths; on any failure removes what it wrote. */
export function writeConverted(files: ConvertedFile[], dir: string, cwd: string): string[] {
  const folder = resolve(cwd, dir);
  makeFolders(folder);
  const written: string[] = [];
  try {
    for (const f of files) {
      writeFileSync(join(folder, f.fileName), Buffer.from(f.text, 'latin1'), { flag: 'wx' });
      written.push(join(dir, f.fileName));
    }
  } catch (error) {
    removeWritten(written, cwd);
    throw error;
  }
  return written;
}

export function removeWritten(paths: string[], cwd: string): void {
  for (const path of paths) rmSync(resolve(cwd, path), { force: true });
}
