import type { z } from 'zod';
import { SCIM_ERROR_SCHEMA } from '../model/teamviewer.js';
import { SyncError, type FailureClass } from '../model/failure.js';
import { parseRetryAfter } from '../net/retry.js';
import { outsideText } from '../net/secrets.js';
import { scimErrorSchema, webApiErrorSchema } from './wire.js';
import { failureClassOfStatus } from '../net/http-status.js';

export interface HttpFailure {
  method: string;
  /** The request path, without host or query string. */
  path: string;
  /** Absent when no answer came (connection failure, timeout). */
  status?: number;
  body?: unknown;
  headers?: Record<string, unknown>;
  /** Node or axios error code, e.g. ECONNRESET, ETIMEDOUT, ECONNABORTED. */
  code?: string;
}

/** A call that got no answer at all; `code` names why (ECONNREFUSED, ENOTFOUND, ETIMEDOUT, ...). */
export class NoAnswerError extends SyncError {
  readonly code: string;

  constructor(code: string, message: string, opts: { maybeApplied: boolean }) {
    super('transient', message, opts);
    this.code = code;
  }
}

const DETAIL_LIMIT = 300;

const RATE_LIMIT_TAGS = new Set(['rate_limit_reached', 'too_many_retries']);
const UNAUTHORISED_TAGS = new Set(['invalid_token', 'token_expired', 'wrong_credentials', 'invalid_client']);
const FORBIDDEN_TAGS = new Set(['invalid_permission']);
const TIMEOUT_CODES = new Set(['ECONNABORTED', 'ETIMEDOUT', 'ESOCKETTIMEDOUT']);
/** Failures that happen before a request leaves the machine: a POST that met one cannot have been applied. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
/** TeamViewer's wording for an address that is taken is undocumented; match the common phrasings. */
const ALREADY_EXISTS = /already (exists|in use|registered|taken|been taken|assigned)|exists already|duplicate/i;

interface ErrorBody {
  /** scimType or the Web API `error` category. */
  tag?: string;
  detail?: string;
}

/** Reads a SCIM error body, a TeamViewer Web API error body, or falls back to the raw text. */
function readErrorBody(body: unknown): ErrorBody {
  const parsed = typeof body === 'string' ? parseJson(body) : body;
  const web = webApiErrorSchema.safeParse(parsed);
  if (web.success) return { tag: web.data.error, detail: web.data.error_description ?? web.data.error };
  const scim = scimErrorSchema.safeParse(parsed);
  if (scim.success && isScimError(scim.data)) {
    return { ...(scim.data.scimType ? { tag: scim.data.scimType } : {}), ...(scim.data.detail ? { detail: scim.data.detail } : {}) };
  }
  if (typeof body === 'string') return body.trim() === '' ? {} : { detail: body };
  if (body === undefined || body === null) return {};
  return { detail: JSON.stringify(body) };
}

function isScimError(body: z.infer<typeof scimErrorSchema>): boolean {
  return body.schemas?.includes(SCIM_ERROR_SCHEMA) === true || body.detail !== undefined || body.scimType !== undefined;
}

