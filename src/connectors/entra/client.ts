import { Client, GraphError, type Context, type Middleware } from '@microsoft/microsoft-graph-client';
import type { Logger } from 'pino';
import { SyncError } from '../../model/failure.js';
import { failureClassOfStatus, isThrottling } from '../../net/http-status.js';
import { payloadReason } from '../../net/payload.js';
import { MAX_RESPONSE_BYTES, boundedBackoff, describeWait, isRedirect, redirectRefusal, requestSignal, waitRefusal } from '../../net/request-limits.js';
import { parseRetryAfter, withRetries, type BackoffPolicy } from '../../net/retry.js';
import { outsideText } from '../../net/secrets.js';
import { SourceReadError } from '../source.js';
import type { EntraSourceConfig } from './config.js';
import { pageSchema, type GraphPage } from './wire.js';

/** Thrown when the saved delta state cannot continue (expired link, unreadable change): read everything. */
export class FullReadNeeded extends Error {}

/** What a Graph call is for: names it in messages, and says which permission a 403 lacks. */
export interface Call {
  what: string;
  permission: string;
}
export const LIST_USERS: Call = { what: 'reading users', permission: 'User.Read.All' };
export const READ_GROUPS: Call = { what: 'reading groups', permission: 'GroupMember.Read.All' };
export const LIST_ASSIGNMENTS: Call = { what: 'listing the app assignments', permission: 'Application.Read.All' };

export interface GetOptions {
  /** First request only: later pages carry them in their links. */
  select?: readonly string[];
  top?: number;
  query?: Record<string, string>;
  /** Every request of a listing. */
  headers?: Record<string, string>;
  policy?: BackoffPolicy;
}

/** Where Graph's access tokens come from (see sign-in.ts). */
export interface TokenSource {
  token(signal?: AbortSignal): Promise<string>;
}

/** Thrown by tvsync's own guards; GraphError keeps only an error's name and message, so the name marks it. */
const GUARD_REFUSAL = 'tvsync.refused';

export function guardRefusal(message: string): Error {
  const err = new Error(message);
  err.name = GUARD_REFUSAL;
  return err;
}

/** The body read whole, up to `limit` bytes; a longer one is cancelled, not buffered. */
async function cappedBody(response: Response, limit: number, what: string): Promise<Uint8Array | null> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  const tooLarge = () => guardRefusal(`Graph answered ${what} with more than ${limit / 1024 / 1024} MiB; not read`);
  if (declared > limit) {
    await response.body?.cancel();
    throw tooLarge();
  }
  if (!response.body) return null;
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/**
 * The Graph client's last middleware: fetch without following redirects (the token would go
 * wherever a redirect points) and with the answer read up to a size cap, under the request's
 * signal, so the deadline covers the body too.
 */
class GuardedFetch implements Middleware {
  async execute(context: Context): Promise<void> {
    const url = typeof context.request === 'string' ? context.request : context.request.url;
    const what = `${(context.options as RequestInit | undefined)?.method ?? 'GET'} ${new URL(url).pathname}`;
    const response = await fetch(url, { ...(context.options as RequestInit | undefined), redirect: 'manual' });
    if (isRedirect(response.status)) {
      await response.body?.cancel();
      throw guardRefusal(redirectRefusal('Graph', what, response.status, response.headers.get('location'), url));
    }
    const body = await cappedBody(response, MAX_RESPONSE_BYTES, what);
    context.response = new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }
}

/** Graph over the SDK's request builder, with tvsync's own token, retries and failure classes. */
export class EntraGraph {
  private readonly client: Client;
  private readonly origin: string;
  private readonly backoff: BackoffPolicy & { maxWaitMs: number };

  constructor(
    private readonly config: EntraSourceConfig,
    private readonly tokens: TokenSource,
    private readonly log: Logger,
    backoff: BackoffPolicy,
    private readonly now: () => number,
  ) {
    this.origin = new URL(config.graphBaseUrl).origin;
    this.backoff = boundedBackoff(backoff);
    // No SDK auth or retry middleware: its AuthenticationHandler drops the token for hosts it does not
    // know (any http:// fake, custom hosts) and tvsync retries itself, honouring Retry-After.
    this.client = Client.initWithMiddleware({ baseUrl: `${this.origin}/`, defaultVersion: 'v1.0', middleware: new GuardedFetch() });
  }

  token(signal?: AbortSignal): Promise<string> {
    return this.tokens.token(signal);
  }

  async get(call: Call, target: string, opts: GetOptions = {}, signal?: AbortSignal): Promise<unknown> {
    return this.request('GET', call, target, undefined, opts, signal);
  }

  /** A write (subscriptions only): the same token, retries and failure classes as a read. */
  async send(method: 'POST' | 'PATCH' | 'DELETE', call: Call, target: string, body?: unknown, opts: GetOptions = {}, signal?: AbortSignal): Promise<unknown> {
    return this.request(method, call, target, body, opts, signal);
  }

