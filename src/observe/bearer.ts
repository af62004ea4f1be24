import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/** Hashing first gives equal-length buffers, so the comparison time says nothing about the token. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  return BEARER.exec(header)?.[1];
}

/** Whether the request carries `expected` as its bearer token (never, when none is configured). */
export function hasToken(req: IncomingMessage, expected: string | undefined): boolean {
  if (expected === undefined || expected === '') return false;
  const given = bearerToken(req);
  return given !== undefined && tokenMatches(given, expected);
}
