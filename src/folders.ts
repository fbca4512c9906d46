// Creating a folder and its missing parents. Not mkdirSync's { recursive: true }: Node 20's loops
// forever (at full CPU) where a parent exists but refuses new entries, e.g. anywhere under /proc.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Creates `path` and its missing parents, each tried once; throws the file system's error (ENOENT,
 * EACCES …). Something that exists already is left as it is: writing into it says what is wrong (ENOTDIR).
 */
export function makeFolders(path: string): void {
  const folder = resolve(path);
  try {
    mkdirSync(folder);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = dirname(folder);
    if (code !== 'ENOENT' || parent === folder) throw error;
    makeFolders(parent);
    mkdirSync(folder);
  }
}
