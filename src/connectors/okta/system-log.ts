import type { Logger } from 'pino';
import { z } from 'zod';
import { SyncError } from '../../model/failure.js';
import { payloadReason } from '../../net/payload.js';
import { outsideText } from '../../net/secrets.js';
import type { ChangeBatch, ChangeFeed, ChangeHint } from '../changes.js';
import { SourceReadError, type SourceStateStore } from '../source.js';
import { isAbort, type OktaApi, type ReadContext } from './client.js';
import type { OktaSourceConfig } from './config.js';
import { hintOf, systemLogFilter, type EventScope } from './events.js';
import { httpFailureSchema, oktaLogEventSchema } from './wire.js';

export const POSITION_KEY = 'okta:system-log';
/** Uuids kept with the position; more than this many events at one millisecond is not a real org. */
const MAX_SEEN = 1000;

/**
 * Where the feed stands: the newest `published` instant read, and the uuids already handled there
 * (Okta's `since` is inclusive, so those come back) plus late arrivals that keep coming back.
 */
const positionSchema = z.object({
  since: z.iso.datetime({ offset: true }),
  seen: z.array(z.string()).max(MAX_SEEN),
  /** Okta's next link after the last page read: the documented way to keep polling (its cursor moves past what was read). */
  next: z.string().optional(),
});
type Position = z.infer<typeof positionSchema>;

/**
 * Okta's System Log, polled. Each poll resumes from Okta's own next link where one was kept (a
 * polling query, ascending without `until`, always has one), else from `since`. For a polling query
 * Okta filters `since` on the time an event was stored, which may be later than its `published`
 * time: an event that arrives late comes back with a `published` before the position, is taken
 * once, and its uuid is remembered for as long as Okta keeps returning it.
 */
export class OktaSystemLogFeed implements ChangeFeed {
  readonly name = 'okta-system-log';
  readonly everyMs: number;
  private readonly settings: OktaSourceConfig['changes']['systemLog'];
  private readonly filter: string;
  private readonly orgUrl: string;

