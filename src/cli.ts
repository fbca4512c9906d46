#!/usr/bin/env node
// The entry point. `--version` answers from package.json without loading anything else. A bare
// `migrate` (what `npm run migrate` runs on every deploy) has no options to parse: it runs without
// the command line (yargs). Every other command loads yargs and, through it, only what it needs.
import { readFileSync } from 'node:fs';

// A reader that stops early (`tidemark status | head`) closes the pipe: that ends the output, not in a crash.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

const argv = process.argv.slice(2);
if (argv.length === 1 && argv[0] === '--version') {
  const packageJson = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  process.stdout.write(`${(JSON.parse(packageJson) as { version: string }).version}\n`);
} else if (argv.length === 1 && argv[0] === 'migrate') {
  const [{ migrateCommand }, { migrateAccepts }] = await Promise.all([
    import('./run-command.js'),
    import('./options.js'),
  ]);
  await migrateCommand({ accepts: migrateAccepts() });
} else {
  const { cli } = await import('./commands.js');
  await cli(argv);
}
