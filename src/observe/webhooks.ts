import { setTimeout as sleep } from 'node:timers/promises';
import axios, { type AxiosInstance } from 'axios';
import type { Logger } from 'pino';
import { backoffDelay, parseRetryAfter, type BackoffPolicy } from '../net/retry.js';
import { outsideText, secrets } from '../net/secrets.js';
import { alertBody, type Alert, type AlertDigest, type AlertKind, type WebhookFormat } from './alerts.js';

export interface Webhook {
  name: string;
  /** A secret: never logged, never in an error text. */
  url: string;
  format: WebhookFormat;
  conditions?: readonly AlertKind[];
}

export interface WebhookOptions {
  timeoutMs: number;
  attempts: number;
  rateLimitPerMinute: number;
  /** First retry delay, doubling with jitter up to capMs. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Alerts waiting per webhook beyond which the oldest are dropped. */
  maxPending?: number;
  /** Each message's end: delivered (an alert or a digest) or given up on. */
  onDelivery?: (webhook: string, outcome: 'sent' | 'failed') => void;
}

export interface WebhookStats {
  sent: number;
  failed: number;
  digests: number;
}

const RATE_WINDOW_MS = 60_000;

type Item = { alert: Alert } | { digest: AlertDigest };

/** One webhook's queue: alerts go out one at a time, in order, so a `resolved` never overtakes its `firing`. */
class WebhookQueue {
  readonly stats: WebhookStats = { sent: 0, failed: 0, digests: 0 };
  private readonly pending: Alert[] = [];
  /** When each of the last minute's requests went out. */
  private readonly sentAt: number[] = [];
  private running?: Promise<void>;
  private closed = false;
  private readonly abort = new AbortController();

  constructor(
    readonly webhook: Webhook,
    private readonly opts: Required<WebhookOptions>,
    private readonly http: AxiosInstance,
    private readonly log: Logger,
  ) {}

  push(alert: Alert): void {
    if (this.closed) return;
    this.pending.push(alert);
    this.kick();
  }

