import { inspect } from 'node:util';
import { expect } from 'vitest';
import { createLogger, type Logger } from '../../src/observe/log.js';

/** A debug logger whose lines (after tvsync's own scrubbing) land in `lines`. */
export function capturedLogger(): { lines: string[]; log: Logger } {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } }) };
}

/**
 * The forms a server may echo a secret in: raw, URL-encoded, and base64 at each of the three byte
 * alignments it can sit at inside a larger encoded value (`Basic user:secret`), keeping only the
 * characters that depend on the secret's bytes alone.
 */
export function echoedForms(secret: string): string[] {
  const bytes = Buffer.from(secret);
  const aligned = [0, 1, 2].map((pad) => {
    const encoded = Buffer.concat([Buffer.alloc(pad), bytes]).toString('base64');
    return encoded.slice(pad === 0 ? 0 : 4, Math.floor((pad + bytes.length) / 3) * 4);
  });
  return [secret, encodeURIComponent(secret), ...aligned];
}

/** Every text an error or a log holds: message, stack, JSON, and everything inspect can reach. */
export function textsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  const out = [inspect(value, { depth: Infinity, showHidden: true })];
  if (value instanceof Error) out.push(value.message, value.stack ?? '', JSON.stringify(value));
  return out;
}

/** No 8-character run of the secret, in any echoed form, appears in any of the texts. */
export function expectNoLeak(secret: string, ...values: unknown[]): void {
  const texts = values.flatMap(textsOf).join('\n');
  for (const form of echoedForms(secret)) {
    for (let i = 0; i + 8 <= form.length; i++) {
      const fragment = form.slice(i, i + 8);
      if (texts.includes(fragment)) expect.fail(`a fragment of the secret (${form === secret ? 'raw' : 'encoded'}) leaked: …${fragment}…`);
    }
  }
}
