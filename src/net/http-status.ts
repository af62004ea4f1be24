import type { FailureClass } from '../model/failure.js';

/**
 * What an HTTP error status says on its own, before anything the answer's body or a service's own
 * conventions add (a TeamViewer error tag, Graph's resync codes, JumpCloud's 501): the shared rule
 * of every client tvsync has.
 */
export function failureClassOfStatus(status: number): FailureClass {
  if (status === 429) return 'rate-limited';
  if (status === 401) return 'unauthorised';
  if (status === 403) return 'forbidden';
  if (status === 408 || status >= 500) return 'transient';
  if (status === 404) return 'not-found';
  return 'invalid';
}

/** A 429, or a 5xx that says when to come back: the service is shedding load, so its wait is kept. */
export function isThrottling(status: number, retryAfterMs: number | undefined): boolean {
  return status === 429 || (status >= 500 && retryAfterMs !== undefined);
}
