import axios, { type AxiosInstance } from 'axios';
import { z } from 'zod';
import { SyncError, type FailureClass } from '../../model/failure.js';
import { failureClassOfStatus, isThrottling } from '../../net/http-status.js';
import { createLimiter } from '../../net/limiter.js';
import { MAX_RESPONSE_BYTES, boundedBackoff, describeWait, isRedirect, redirectRefusal, requestSignal, waitRefusal } from '../../net/request-limits.js';
import { DEFAULT_BACKOFF, parseRetryAfter, withRetries } from '../../net/retry.js';
import { outsideText, registerSecret } from '../../net/secrets.js';
import { SourceReadError, type SourceDeps } from '../source.js';
import type { JumpcloudSourceConfig } from './config.js';
import { PAGE_SIZE } from './wire.js';

/** One GET against JumpCloud's API, with the answer's x-total-count when it gave one. */
export type Get = (path: string, params: Record<string, string | number>, signal?: AbortSignal) => Promise<{ data: unknown; total?: number }>;

export function createClient(config: JumpcloudSourceConfig, deps: SourceDeps): Get {
  const baseUrl = config.baseUrl.replace(/\/+$/, '');
  const send = sender(config, deps, baseUrl);
  return (path, params, signal) =>
    send('GET', path, signal, async (http, requestSignal) => {
      const res = await http.get<unknown>(path, { params, signal: requestSignal });
      return { data: res.data, total: count(res.headers['x-total-count']) };
    });
}

/** One POST of a JSON body, with the answer's headers (Directory Insights pages through them). */
export type Post = (path: string, body: unknown, signal?: AbortSignal) => Promise<{ data: unknown; headers: Record<string, unknown> }>;

/** Directory Insights lives on its own host (api.jumpcloud.com, not the console's /api). */
export function createInsightsClient(config: JumpcloudSourceConfig, deps: SourceDeps): Post {
  const baseUrl = insightsBaseUrl(config);
  const send = sender(config, deps, baseUrl);
  return (path, body, signal) =>
    send('POST', path, signal, async (http, requestSignal) => {
      const res = await http.post<unknown>(path, body, { signal: requestSignal, headers: { 'Content-Type': 'application/json' } });
      return { data: res.data, headers: { ...res.headers } as Record<string, unknown> };
    });
}

/**
 * insightsBaseUrl when set; else the region's API host for the console hosts JumpCloud runs (US,
 * EU), and the base URL's own origin for anything else (a proxy, a local fake).
 */
export function insightsBaseUrl(config: Pick<JumpcloudSourceConfig, 'baseUrl' | 'insightsBaseUrl'>): string {
  if (config.insightsBaseUrl) return config.insightsBaseUrl.replace(/\/+$/, '');
  const url = new URL(config.baseUrl);
  if (url.hostname === 'console.jumpcloud.com') return 'https://api.jumpcloud.com';
  if (url.hostname === 'console.eu.jumpcloud.com') return 'https://api.eu.jumpcloud.com';
  return url.origin;
}

type Send = <T>(
  method: 'GET' | 'POST',
  path: string,
  signal: AbortSignal | undefined,
  run: (http: AxiosInstance, signal: AbortSignal) => Promise<T>,
) => Promise<T>;