  private kick(): void {
    if (this.running) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      // Pushed after the loop's last look: start again.
      if (this.pending.length && !this.closed) this.kick();
    });
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  stop(): void {
    this.closed = true;
    this.abort.abort();
  }

  private async drain(): Promise<void> {
    while (this.pending.length && !this.closed) {
      const now = Date.now();
      while (this.sentAt.length && (this.sentAt[0] ?? 0) <= now - RATE_WINDOW_MS) this.sentAt.shift();
      const used = this.sentAt.length;
      const limit = this.opts.rateLimitPerMinute;
      let item: Item;
      if (used >= limit) {
        // Full: wait for the oldest request of the window to age out.
        await sleep((this.sentAt[0] ?? now) + RATE_WINDOW_MS - now + 10, undefined, { signal: this.abort.signal }).catch(() => undefined);
        continue;
      }
      // The last place in the window goes to a digest of all that waits, so nothing waits a minute behind the limit.
      if (used < limit - 1 || this.pending.length === 1) item = { alert: this.pending.shift() as Alert };
      else item = { digest: { suppressed: this.pending.splice(0), atMs: now } };
      if (this.pending.length > this.opts.maxPending) {
        const overflow = this.pending.splice(0, this.pending.length - this.opts.maxPending);
        this.log.warn({ webhook: this.webhook.name, dropped: overflow.length }, 'webhook alerts dropped: too many waiting');
      }
      this.sentAt.push(now);
      await this.deliver(item);
    }
  }

  private async deliver(item: Item): Promise<void> {
    // Scrubbed once more on the way out: what it quotes was scrubbed when read, but a secret registered since is caught too.
    const body = secrets.scrubDeep(alertBody(this.webhook.format, 'alert' in item ? item.alert : item.digest));
    const what = 'alert' in item ? { condition: item.alert.key, status: item.alert.status } : { digest: item.digest.suppressed.length };
    const policy: BackoffPolicy = { attempts: this.opts.attempts, baseMs: this.opts.backoffBaseMs, capMs: this.opts.backoffCapMs };
    for (let attempt = 0; attempt < this.opts.attempts && !this.closed; attempt++) {
      const outcome = await this.post(body);
      if (outcome.ok) {
        this.stats.sent++;
        if ('digest' in item) this.stats.digests++;
        this.opts.onDelivery(this.webhook.name, 'sent');
        this.log.info({ webhook: this.webhook.name, ...what, attempts: attempt + 1 }, 'alert sent');
        return;
      }
      const last = attempt + 1 >= this.opts.attempts;
      if (!outcome.retryable || last) {
        this.stats.failed++;
        this.opts.onDelivery(this.webhook.name, 'failed');
        this.log.error(
          { webhook: this.webhook.name, ...what, attempts: attempt + 1, error: outcome.error },
          outcome.retryable ? 'alert not delivered: the webhook kept failing' : 'alert not delivered: the webhook refused it',
        );
        return;
      }
      const wait = Math.min(outcome.retryAfterMs ?? backoffDelay(attempt, policy), this.opts.backoffCapMs);
      this.log.warn({ webhook: this.webhook.name, ...what, attempt: attempt + 1, waitMs: wait, error: outcome.error }, 'alert delivery failed; retrying');
      await sleep(wait, undefined, { signal: this.abort.signal }).catch(() => undefined);
    }
  }

  private async post(body: unknown): Promise<{ ok: true } | { ok: false; retryable: boolean; error: string; retryAfterMs?: number }> {
    try {
      const res = await this.http.post(this.webhook.url, body, {
        timeout: this.opts.timeoutMs,
        signal: this.abort.signal,
        headers: { 'content-type': 'application/json' },
        validateStatus: () => true,
        maxRedirects: 0,
        // The answer is not used: read little of it.
        maxContentLength: 64 * 1024,
        responseType: 'text',
      });
      if (res.status >= 200 && res.status < 300) return { ok: true };
      const retryable = res.status === 429 || res.status === 408 || res.status >= 500;
      const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
      return {
        ok: false,
        retryable,
        error: `HTTP ${res.status}${typeof res.data === 'string' && res.data ? `: ${outsideText(res.data, 200)}` : ''}`,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
    } catch (err) {
      // Only the message: an axios error carries the request, and so the URL.
      const message = axios.isAxiosError(err) ? (err.code ?? err.message) : err instanceof Error ? err.message : String(err);
      return { ok: false, retryable: true, error: outsideText(message, 200) };
    }
  }
}

/**
 * Sends alerts to the configured webhooks off the caller's path: `send` only queues. Each webhook
 * has its own queue (a hanging or failing one holds up only itself), retries with exponential
 * back-off and jitter, and a rate limit per minute whose excess goes out as one digest.
 */
export class WebhookDispatcher {
  private readonly queues: WebhookQueue[];

  constructor(webhooks: readonly Webhook[], opts: WebhookOptions, log: Logger, http: AxiosInstance = axios.create()) {
    const full: Required<WebhookOptions> = { backoffBaseMs: 1000, backoffCapMs: 60_000, maxPending: 1000, onDelivery: () => undefined, ...opts };
    this.queues = webhooks.map((w) => new WebhookQueue(w, full, http, log));
  }

  get enabled(): boolean {
    return this.queues.length > 0;
  }

  /** Whether any webhook listens to this kind. */
  wants(kind: AlertKind): boolean {
    return this.queues.some((q) => !q.webhook.conditions || q.webhook.conditions.includes(kind));
  }

  send(alert: Alert): void {
    for (const queue of this.queues) if (!queue.webhook.conditions || queue.webhook.conditions.includes(alert.kind)) queue.push(alert);
  }

  stats(): Record<string, WebhookStats> {
    return Object.fromEntries(this.queues.map((q) => [q.webhook.name, { ...q.stats }]));
  }

  /** Waits up to `graceMs` for what is queued to go out, then drops the rest. */
  async close(graceMs: number): Promise<void> {
    await Promise.race([Promise.all(this.queues.map((q) => q.idle())), sleep(graceMs, undefined, { ref: false })]);
    for (const queue of this.queues) queue.stop();
  }

  /** Resolves once every queue is empty (tests, and `run --once` before it exits). */
  async idle(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.idle()));
  }
}