/** The SCIM error a (successful-looking) body carries, summarised and scrubbed; undefined when it carries none. */
export function scimErrorSummary(body: unknown): string | undefined {
  const scim = scimErrorSchema.safeParse(body);
  if (!scim.success || !isScimError(scim.data)) return undefined;
  return outsideText(`${scim.data.status ?? ''} ${scim.data.scimType ?? ''} ${scim.data.detail ?? ''}`, DETAIL_LIMIT);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Scrubs secrets (before the cut, so no fragment survives it), collapses whitespace, cuts to a readable length. */
function cleanDetail(text: string): string {
  return outsideText(text, DETAIL_LIMIT);
}

function headerValue(headers: Record<string, unknown> | undefined, name: string): unknown {
  if (!headers) return undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

/** TeamViewer's tags and its "already exists" wording first, then the status rule every client shares. */
function classOf(status: number, tag: string | undefined, detail: string | undefined): FailureClass {
  const byStatus = failureClassOfStatus(status);
  if (byStatus === 'rate-limited' || (tag && RATE_LIMIT_TAGS.has(tag))) return 'rate-limited';
  if (byStatus === 'unauthorised' || (tag && UNAUTHORISED_TAGS.has(tag))) return 'unauthorised';
  if (byStatus === 'forbidden' || (tag && FORBIDDEN_TAGS.has(tag))) return 'forbidden';
  // The address exists already: adopt it in the company, or report it as owned outside.
  if (status === 409 || tag === 'uniqueness') return 'conflict';
  if ((status === 400 || status === 422) && detail !== undefined && ALREADY_EXISTS.test(detail)) return 'conflict';
  if (byStatus === 'invalid' && tag === 'not_found') return 'not-found';
  return byStatus;
}

const HINTS: Partial<Record<FailureClass, string>> = {
  unauthorised: 'The TeamViewer script token is invalid, expired or revoked; create a new one in the Management Console.',
  forbidden: 'The script token lacks a permission for this (user management, or "users and admins" to change admins; user groups for groups).',
  transient: 'TeamViewer or the network failed; the call is retried.',
};

function hintFor(failureClass: FailureClass, retryAfterMs: number | undefined): string | undefined {
  if (failureClass === 'rate-limited') {
    return retryAfterMs === undefined ? 'TeamViewer asks to slow down; retrying with backoff.' : `TeamViewer asks to wait ${Math.ceil(retryAfterMs / 1000)} s.`;
  }
  return HINTS[failureClass];
}

function sentence(head: string, hint: string | undefined): string {
  if (hint === undefined) return head;
  return /[.!?…]$/.test(head) ? `${head} ${hint}` : `${head}. ${hint}`;
}

/**
 * Turns a failed TeamViewer call (an error answer or no answer at all) into a classified SyncError.
 * The message names the call and what TeamViewer said; it never carries request headers.
 */
export function classifyHttpFailure(input: HttpFailure): SyncError {
  const call = `${input.method.toUpperCase()} ${input.path}`;
  const isPost = input.method.toUpperCase() === 'POST';

  if (input.status === undefined) {
    const code = input.code ?? 'network error';
    const timedOut = TIMEOUT_CODES.has(code);
    const what = timedOut ? 'no whole answer in time' : code === 'ERR_BODY_TOO_LARGE' ? 'the answer was larger than tvsync accepts' : 'the connection failed';
    // A create that timed out or lost its connection may have reached TeamViewer all the same.
    const maybeApplied = isPost && !NOT_SENT_CODES.has(code);
    return new NoAnswerError(code, sentence(`${call} → ${code} transient: ${what}`, HINTS.transient), { maybeApplied });
  }

  const status = input.status;
  const body = readErrorBody(input.body);
  const detail = body.detail === undefined ? undefined : cleanDetail(body.detail);
  const failureClass = classOf(status, body.tag, detail);
  const retryAfterMs = failureClass === 'rate-limited' ? parseRetryAfter(headerValue(input.headers, 'retry-after')) : undefined;
  const maybeApplied = isPost && failureClass === 'transient';

  const tag = body.tag ? ` (${cleanDetail(body.tag)})` : '';
  const hint = hintFor(failureClass, retryAfterMs);
  const message = sentence(`${call} → ${status} ${failureClass}${tag}: ${detail ?? 'no detail given'}`, hint);
  return new SyncError(failureClass, message, {
    status,
    maybeApplied,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

/**
 * Whether a failed /Groups call means the tenant has no usable SCIM group endpoint, rather than a
 * problem with one group: 405/501 anywhere under /Groups, or 404 on the collection itself (a 404 on
 * /Groups/{id} is a group that is gone).
 */
export function isEndpointUnavailable(err: SyncError, path: string): boolean {
  if (!/^\/Groups(\/|$)/.test(path)) return false;
  if (err.status === 405 || err.status === 501) return true;
  return err.status === 404 && /^\/Groups\/?$/.test(path);
}
