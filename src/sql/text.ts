// A migration file's text as tidemark checksums and runs it: UTF-8 (a byte that is not is exit 2
// naming file:line:column), no BOM, LF line ends. Apart from the lexers, so that hashing files does
// not load them.
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A file's text as checksummed and run: UTF-8 (or an error naming the bad byte), no BOM, LF line ends. */
export function readSqlFile(path: string, fullPath: string): string {
  const bytes = readFileSync(fullPath);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    const at = firstInvalidUtf8(bytes);
    const byte = `0x${at.byte.toString(16).toUpperCase().padStart(2, '0')}`;
    throw new UsageError(`${path}:${at.line}:${at.column}: not valid UTF-8 text (byte ${byte})`, {
      file: path,
      line: at.line,
      column: at.column,
      hint: `save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8 ${path}); tidemark and psql read files as UTF-8`,
    });
  }
  return normalizeText(text);
}

export function normalizeText(text: string): string {
  return (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).replace(/\r\n/g, '\n');
}

/** Line, column (in characters) and value of the first byte that is not valid UTF-8. */
function firstInvalidUtf8(bytes: Uint8Array): { line: number; column: number; byte: number } {
  let lineStart = 0;
  let line = 1;
  while (lineStart <= bytes.length) {
    const newline = bytes.indexOf(10, lineStart);
    const end = newline < 0 ? bytes.length : newline;
    try {
      utf8.decode(bytes.subarray(lineStart, end));
    } catch {
      // Byte by byte: the decoder throws at the first byte that cannot start or continue a character.
      // The offending character starts where an unfinished multi-byte sequence began, if one is open.
      const decoder = new TextDecoder('utf-8', { fatal: true });
      let chars = 0;
      let sequenceStart = -1;
      for (let i = lineStart; i < end; i++) {
        let decoded: string;
        try {
          decoded = decoder.decode(bytes.subarray(i, i + 1), { stream: true });
        } catch {
          return { line, column: chars + 1, byte: bytes[sequenceStart >= 0 ? sequenceStart : i]! };
        }
        chars += Array.from(decoded).length;
        if (decoded.length > 0) sequenceStart = -1;
        else if (sequenceStart < 0) sequenceStart = i;
      }
      return { line, column: chars + 1, byte: bytes[sequenceStart >= 0 ? sequenceStart : end - 1]! };
    }
    if (newline < 0) break;
    lineStart = newline + 1;
    line++;
  }
  return { line: 1, column: 1, byte: bytes[0] ?? 0 };
}
