import { setTimeout as sleep } from 'node:timers/promises';
import { Client, RequestExecutor } from '@okta/okta-sdk-nodejs';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { DirectoryIssue } from '../../model/directory.js';
import { SyncError, type FailureClass } from '../../model/failure.js';
import { failureClassOfStatus } from '../../net/http-status.js';
import { MAX_RESPONSE_BYTES, boundedBackoff, describeWait, isRedirect, redirectRefusal, requestSignal, waitRefusal } from '../../net/request-limits.js';
import { withRetries, type BackoffPolicy } from '../../net/retry.js';
import { outsideText, registerSecret } from '../../net/secrets.js';
import type { OktaSourceConfig } from './config.js';
import { RateBudget, serverTime, waitForReset, type HeaderBag } from './rate-budget.js';
import { httpFailureSchema, networkFailureSchema, oktaTokenErrorSchema, oktaTokenSchema } from './wire.js';

/** The part of the node-fetch Response the SDK's http client hands back. */
interface WireResponse {
  headers: HeaderBag;
  text(): Promise<string>;
}
export interface ReadContext {
  signal?: AbortSignal;
  issues: DirectoryIssue[];
  /** Okta's clock at the first answer of this read: the next incremental read starts from it. */
  serverDate?: number;
  /** Requests sent, retries included (the fast lane reports what its polls cost). */
  requests?: number;
}
type FetchRequest = Parameters<RequestExecutor['fetch']>[0];

/**
 * The SDK's plain executor held to tvsync's limits; retrying is tvsync's job (see OktaApi). Every
 * request, the token request among them, has a total deadline and a size cap, and follows no
 * redirect: node-fetch would otherwise resend the request (a 307 resends the token request's body,
 * the signed client assertion) to whatever host the redirect names.
 */
class TimedRequestExecutor extends RequestExecutor {
  constructor(private readonly timeoutMs: number) {
    super();
  }
  override async fetch(request: FetchRequest): ReturnType<RequestExecutor['fetch']> {
    // node-fetch options; the SDK's typings for them are incomplete.
    const given = request as { url?: string; method?: string; signal?: AbortSignal };
    const { signal } = requestSignal(this.timeoutMs, given.signal);
    const response = await super.fetch(Object.assign({}, request, { timeout: this.timeoutMs, size: MAX_RESPONSE_BYTES, redirect: 'manual', signal }));
    if (isRedirect(response.status)) {
      response.body?.resume?.();
      const url = new URL(given.url ?? '');
      const what = `${(given.method ?? 'GET').toUpperCase()} ${url.pathname}`;
      throw new SyncError('invalid', redirectRefusal('Okta', what, response.status, response.headers.get('location'), url), { status: response.status });
    }
    return response;
  }
}

function headersOf(value: unknown): HeaderBag | undefined {
  if (typeof value !== 'object' || value === null || !('headers' in value)) return undefined;
  const headers = value.headers;
  if (typeof headers === 'object' && headers !== null && 'get' in headers && typeof headers.get === 'function') return headers as HeaderBag;
  return undefined;
}

/**
 * Service apps: the SDK fetches the access token itself (on first use and again after a 401) and
 * keeps it in `oauth.accessToken`. Every token it obtains is registered before it is sent.
 */
function registerObtainedTokens(client: Client): void {
  const oauth = client.oauth;
  if (!oauth) return;
  const obtain = oauth.getAccessToken.bind(oauth);
  oauth.getAccessToken = async (...args: Parameters<typeof obtain>) => {
    const answer: unknown = await obtain(...args);
    const token = oktaTokenSchema.safeParse(answer);
    if (token.success) registerSecret(token.data.access_token);
    return answer as Awaited<ReturnType<typeof obtain>>;
  };
}

export function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

/**
 * Okta's REST API through the SDK's http client (auth headers, OAuth tokens, DPoP), with tvsync's
 * retry rules. Raw requests rather than the SDK's typed list calls, so every payload meets zod and
 * paging follows Okta's Link headers exactly.
 */
export class OktaApi {
  private client: Client | undefined;
  private readonly budget: RateBudget;
  private readonly backoff: BackoffPolicy & { maxWaitMs: number };

  constructor(
    private readonly config: OktaSourceConfig,
    private readonly log: Logger,
    backoff: BackoffPolicy,
  ) {
    this.budget = new RateBudget(config.rateLimitReservePercent);
    this.backoff = boundedBackoff(backoff);
    const auth = config.auth;
    registerSecret(auth.method === 'apiToken' ? auth.apiToken : auth.privateKey);
  }

