import { DEFAULT_BACKOFF, type BackoffPolicy } from '../net/retry.js';
import { outsideText } from '../net/secrets.js';

/**
 * The limits every IdP request is held to: a total deadline (headers and body), a size cap on what
 * is read, no credential following a redirect to another host, and no wait longer than tvsync is
 * willing to sleep inside one read.
 */

/** Largest answer read from an IdP; a page of a thousand users is well under a megabyte. */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

/** One request's signal: the caller's (a cancelled read) and the total deadline, whichever fires first. */
export function requestSignal(timeoutMs: number, caller?: AbortSignal): { signal: AbortSignal; deadline: AbortSignal } {
  const deadline = AbortSignal.timeout(timeoutMs);
  return { signal: caller ? AbortSignal.any([caller, deadline]) : deadline, deadline };
}

/** The backoff with the longest wait filled in: no connector sleeps unbounded on an IdP's say-so. */
export function boundedBackoff(backoff: BackoffPolicy): BackoffPolicy & { maxWaitMs: number } {
  return { ...backoff, maxWaitMs: backoff.maxWaitMs ?? DEFAULT_BACKOFF.maxWaitMs ?? 120_000 };
}

/** "2 minutes", "11.6 days": for waits named in messages. */
export function describeWait(ms: number): string {
  const units: [string, number][] = [
    ['day', 86_400_000],
    ['hour', 3_600_000],
    ['minute', 60_000],
    ['second', 1000],
  ];
  for (const [unit, size] of units) {
    if (ms >= size) {
      const n = Math.round((ms / size) * 10) / 10;
      return `${n} ${unit}${n === 1 ? '' : 's'}`;
    }
  }
  return `${ms} ms`;
}

/** The sentence for an IdP that asks tvsync to wait longer than it will. */
export function waitRefusal(idp: string, asked: number, limit: number): string {
  return `${idp} asks to wait ${describeWait(asked)} before the next request, longer than tvsync waits within a read (${describeWait(limit)}); the read stops here and the next cycle tries again`;
}

/**
 * The sentence for a redirect tvsync will not follow. Only the target's origin is named: the rest
 * of a Location may carry anything.
 */
export function redirectRefusal(idp: string, what: string, status: number, location: string | null | undefined, from: string | URL): string {
  let target = 'no location';
  if (location) {
    try {
      target = new URL(location, from).origin;
    } catch {
      target = `an unreadable location (${outsideText(location, 80)})`;
    }
  }
  return `${idp} answered ${what} with a redirect (HTTP ${status}) to ${target}; tvsync sends credentials only to the configured host and follows no redirects. Check that the configured URL is the service's own address`;
}

/** True for a status that is a redirect. */
export function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}