  constructor(
    private readonly api: OktaApi,
    config: OktaSourceConfig,
    private readonly state: SourceStateStore,
    private readonly rule: EventScope,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {
    this.settings = config.changes.systemLog;
    this.everyMs = this.settings.every;
    this.filter = systemLogFilter(config.scope);
    this.orgUrl = config.orgUrl;
  }

  private query(since: string, limit: number): string {
    const params = new URLSearchParams({ since, sortOrder: 'ASCENDING', limit: String(limit), filter: this.filter });
    return `/api/v1/logs?${params}`;
  }

  private async position(): Promise<Position | undefined> {
    const text = await this.state.get(POSITION_KEY);
    if (text === undefined) return undefined;
    let stored: unknown;
    try {
      stored = JSON.parse(text);
    } catch {
      stored = undefined;
    }
    const parsed = positionSchema.safeParse(stored);
    if (parsed.success) return parsed.data;
    // A broken position cannot say where to resume; starting from now leaves the gap to the full cycle.
    this.log.warn('stored Okta System Log position is unreadable; starting from now');
    return undefined;
  }

  async poll(opts: { signal?: AbortSignal } = {}): Promise<ChangeBatch> {
    const ctx: ReadContext = { issues: [], requests: 0, ...(opts.signal ? { signal: opts.signal } : {}) };
    try {
      const stored = await this.position();
      if (!stored) return await this.start(ctx);
      return await this.read(stored, ctx);
    } catch (err) {
      if (err instanceof SourceReadError) throw err;
      if (isAbort(err)) throw new SourceReadError('Okta System Log poll was cancelled');
      const failure = this.api.toSyncError(err, 'GET /api/v1/logs');
      const need = failure.failureClass === 'forbidden' ? ' (reading the System Log needs the okta.logs.read scope, or an admin role that may view it)' : '';
      throw new SourceReadError(`Okta System Log poll failed: ${failure.message}${need}`, failure);
    }
  }

  /** The first poll ever: only Okta's "now" (its Date header), so no history is replayed. One request also proves the log is readable. */
  private async start(ctx: ReadContext): Promise<ChangeBatch> {
    const { body } = await this.api.get(this.query(new Date(this.now()).toISOString(), 1), 'logs', ctx);
    this.pageItems(body, 1);
    const since = new Date(ctx.serverDate ?? this.now()).toISOString();
    return { hints: [], requests: ctx.requests ?? 0, commit: () => this.state.set(POSITION_KEY, JSON.stringify({ since, seen: [] })) };
  }

  /** The kept next link, if it still asks what this feed asks (same org, filter and page size); else the poll starts from `since`. */
  private resumeLink(from: Position): URL | undefined {
    if (!from.next) return undefined;
    let link: URL;
    try {
      link = new URL(from.next);
    } catch {
      return undefined;
    }
    const here = new URL(this.query(from.since, this.settings.pageSize), this.orgUrl);
    const same = (name: string) => link.searchParams.get(name) === here.searchParams.get(name);
    return link.origin === here.origin && link.pathname === here.pathname && same('filter') && same('limit') && same('sortOrder') ? link : undefined;
  }

  private pageItems(body: unknown, page: number): unknown[] {
    const items = z.array(z.unknown()).safeParse(body);
    if (items.success) return items.data;
    const error = httpFailureSchema.partial({ status: true }).safeParse(body);
    const said = error.success && error.data.errorCode ? ` (${outsideText(error.data.errorCode, 40)} ${outsideText(error.data.errorSummary ?? '')})` : '';
    throw new SyncError('invalid', `Okta answered page ${page} of /api/v1/logs with something other than a list of events${said}`);
  }

  private async read(from: Position, ctx: ReadContext): Promise<ChangeBatch> {
    const fromMs = Date.parse(from.since);
    const seen = new Set(from.seen);
    const hints = new Map<string, ChangeHint>();
    // Every parsed event this poll returned, by uuid, with its published time.
    const returned = new Map<string, number>();
    let newest = fromMs;
    let malformed = 0;
    const resume = this.resumeLink(from);
    let target: string | URL = resume ?? this.query(from.since, this.settings.pageSize);
    let last: URL | undefined;
    for (let page = 1; page <= this.settings.maxPages; page++) {
      let answer: Awaited<ReturnType<OktaApi['get']>>;
      try {
        answer = await this.api.get(target, 'logs', ctx);
      } catch (err) {
        // A kept cursor Okta no longer takes: start again from the time instead (the uuids keep it from repeating).
        if (!(page === 1 && resume && err instanceof SyncError && err.status === 400)) throw err;
        this.log.info('Okta refused the kept System Log link; resuming from the last event time');
        target = this.query(from.since, this.settings.pageSize);
        answer = await this.api.get(target, 'logs', ctx);
      }
      const { body, next } = answer;
      last = next;
      const items = this.pageItems(body, page);
      for (const raw of items) {
        const parsed = oktaLogEventSchema.safeParse(raw);
        if (!parsed.success) {
          malformed++;
          if (malformed === 1) this.log.warn({ reason: payloadReason(parsed.error) }, 'Okta System Log event skipped: unreadable');
          continue;
        }
        const event = parsed.data;
        const at = Date.parse(event.published);
        returned.set(event.uuid, at);
        newest = Math.max(newest, at);
        if (seen.has(event.uuid) || hints.has(event.uuid)) continue;
        const hint = hintOf(event, this.rule);
        if (hint) hints.set(event.uuid, hint);
      }
      // Okta always links a next page for a polling query; a page that is not full is the end for now.
      if (items.length < this.settings.pageSize || !next) break;
      target = next;
    }
    const keep = new Set(newest === fromMs ? from.seen : []);
    for (const [uuid, at] of returned) if (at === newest || at < fromMs) keep.add(uuid);
    const position: Position = { since: new Date(newest).toISOString(), seen: [...keep].slice(-MAX_SEEN), ...(last ? { next: last.href } : {}) };
    if (keep.size > MAX_SEEN) this.log.warn({ seen: keep.size }, 'more Okta events at one instant than the position keeps; a few may be re-read');
    if (malformed > 0) this.log.warn({ malformed }, 'Okta System Log events skipped as unreadable; the next full cycle covers them');
    return {
      hints: [...hints.values()],
      requests: ctx.requests ?? 0,
      commit: () => this.state.set(POSITION_KEY, JSON.stringify(position)),
    };
  }
}
