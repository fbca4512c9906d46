// The documentation a user reads: the README stays short, and no link leads nowhere.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from './helpers.mjs';

const test = suite('documentation');

const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Markdown text outside fenced code blocks, where links are links. */
function prose(text) {
  return text.replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading) {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchors(page) {
  const headings = prose(readFileSync(join(ROOT, page), 'utf8')).match(/^#{1,6} .*$/gm) ?? [];
  return new Set(headings.map((h) => slug(h.replace(/^#+ /, ''))));
}

function links(page) {
  const text = prose(readFileSync(join(ROOT, page), 'utf8'));
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((href) => !/^[a-z]+:/.test(href));
}

test('the README stays under 15 KB', () => {
  const size = readFileSync(join(ROOT, 'README.md')).length;
  assert.ok(size <= 15 * 1024, `README.md is ${size} bytes`);
});

test('every relative link in README.md and docs/ names a file and a heading that exist', () => {
  const broken = [];
  for (const page of PAGES) {
    for (const href of links(page)) {
      const [path, anchor] = href.split('#');
      const target = path === '' ? page : relative(ROOT, join(ROOT, dirname(page), path));
      if (!existsSync(join(ROOT, target))) broken.push(`${page}: ${href} (no file ${target})`);
      else if (anchor && target.endsWith('.md') && !anchors(target).has(anchor))
        broken.push(`${page}: ${href} (no heading)`);
    }
  }
  assert.equal(broken, []);
});

test("the README's speed table is rows of the latest bench run that docs/benchmarks.md keeps whole", () => {
  const section = (text, heading) => text.split(heading)[1]?.split(/^## /m)[0] ?? '';
  const rows = (text) => text.split('\n').filter((line) => /^\| W\d /.test(line));
  const readme = rows(section(readFileSync(join(ROOT, 'README.md'), 'utf8'), '## Speed'));
  const latest = section(readFileSync(join(ROOT, 'docs/benchmarks.md'), 'utf8'), '## The latest run');
  assert.ok(readme.length >= 4, 'the README shows bench rows');
  assert.equal(
    readme.filter((row) => !rows(latest).includes(row)),
    [],
    'README rows missing from the latest run',
  );
  const commit = /tidemark ([0-9a-f]{7,}), node/.exec(latest)?.[1];
  assert.ok(commit, 'the latest run names its commit');
  assert.ok(readFileSync(join(ROOT, 'README.md'), 'utf8').includes(`commit ${commit}`), `README names ${commit}`);
});

test('no page cites a design document outside the repository', () => {
  const citing = PAGES.filter((page) => /DESIGN\.md|\.\.\/shared/.test(readFileSync(join(ROOT, page), 'utf8')));
  assert.equal(citing, []);
});

test('README.md and docs/pm2.md give the post-deploy hook init writes and the pm2 test runs', async () => {
  const { POST_DEPLOY } = await import('../dist/init.js');
  for (const page of ['README.md', 'docs/pm2.md'])
    assert.ok(readFileSync(join(ROOT, page), 'utf8').includes(POST_DEPLOY), page);
});

test.run();
