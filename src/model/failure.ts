/**
 * Every failure tvsync meets is put in one of these classes; the class decides what happens next.
 * - rate-limited: wait as told (retryAfterMs), no attempt spent
 * - transient: retry with backoff
 * - unauthorised: the whole cycle stops, the sync is marked unhealthy
 * - forbidden / invalid / not-found: this object only, recorded, not retried
 * - conflict: the e-mail exists already (adopt in-company, else owned-outside-company)
 * - owned-outside-company: the e-mail belongs to a TeamViewer account outside the company
 * - unavailable: the endpoint does not exist for this tenant (e.g. /Groups)
 */
export type FailureClass =
  | 'rate-limited'
  | 'transient'
  | 'unauthorised'
  | 'forbidden'
  | 'invalid'
  | 'not-found'
  | 'conflict'
  | 'owned-outside-company'
  | 'unavailable';

export const RETRYABLE: ReadonlySet<FailureClass> = new Set(['rate-limited', 'transient']);

export class SyncError extends Error {
  readonly failureClass: FailureClass;
  readonly status?: number;
  readonly retryAfterMs?: number;
  /** For writes that may have taken effect although the answer was an error (5xx on create). */
  readonly maybeApplied: boolean;

  constructor(failureClass: FailureClass, message: string, opts: { status?: number; retryAfterMs?: number; maybeApplied?: boolean } = {}) {
    super(message);
    this.name = 'SyncError';
    this.failureClass = failureClass;
    if (opts.status !== undefined) this.status = opts.status;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
    this.maybeApplied = opts.maybeApplied ?? false;
  }

  get retryable(): boolean {
    return RETRYABLE.has(this.failureClass);
  }
}

export function isSyncError(err: unknown): err is SyncError {
  return err instanceof SyncError;
}