  private sdk(): Client {
    if (this.client) return this.client;
    const { config } = this;
    const auth = config.auth;
    // The SDK fills gaps in its config from ~/.okta/okta.yaml, ./okta.yaml and OKTA_CLIENT_*
    // variables. Naming every key it reads (empty when unused) leaves it nothing to fill in.
    const sdkConfig = {
      orgUrl: config.orgUrl,
      authorizationMode: auth.method === 'apiToken' ? 'SSWS' : 'PrivateKey',
      token: auth.method === 'apiToken' ? auth.apiToken : '',
      clientId: auth.method === 'privateKey' ? auth.clientId : '',
      scopes: auth.method === 'privateKey' ? auth.scopes : [],
      privateKey: auth.method === 'privateKey' ? auth.privateKey : '',
      keyId: auth.method === 'privateKey' ? (auth.keyId ?? '') : '',
      userAgent: 'tvsync',
      httpsProxy: config.httpsProxy,
      // The SDK's default executor retries only 429s, and miscounts the wait when Date is missing;
      // withRetries covers 429, 5xx and network failures alike.
      requestExecutor: new TimedRequestExecutor(config.timeout),
      // Its cache keeps every resource with a self link: stale data and growing memory for a daemon.
      cacheMiddleware: null,
    };
    let client: Client;
    try {
      client = new Client(sdkConfig);
    } catch {
      // The message may quote an okta.yaml it tried to read: do not pass it on.
      throw new SyncError(
        'invalid',
        'could not set up the Okta SDK client; check the okta source settings (and any okta.yaml in the working or home directory)',
      );
    }
    if (!config.httpsProxy) client.http.agent = undefined;
    registerObtainedTokens(client);
    this.client = client;
    return client;
  }

  /** Service apps only: fetches (or reuses) the access token and turns a refusal into a clear error. */
  async ensureAccessToken(): Promise<void> {
    const oauth = this.sdk().oauth;
    if (!oauth) return;
    let answer: unknown;
    try {
      answer = await oauth.getAccessToken();
    } catch (err) {
      if (err instanceof SyncError) throw err;
      // The token request carries no caller's signal: an abort is its deadline.
      if (isAbort(err)) throw new SyncError('transient', `Okta's token endpoint did not answer within ${describeWait(this.config.timeout)} (timeout)`);
      if (httpFailureSchema.safeParse(err).success || networkFailureSchema.safeParse(err).success) {
        throw this.toSyncError(err, 'POST /oauth2/v1/token');
      }
      throw new SyncError('unauthorised', 'could not sign the Okta client assertion: privateKey must be an RSA or EC private key, PEM or JWK (JSON)');
    }
    if (oktaTokenSchema.safeParse(answer).success) return;
    oauth.clearCachedAccessToken();
    const refusal = oktaTokenErrorSchema.safeParse(answer);
    const said = refusal.success ? refusal.data : {};
    if (said.errorCode === 'E0000047') throw new SyncError('rate-limited', "Okta's rate limit for the token endpoint is used up");
    const reason = said.error ? ` (${outsideText(said.error, 100)}${said.error_description ? `: ${outsideText(said.error_description)}` : ''})` : '';
    throw new SyncError(
      said.error ? 'unauthorised' : 'transient',
      `Okta did not issue an access token${reason}: check clientId, keyId, the private key and that the scopes ${this.config.auth.method === 'privateKey' ? this.config.auth.scopes.join(', ') : ''} are granted to the service app`,
    );
  }

  toSyncError(err: unknown, what: string): SyncError {
    if (err instanceof SyncError) return err;
    const http = httpFailureSchema.safeParse(err);
    if (http.success) {
      const { status, errorCode, errorSummary } = http.data;
      const failureClass = failureClassOfStatus(status);
      const said = errorCode ? ` (${outsideText(errorCode, 40)}${errorSummary ? ` ${outsideText(errorSummary)}` : ''})` : '';
      const retryAfterMs = status === 429 ? waitForReset(headersOf(err)) : undefined;
      if (retryAfterMs !== undefined && retryAfterMs > this.backoff.maxWaitMs) {
        return new SyncError(failureClass, `Okta ${what} answered ${status}${said}: ${waitRefusal('Okta', retryAfterMs, this.backoff.maxWaitMs)}`, {
          status,
          retryAfterMs,
        });
      }
      return new SyncError(failureClass, `Okta ${what} answered ${status}${said}: ${this.hint(failureClass)}`, { status, retryAfterMs });
    }
    const network = networkFailureSchema.safeParse(err);
    if (network.success && network.data.type === 'max-size') {
      return new SyncError('invalid', `Okta answered ${what} with more than ${MAX_RESPONSE_BYTES / 1024 / 1024} MiB; not read`);
    }
    if (network.success) {
      return new SyncError(
        'transient',
        `Okta at ${this.config.orgUrl} could not be reached for ${what} (${network.data.code ?? network.data.type}): check orgUrl, DNS, proxy and firewall`,
      );
    }
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return new SyncError('invalid', `Okta ${what} failed unexpectedly: ${outsideText(message)}`);
  }

