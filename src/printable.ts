// Text from a database or a file, made safe to print: a control character in a table's data, a server
// message or a file name must not move the cursor, clear the screen or recolour the terminal.
import { randomBytes } from 'node:crypto';

/** C0 controls but tab and newline, DEL, and C1 controls (U+009B is a CSI for some terminals). */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
const JSON_UNESCAPED_CONTROL = /[\x7f-\x9f]/g;

const hex = (c: string) => c.charCodeAt(0).toString(16).padStart(2, '0');

/** Each control character as `\xHH`, so that it shows what it is instead of acting. */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${hex(c)}`);
}

/**
 * JSON.stringify escapes C0 controls but not DEL and C1: these become `\u00HH`, still valid JSON.
 * A bigint (a version) is written as its exact digits, a JSON number, never through a float.
 */
export function printableJson(value: unknown): string {
  return exactJson(value).replace(JSON_UNESCAPED_CONTROL, (c) => `\\u00${hex(c)}`);
}

/**
 * JSON.stringify with each bigint as its digits: the replacer turns it into a string marked with a
 * random token no other string can hold, and the marked strings lose their quotes afterwards.
 */
function exactJson(value: unknown): string {
  let token: string | null = null;
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'bigint') return v;
    token ??= randomBytes(8).toString('hex');
    return `${token}${v}`;
  });
  return token === null ? text : text.replace(new RegExp(`"${token}(-?\\d+)"`, 'g'), '$1');
}
