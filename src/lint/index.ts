// Lints one migration file: the dialect's rules, then the `-- tidemark:allow <rule> <reason>`
// comments that suppress a finding on their statement. Pure: text and parsed statements in, findings out.
import type { PostgresTree } from '../sql/postgres-parser.js';
import type { Statement } from '../sql/statements.js';
import { Locator, type Token } from '../sql/tokens.js';
import { lintPostgres } from './postgres.js';
import { RULE_IDS, RULES, type Finding, type RawFinding } from './rules.js';
import { lintSqlite } from './sqlite.js';

export { RULE_IDS, RULES, type Finding, type FindingRule, type RuleId } from './rules.js';

interface FileInput {
  path: string;
  /** The text as run (BOM removed, LF line ends). */
  text: string;
  /** The lexer's tokens of `text`, comments included: where the allow comments are. */
  tokens: Token[];
  noTransaction: boolean;
}

export type LintInput = FileInput &
  (
    | { dialect: 'postgres'; trees: PostgresTree[]; lockTimeoutConfigured: boolean }
    | { dialect: 'sqlite'; statements: Statement[]; sqliteVersion: string | null }
  );

const ALLOW = /^--\s*tidemark\s*:\s*allow\b\s*(\S*)\s*(.*)$/i;

export function lintFile(input: LintInput): Finding[] {
  const statements = input.dialect === 'postgres' ? input.trees.map((t) => t.statement) : input.statements;
  const { noTransaction } = input;
  const raw =
    input.dialect === 'postgres'
      ? lintPostgres(input.trees, input.text, { noTransaction, lockTimeoutConfigured: input.lockTimeoutConfigured })
      : lintSqlite(input.statements, { noTransaction, sqliteVersion: input.sqliteVersion });
  const { allowed, problems } = allowComments(input.text, input.tokens, statements);
  const kept = raw.filter((f) => !allowed.has(`${f.statement} ${f.rule}`));
  const locator = new Locator(input.text);
  return [...kept, ...problems]
    .sort((a, b) => a.offset - b.offset)
    .map((f) => {
      const { line, column } = locator.at(f.offset);
      return { rule: f.rule, file: input.path, line, column, message: f.message, safe: RULES[f.rule].safe };
    });
}

/**
 * `statement rule` pairs that allow comments suppress, and the allow comments that cannot count
 * (an unknown rule, no reason). A comment belongs to the statement on its line, or else the next one.
 */
function allowComments(
  text: string,
  tokens: Token[],
  statements: Statement[],
): { allowed: Set<string>; problems: RawFinding[] } {
  const allowed = new Set<string>();
  const problems: RawFinding[] = [];
  const locator = new Locator(text);
  const lastLines = statements.map((st) => locator.at(st.offset + st.text.length).line);
  for (const token of tokens) {
    if (token.kind !== 'comment') continue;
    const match = ALLOW.exec(text.slice(token.start, token.end));
    if (!match) continue;
    const line = locator.at(token.start).line;
    let statement = statements.findIndex((st, i) => st.line <= line && line <= lastLines[i]!);
    if (statement < 0) statement = statements.findIndex((st) => st.offset > token.start);
    const [rule, reason] = [match[1]!, match[2]!.trim()];
    const problem = !(RULE_IDS as readonly string[]).includes(rule)
      ? `-- tidemark:allow names ${rule ? `"${rule}", not a rule` : 'no rule'}; the rules are ${RULE_IDS.join(', ')}`
      : reason === ''
        ? `-- tidemark:allow ${rule} gives no reason; a suppression must say why it is safe here`
        : null;
    if (problem) problems.push({ rule: 'allow-comment', message: problem, offset: token.start, statement });
    else allowed.add(`${statement} ${rule}`);
  }
  return { allowed, problems };
}