  private hint(failureClass: FailureClass): string {
    const byToken = this.config.auth.method === 'apiToken';
    switch (failureClass) {
      case 'unauthorised':
        return byToken
          ? 'Okta refused the API token; check that it is valid, not revoked, and that its admin is active'
          : "Okta refused the service app's access token; check the client id, key and granted scopes";
      case 'forbidden':
        return byToken
          ? "the API token's admin may not read users, groups and apps"
          : 'grant the service app okta.users.read, okta.groups.read and okta.apps.read and a read-only admin role';
      case 'not-found':
        return 'check orgUrl and the app id or group ids of the scope';
      case 'rate-limited':
        return "Okta's rate limit for this endpoint (shared by every integration in the org) is used up";
      case 'transient':
        return 'Okta had a temporary failure';
      default:
        return 'Okta rejected the request';
    }
  }

  async get(target: string | URL, bucket: string, ctx: ReadContext, policy: BackoffPolicy = this.backoff): Promise<{ body: unknown; next?: URL }> {
    const url = typeof target === 'string' ? new URL(this.config.orgUrl + target) : target;
    return withRetries(() => this.getOnce(url, bucket, ctx), policy, {
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onRetry: (err, waitMs, attempt) =>
        this.log.warn(
          { path: url.pathname, failureClass: err.failureClass, status: err.status, waitMs, attempt: attempt + 1, reason: err.message },
          'Okta call failed; retrying',
        ),
    });
  }

  private async getOnce(url: URL, bucket: string, ctx: ReadContext): Promise<{ body: unknown; next?: URL }> {
    const what = `GET ${url.pathname}`;
    const pause = this.budget.delayMs(bucket);
    if (pause > 0) {
      this.log.debug({ bucket, pauseMs: pause }, 'Okta rate limit nearly used up; slowing down');
      await sleep(pause, undefined, ctx.signal ? { signal: ctx.signal } : undefined);
    }
    let response: WireResponse;
    let text: string;
    // Covers the body too: node-fetch keeps the signal while the text is read.
    const { signal } = requestSignal(this.config.timeout, ctx.signal);
    try {
      await this.ensureAccessToken();
      if (ctx.requests !== undefined) ctx.requests++;
      // node-fetch options; the SDK's typings for them are incomplete.
      const request = { url: url.href, method: 'GET', headers: { Accept: 'application/json' }, signal };
      response = await this.sdk().http.http(url.href, request);
      text = await response.text();
    } catch (err) {
      if (isAbort(err) && ctx.signal?.aborted) throw err;
      if (isAbort(err)) throw new SyncError('transient', `Okta ${what} did not finish within ${describeWait(this.config.timeout)} (timeout)`);
      this.budget.observe(bucket, headersOf(err));
      throw this.toSyncError(err, what);
    }
    this.budget.observe(bucket, response.headers);
    ctx.serverDate ??= serverTime(response.headers);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new SyncError('invalid', `Okta ${what} answered with something that is not JSON: is orgUrl the Okta org itself?`);
    }
    const next = nextLink(response.headers.get('link'), url);
    if (next && next.origin !== url.origin) {
      throw new SyncError('invalid', `Okta's next-page link for ${url.pathname} points to ${next.origin}; credentials are sent to ${url.origin} only`);
    }
    return next ? { body, next } : { body };
  }

  /** Every page of a listing, following Link rel="next" until Okta gives none. */
  async *pages(path: string, bucket: string, ctx: ReadContext): AsyncGenerator<unknown[]> {
    let url: URL | undefined = new URL(this.config.orgUrl + path);
    for (let page = 1; url; page++) {
      if (page > this.config.maxPages) {
        throw new SyncError(
          'invalid',
          `Okta listing ${url.pathname} did not end within ${this.config.maxPages} pages; raise maxPages if the directory is that large`,
        );
      }
      const { body, next } = await this.get(url, bucket, ctx);
      const items = z.array(z.unknown()).safeParse(body);
      if (!items.success) throw new SyncError('invalid', `Okta answered page ${page} of ${url.pathname} with something other than a list`);
      yield items.data;
      url = next;
    }
  }
}

function nextLink(header: string | null, base: URL): URL | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/s.exec(part);
    if (match?.[1] !== undefined && /;\s*rel="?next"?(\s|;|$)/i.test(match[2] ?? '')) return new URL(match[1], base);
  }
  return undefined;
}
