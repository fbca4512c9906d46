// Text from a database or a file, made safe to print: a control character in a table's data, a server
// message or a file name must not move the cursor, clear the screen or recolour the terminal.

/** C0 controls but tab and newline, DEL, and C1 controls (U+009B is a CSI for some terminals). */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
const JSON_UNESCAPED_CONTROL = /[\x7f-\x9f]/g;

const hex = (c: string) => c.charCodeAt(0).toString(16).padStart(2, '0');

/** Each control character as `\xHH`, so that it shows what it is instead of acting. */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${hex(c)}`);
}

/** JSON.stringify escapes C0 controls but not DEL and C1: these become `\u00HH`, still valid JSON. */
export function printableJson(value: unknown): string {
  return JSON.stringify(value).replace(JSON_UNESCAPED_CONTROL, (c) => `\\u00${hex(c)}`);
}