function sender(config: JumpcloudSourceConfig, deps: SourceDeps, baseUrl: string): Send {
  registerSecret(config.apiKey);
  const http = axios.create({
    baseURL: baseUrl,
    // In Node this is an idle timeout; the total deadline is the request's signal.
    timeout: config.timeout,
    // A redirect would carry the API key to wherever it points: none is followed.
    maxRedirects: 0,
    maxContentLength: MAX_RESPONSE_BYTES,
    headers: { Accept: 'application/json', 'x-api-key': config.apiKey, ...(config.orgId ? { 'x-org-id': config.orgId } : {}) },
  });
  const now = deps.now ?? Date.now;
  const backoff = boundedBackoff(deps.backoff ?? DEFAULT_BACKOFF);
  const limits = { timeoutMs: config.timeout, maxWaitMs: backoff.maxWaitMs };
  // One limiter per client, held through retries: a throttled JumpCloud sees fewer requests, not more.
  const slot = createLimiter(config.concurrency);

  return (method, path, signal, run) =>
    slot(() =>
      withRetries(
        async () => {
          if (signal?.aborted) throw new SourceReadError('the JumpCloud read was stopped');
          const request = requestSignal(config.timeout, signal);
          try {
            return await run(http, request.signal);
          } catch (err) {
            throw toFailure(err, method, path, baseUrl, now(), { ...limits, deadline: request.deadline });
          }
        },
        backoff,
        {
          signal,
          onRetry: (err, waitMs, attempt) =>
            deps.log.warn({ path, status: err.status, waitMs, attempt: attempt + 1, reason: err.message }, `JumpCloud request ${err.failureClass}; retrying`),
        },
      ),
    );
}

/** What a person can do about a refusal, by HTTP status. */
const REFUSALS: Partial<Record<number, string>> = {
  401: 'was refused (HTTP 401): JumpCloud did not accept the API key; check apiKey, and set orgId if it belongs to a multi-tenant administrator',
  403: 'was refused (HTTP 403): the administrator behind the API key may not read this, or orgId names an organisation it cannot manage',
  404: 'found nothing (HTTP 404): check the application or group ids in the scope',
  501: 'is not offered by this JumpCloud (HTTP 501)',
};

interface Limits {
  timeoutMs: number;
  maxWaitMs: number;
  /** This request's deadline: fired means too slow, not cancelled. */
  deadline: AbortSignal;
}

/** What JumpCloud said about a failure (its `message`, else the body), scrubbed of secrets before it is cut. */
function saidBy(data: unknown): string {
  if (data === undefined || data === null || data === '') return '';
  const message = z.object({ message: z.string().min(1) }).safeParse(data);
  const text = message.success ? message.data.message : typeof data === 'string' ? data : JSON.stringify(data);
  const said = outsideText(text, 200);
  return said ? `: ${said}` : '';
}

/** Axios errors carry the request headers, the API key among them: only our own message leaves here. */
function toFailure(err: unknown, method: 'GET' | 'POST', path: string, baseUrl: string, nowMs: number, limits: Limits): SyncError | SourceReadError {
  const where = `JumpCloud ${method} ${path}`;
  if (axios.isCancel(err)) {
    if (!limits.deadline.aborted) return new SourceReadError('the JumpCloud read was stopped');
    return new SyncError('transient', `${where} did not finish within ${describeWait(limits.timeoutMs)} (timeout); JumpCloud or the network is too slow`);
  }
  if (!axios.isAxiosError(err)) return new SyncError('invalid', `${where} failed: ${outsideText(err instanceof Error ? err.message : String(err))}`);
  const status = err.response?.status;
  if (status === undefined) {
    if (err.code === axios.AxiosError.ERR_BAD_RESPONSE && /maxContentLength/.test(err.message)) {
      return new SyncError('invalid', `${where} answered with more than ${MAX_RESPONSE_BYTES / 1024 / 1024} MiB; not read`);
    }
    const why = err.code ?? 'no answer';
    return new SyncError('transient', `could not reach JumpCloud at ${baseUrl} for ${method} ${path} (${why}); check baseUrl and the network`);
  }
  if (isRedirect(status)) {
    const location = err.response?.headers.location;
    return new SyncError('invalid', redirectRefusal('JumpCloud', `${method} ${path}`, status, typeof location === 'string' ? location : undefined, baseUrl), {
      status,
    });
  }
  const said = saidBy(err.response?.data);
  const retryAfterMs = parseRetryAfter(err.response?.headers['retry-after'], nowMs);
  if (isThrottling(status, retryAfterMs)) {
    if (retryAfterMs !== undefined && retryAfterMs > limits.maxWaitMs) {
      return new SyncError('rate-limited', `${where} was throttled (HTTP ${status}): ${waitRefusal('JumpCloud', retryAfterMs, limits.maxWaitMs)}`, {
        status,
        retryAfterMs,
      });
    }
    const wait = retryAfterMs !== undefined ? { retryAfterMs } : {};
    return new SyncError('rate-limited', `${where} was throttled (HTTP ${status})`, { status, ...wait });
  }
  // A 501 is an endpoint this JumpCloud does not offer, not a passing failure.
  const failureClass: FailureClass = status === 501 ? 'unavailable' : failureClassOfStatus(status);
  const refusal = REFUSALS[status];
  if (refusal) return new SyncError(failureClass, `${where} ${refusal}${said ? ` (JumpCloud said${said})` : ''}`, { status });
  // JumpCloud's API guidance counts 500 with 502-504 as temporary.
  if (failureClass === 'transient')
    return new SyncError('transient', `${where} failed with HTTP ${status}${said}; JumpCloud is likely having a temporary problem`, { status });
  return new SyncError(failureClass, `${where} was rejected (HTTP ${status}${said})`, { status });
}

