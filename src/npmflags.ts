// `npm run migrate:rollback --dry-run` gives --dry-run to npm, not to tidemark: npm keeps every
// `--flag` before `--` as its own configuration and passes it on only as npm_config_dry_run=true.
// tidemark would then roll back for real. So inside `npm run`, a npm_config_* that names one of the
// running command's options is refused before anything happens, with the command that passes it on.
// npm also exports the settings of its .npmrc files that way: those are npm's own and are left alone.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { UsageError } from './errors.js';

/** The running command's options, and which of them take no value. */
export interface AcceptedOptions {
  names: string[];
  booleans: string[];
}

/** A flag npm kept: tidemark's option name and the value npm recorded ('true' for a bare flag). */
export interface SwallowedFlag {
  option: string;
  value: string;
  /** The environment variable npm put it in. */
  variable: string;
}

/**
 * npm's names for a flag that are not the flag's own: npm 11 expands an abbreviation of one of its
 * settings (`--to` becomes --token-description, with a warning); the positional arguments people
 * write as flags (`--steps=2`) stand for the positional.
 */
const NPM_NAMES: Readonly<Record<string, string>> = { token_description: 'to' };
const POSITIONALS = new Set(['steps', 'target']);

/** npm 7+ runs scripts with npm_command=run-script, npm 11 with run; npx and npm exec with exec. */
function insideNpmRun(env: NodeJS.ProcessEnv): boolean {
  return env.npm_command === 'run' || env.npm_command === 'run-script';
}

export function swallowedNpmFlags(env: NodeJS.ProcessEnv, accepted: AcceptedOptions): SwallowedFlag[] {
  if (!insideNpmRun(env)) return [];
  const npmrc = npmrcSettings(env);
  const order = [...accepted.names, ...POSITIONALS];
  const found: SwallowedFlag[] = [];
  for (const [variable, value] of Object.entries(env)) {
    // An empty value is npm's unset default (npm_config_yes) or a --no-flag: it asks for nothing.
    if (!variable.startsWith('npm_config_') || !value) continue;
    const name = variable.slice('npm_config_'.length);
    const option = NPM_NAMES[name] ?? name.replace(/_/g, '-');
    if (!order.includes(option)) continue;
    // `--steps 2`: npm keeps --steps, and 2 reaches tidemark as the positional anyway.
    if (POSITIONALS.has(option) && value === 'true') continue;
    if (npmrc.get(name) === value) continue;
    found.push({ option, value, variable });
  }
  return found.sort((a, b) => order.indexOf(a.option) - order.indexOf(b.option));
}

/** Refuses (exit 2) when npm kept flags meant for tidemark; `args` are the arguments tidemark did get. */
export function assertNoSwallowedNpmFlags(env: NodeJS.ProcessEnv, accepted: AcceptedOptions, args: string[]): void {
  const swallowed = swallowedNpmFlags(env, accepted);
  if (swallowed.length === 0) return;
  const flags = swallowed.map((f) => (POSITIONALS.has(f.option) ? f.value : `--${f.option}`)).join(' ');
  const words = [...userArguments(env, args), ...swallowed.map((f) => flagWords(f, accepted))].join(' ');
  const one = swallowed.length === 1;
  const variables = swallowed.map((f) => f.variable).join(', ');
  const script = env.npm_lifecycle_event ?? '<script>';
  const message = `npm took ${flags} for itself: tidemark never saw ${one ? 'it' : 'them'} and would run without`;
  throw new UsageError(`${message}; nothing was changed`, {
    hint:
      `put tidemark's arguments after --, so that npm passes them on: \`npm run ${script} -- ${words}\`` +
      ` (if ${variables} ${one ? 'comes' : 'come'} from your environment rather than this command line, ` +
      `unset ${one ? 'it' : 'them'})`,
  });
}

/** The flag as written after `--`: bare, with its value, or a placeholder for a value npm passed on as an argument. */
function flagWords(flag: SwallowedFlag, accepted: AcceptedOptions): string {
  if (POSITIONALS.has(flag.option)) return flag.value;
  if (accepted.booleans.includes(flag.option)) return `--${flag.option}`;
  return `--${flag.option} ${flag.value === 'true' ? '<value>' : flag.value}`;
}

/** The arguments the person gave after the script name: tidemark's arguments minus the script's own words. */
function userArguments(env: NodeJS.ProcessEnv, args: string[]): string[] {
  const unquote = (word: string) => word.replace(/^(['"])(.*)\1$/, '$2');
  const script = (env.npm_lifecycle_script ?? '').split(/\s+/).filter(Boolean).map(unquote);
  for (let own = Math.min(args.length, script.length); own > 0; own--) {
    if (args.slice(0, own).every((arg, i) => arg === script[script.length - own + i])) return args.slice(own);
  }
  return args;
}

/**
 * The settings in the .npmrc files npm read (project, user, global, npm's own), by their
 * npm_config_ name: npm exports them like flags, and they are not flags.
 */
function npmrcSettings(env: NodeJS.ProcessEnv): Map<string, string> {
  const files = [
    env.npm_config_local_prefix && join(env.npm_config_local_prefix, '.npmrc'),
    env.npm_config_userconfig ?? join(homedir(), '.npmrc'),
    env.npm_config_globalconfig,
    env.npm_execpath && join(dirname(dirname(env.npm_execpath)), 'npmrc'),
  ];
  const settings = new Map<string, string>();
  for (const file of files) {
    if (!file) continue;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split(/\r?\n/)) {
      const setting = /^\s*([^=;#\s][^=]*?)\s*(?:=\s*(.*?)\s*)?$/.exec(line);
      if (!setting) continue;
      const key = setting[1]!.toLowerCase().replace(/-/g, '_');
      if (!settings.has(key)) settings.set(key, (setting[2] ?? 'true').replace(/^(['"])(.*)\1$/, '$2'));
    }
  }
  return settings;
}
