import { inspect } from 'node:util';
import { expect } from 'vitest';
import { createLogger, type Logger } from '../../src/observe/log.js';

/** A debug logger whose lines (after tvsync's own scrubbing) land in `lines`. */
export function capturedLogger(): { lines: string[]; log: Logger } {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } }) };
}

/** The forms a server may echo a secret in: raw, URL-encoded, base64 (also as `Basic user:secret`). */
export function echoedForms(secret: string): string[] {
  return [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64'), Buffer.from(`user:${secret}`).toString('base64')];
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
  for (const form of echoedForms(secret).slice(0, 3)) {
    for (let i = 0; i + 8 <= form.length; i++) {
      const fragment = form.slice(i, i + 8);
      if (texts.includes(fragment)) expect.fail(`a fragment of the secret (${form === secret ? 'raw' : 'encoded'}) leaked: …${fragment}…`);
    }
  }
}
