// The fenced blocks of README.md and docs/*.md with the marker above each, and the masked comparison
// of a block with real output: what test/docs-output.test.mjs runs every example through.
import { readdirSync, readFileSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers.mjs';

export const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** js/ts blocks are compiled by test/examples.test.mjs; every other block carries a marker. */
export const COMPILED = new Set(['js', 'ts', 'javascript', 'typescript']);

const MARKER = /^<!-- (example|not output|not run): (.+?) -->$/;

/**
 * Every fenced block of a page (indented ones in list items too): its language, text (indent removed),
 * line, and the marker on the line right above its opening fence, if any.
 */
export function fencedBlocks(page) {
  const lines = readFileSync(join(ROOT, page), 'utf8').split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)```(\S*)$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, lang] = open;
    let end = i + 1;
    while (end < lines.length && lines[end] !== `${indent}\`\`\``) end++;
    const body = lines.slice(i + 1, end).map((line) => line.slice(indent.length));
    const marker = MARKER.exec((lines[i - 1] ?? '').trim());
    blocks.push({ page, line: i + 1, lang, text: body.join('\n'), marker: marker && parseMarker(marker) });
    i = end;
  }
  return blocks;
}

/** `example: errors/no-database` or `example: pm2/revert-sync, excerpt`; `not output: <reason>`. */
function parseMarker([, kind, rest]) {
  if (kind !== 'example') return { kind, reason: rest };
  const [key, ...flags] = rest.split(/,\s*/);
  return { kind, key, excerpt: flags.includes('excerpt') };
}

/** The blocks of every page that a test runs, by key. */
export function exampleBlocks() {
  const byKey = new Map();
  for (const block of PAGES.flatMap(fencedBlocks)) {
    if (block.marker?.kind !== 'example') continue;
    if (byKey.has(block.marker.key)) throw new Error(`${block.page}:${block.line}: key ${block.marker.key} twice`);
    byKey.set(block.marker.key, block);
  }
  return byKey;
}

/** This machine's names in real output, written as the docs write them. */
function asDocsWrite(text, cwd) {
  let out = text;
  if (cwd) out = out.replaceAll(`${cwd}/`, '').replaceAll(cwd, '.');
  return out
    .replaceAll(`${userInfo().username}@${hostname()}`, 'deploy@web1')
    .replaceAll(`@${hostname()}`, '@web1')
    .replaceAll(`host ${hostname()}`, 'host web-1')
    .replaceAll(tmpdir(), '/tmp');
}

/** What changes from run to run, on both sides: times, durations, dates, pids, hosts, ports, databases. */
export function mask(text) {
  return text
    .replace(/\x1b\[[0-9;]*m/g, '')
    .replace(/\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?( UTC)?/g, '<time>')
    .replace(/\d{8}T\d{6,9}Z/g, '<time>')
    .replace(/\b\d+(\.\d+)? ?(ms|s|min)\b/g, '<duration>')
    .replace(/"ms":\d+/g, '"ms":<n>')
    .replace(/\bpid \d+/g, 'pid <pid>')
    .replace(/holder = '[0-9a-f]+'/g, "holder = '<token>'")
    .replace(/pg_terminate_backend\(\d+\)/g, 'pg_terminate_backend(<pid>)')
    .replace(/(postgres(?:ql)?:\/\/)(?:[^@/\s"'`]+@)?[^/\s"'`]+\/\w+/g, '$1<database>')
    .replace(/\b\d{1,3}(\.\d{1,3}){3}\b/g, '<ip>')
    .replace(/\/tmp\/[\w.-]+/g, '<tmp>')
    .split('\n')
    .map((line) => line.replace(/(\S) {2,}(?=\S)/g, '$1 ').trimEnd())
    .join('\n')
    .replace(/^\n+|\n+$/g, '');
}

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A block as a pattern over masked output: a line that is only `…` stands for any lines, a `…`
 * inside a line for any text. An excerpt is a run of whole lines anywhere in the output.
 */
function pattern(expected, excerpt) {
  const lines = expected
    .split('\n')
    .map((line) =>
      line.trim() === '…' ? '(?:[^\\n]*\\n)*?' : `${line.split('…').map(escapeRegExp).join('[^\\n]*?')}\\n`,
    );
  const body = lines.join('');
  return new RegExp(excerpt ? `(?:^|\\n)${body}` : `^${body}$`);
}

/** undefined when the real output is what the block shows, else both sides masked, for a diff. */
export function compare(block, actual, cwd) {
  const expected = mask(block.text);
  const raw = asDocsWrite(actual, cwd);
  const real = mask(raw);
  if (pattern(expected, block.marker.excerpt).test(`${real}\n`)) return undefined;
  return { expected, real, raw };
}