  private async request(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    call: Call,
    target: string,
    content: unknown,
    opts: GetOptions,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const path = this.relative(target);
    return withRetries(
      async () => {
        const authorization = `Bearer ${await this.token(signal)}`;
        const request = requestSignal(this.config.timeout, signal);
        let builder = this.client
          .api(path)
          .headers({ ...opts.headers, Authorization: authorization })
          .option('signal', request.signal);
        if (opts.select) builder = builder.select([...opts.select]);
        if (opts.top !== undefined) builder = builder.top(opts.top);
        if (opts.query) builder = builder.query(opts.query);
        try {
          const body: unknown =
            method === 'GET'
              ? await builder.get()
              : method === 'POST'
                ? await builder.post(content)
                : method === 'PATCH'
                  ? await builder.patch(content)
                  : await builder.delete();
          return body;
        } catch (err) {
          if (signal?.aborted) throw new SourceReadError(`${call.what}: cancelled`);
          throw this.failure(err, call, request.deadline);
        }
      },
      opts.policy ? boundedBackoff(opts.policy) : this.backoff,
      {
        ...(signal ? { signal } : {}),
        onRetry: (err, waitMs, attempt) =>
          this.log.warn({ status: err.status, waitMs, attempt: attempt + 1, reason: err.message }, `Entra: ${call.what}: ${err.failureClass}, retrying`),
      },
    );
  }

  /** Every page of a listing, following @odata.nextLink to the end (or maxPages). */
  async *pages(call: Call, first: string, opts: GetOptions, signal?: AbortSignal): AsyncGenerator<GraphPage> {
    const later: GetOptions = { ...(opts.headers ? { headers: opts.headers } : {}), ...(opts.policy ? { policy: opts.policy } : {}) };
    let body = await this.get(call, first, opts, signal);
    for (let count = 1; ; count++) {
      const page = pageSchema.safeParse(body);
      if (!page.success) throw new SyncError('invalid', `${call.what}: Graph sent a page tvsync cannot read (${payloadReason(page.error)})`);
      yield page.data;
      const next = page.data['@odata.nextLink'];
      if (!next) return;
      if (count >= this.config.maxPages) {
        throw new SyncError('invalid', `${call.what}: stopped after ${count} pages (maxPages); raise maxPages if the directory really is that large`);
      }
      body = await this.get(call, next, later, signal);
    }
  }

  /** The SDK only recognises https links as absolute, so links become paths on the configured origin. */
  private relative(target: string): string {
    if (!/^https?:\/\//i.test(target)) return target;
    const url = new URL(target);
    if (url.origin !== this.origin) {
      throw new SyncError('invalid', `Graph sent a link to ${url.origin}, not to the configured graphBaseUrl ${this.origin}; not following it`);
    }
    return url.pathname.replace(/^\/v1\.0\//, '/') + url.search;
  }

  private failure(err: unknown, call: Call, deadline: AbortSignal): SyncError | FullReadNeeded {
    if (err instanceof SyncError) return err;
    if (!(err instanceof GraphError) || err.statusCode <= 0) {
      if (err instanceof GraphError && err.code === GUARD_REFUSAL) return new SyncError('invalid', `${call.what}: ${err.message}`);
      if (deadline.aborted) return new SyncError('transient', `${call.what}: Graph did not answer within ${describeWait(this.config.timeout)} (timeout)`);
      const reason = err instanceof Error ? err.message || err.name : 'unknown error';
      return new SyncError('transient', `${call.what}: no answer from ${this.origin} (${outsideText(reason)}); check network access to Microsoft Graph`);
    }
    const status = err.statusCode;
    const code = err.code ?? '';
    const detail = `HTTP ${status}${code ? ` ${outsideText(code, 60)}` : ''}${err.message ? `: ${outsideText(err.message)}` : ''}`;
    if (status === 410 || /^(syncStateNotFound|resyncRequired)$/i.test(code)) return new FullReadNeeded(`${call.what}: ${detail}`);
    const retryAfterMs = parseRetryAfter(err.headers?.get('retry-after') ?? undefined, this.now());
    if (isThrottling(status, retryAfterMs)) {
      const wait = retryAfterMs !== undefined ? { retryAfterMs } : {};
      if (retryAfterMs !== undefined && retryAfterMs > this.backoff.maxWaitMs) {
        return new SyncError('rate-limited', `${call.what}: Graph is throttling (${detail}): ${waitRefusal('Graph', retryAfterMs, this.backoff.maxWaitMs)}`, {
          status,
          ...wait,
        });
      }
      return new SyncError('rate-limited', `${call.what}: Graph is throttling (${detail})`, { status, ...wait });
    }
    const byStatus = failureClassOfStatus(status);
    switch (byStatus) {
      case 'transient':
        return new SyncError('transient', `${call.what}: Graph failed (${detail})`, { status });
      case 'unauthorised':
        return new SyncError('unauthorised', `${call.what}: Graph refused the token (${detail}); check tenantId and the app's credentials`, { status });
      case 'forbidden':
        return new SyncError(
          'forbidden',
          `${call.what}: access denied (${detail}); grant the app the Microsoft Graph application permission ${call.permission} and admin consent`,
          { status },
        );
      default: {
        // Graph names a missing directory object by its code; the status alone is not the whole contract.
        const failureClass = byStatus === 'invalid' && code === 'Request_ResourceNotFound' ? 'not-found' : byStatus;
        return new SyncError(failureClass, `${call.what}: ${detail}`, { status });
      }
    }
  }
}