function count(header: unknown): number | undefined {
  if (typeof header !== 'string' && typeof header !== 'number') return undefined;
  const n = Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export interface Page {
  items: unknown[];
  total?: number;
}
export type FetchPage = (skip: number) => Promise<Page>;

/**
 * The pages after `first`, each reduced by `keep` as it arrives so raw pages are not held. With the
 * total known (v1 totalCount, v2 x-total-count) the remaining offsets are fetched in parallel (the
 * client's limiter caps how many); after that, or without a total, page follows page until one comes
 * back short or the total is reached. `drifted` says the total moved meanwhile: skip paging may then
 * have shifted records past us.
 */
export async function readAfter<T>(
  first: Page,
  fetchPage: FetchPage,
  keep: (items: unknown[]) => T[],
  what: string,
  maxPages: number,
): Promise<{ kept: T[]; drifted: boolean }> {
  const tooLong = () =>
    new SourceReadError(`JumpCloud's ${what} run past ${maxPages} pages of ${PAGE_SIZE}; raise maxPages if the directory really is that large`);
  const fetch = async (skip: number) => {
    const page = await fetchPage(skip);
    return { size: page.items.length, total: page.total, kept: keep(page.items) };
  };
  const pages: Awaited<ReturnType<typeof fetch>>[] = [];
  let last: { size: number; total?: number | undefined } = { size: first.items.length, total: first.total };
  let lastSkip = 0;
  if (first.total !== undefined && first.items.length === PAGE_SIZE) {
    const pageCount = Math.ceil(first.total / PAGE_SIZE);
    if (pageCount > maxPages) throw tooLong();
    const skips = Array.from({ length: Math.max(0, pageCount - 1) }, (_, i) => (i + 1) * PAGE_SIZE);
    pages.push(...(await Promise.all(skips.map(fetch))));
    last = pages.at(-1) ?? last;
    lastSkip = skips.at(-1) ?? 0;
  }
  while (last.size === PAGE_SIZE && (last.total === undefined || lastSkip + PAGE_SIZE < last.total)) {
    if (pages.length + 1 >= maxPages) throw tooLong();
    lastSkip += PAGE_SIZE;
    const next = await fetch(lastSkip);
    pages.push(next);
    last = next;
  }
  const drifted = first.total !== undefined && pages.some((page) => page.total !== undefined && page.total !== first.total);
  if (first.total !== undefined && !drifted) {
    // Counts must add up: a short page before the end, or fewer records than announced, would
    // otherwise read as people who left.
    const sizes = [first.items.length, ...pages.map((page) => page.size)];
    const received = sizes.reduce((sum, size) => sum + size, 0);
    const short = sizes.slice(0, -1).findIndex((size) => size < PAGE_SIZE);
    if (received !== first.total || short >= 0) {
      const where = short >= 0 ? ` (page ${short + 1} held ${sizes[short]} of ${PAGE_SIZE})` : '';
      throw new SourceReadError(
        `JumpCloud's ${what} came back with ${received} records while it announced ${first.total}${where}; the read is not taken as whole`,
      );
    }
  }
  return { kept: pages.flatMap((page) => page.kept), drifted };
}
