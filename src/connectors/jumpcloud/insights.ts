import { z } from 'zod';
import type { Logger } from 'pino';
import { SyncError } from '../../model/failure.js';
import { outsideText } from '../../net/secrets.js';
import type { ChangeBatch, ChangeFeed, ChangeHint } from '../changes.js';
import { SourceReadError, type SourceStateStore } from '../source.js';
import type { Post } from './client.js';
import type { JumpcloudSourceConfig } from './config.js';
import { INSIGHTS_PAGE_SIZE, explain, insightsErrorSchema, insightsEventHeadSchema, insightsEventSchema, type InsightsEvent } from './wire.js';

/**
 * The fast lane's JumpCloud feed: Directory Insights' directory events, polled. The position is the
 * time of the last event seen and the ids seen shortly before it: each poll asks again from a little
 * earlier (`overlap`), because Directory Insights may index an event after later ones, and drops
 * the ids it has already turned into hints.
 */

export const INSIGHTS_PATH = '/insights/directory/v1/events';
const POSITION_KEY = 'insights-position';
/** Pages one poll reads at most; the rest is the next poll's, from where this one stopped. */
const MAX_PAGES = 20;
/** Ids kept for the overlap's dedupe; a burst larger than this in one overlap window costs re-reads, not losses. */
const MAX_SEEN = 20_000;

const positionSchema = z.object({
  /** When the feed started: nothing before it is asked for, the overlap included. */
  sinceMs: z.number().int().nonnegative(),
  atMs: z.number().int().nonnegative(),
  seen: z.array(z.tuple([z.string(), z.number()])),
});
type Position = z.infer<typeof positionSchema>;

export interface InsightsFeedDeps {
  post: Post;
  state: SourceStateStore;
  log: Logger;
  now: () => number;
}

export function createInsightsFeed(config: JumpcloudSourceConfig, deps: InsightsFeedDeps): ChangeFeed {
  const { every, overlap } = config.changes.insights;
  const save = (position: Position) => deps.state.set(POSITION_KEY, JSON.stringify(position));

  async function stored(): Promise<Position | undefined> {
    const text = await deps.state.get(POSITION_KEY);
    if (text === undefined) return undefined;
    try {
      return positionSchema.parse(JSON.parse(text));
    } catch {
      deps.log.warn('the stored Directory Insights position is unreadable; starting again from now');
      return undefined;
    }
  }

  return {
    name: 'jumpcloud-insights',
    everyMs: every,
    async poll(opts = {}): Promise<ChangeBatch> {
      const from = await stored();
      if (!from) {
        // History is the full cycle's business: the first poll only marks where the feed starts.
        const nowMs = deps.now();
        const start: Position = { sinceMs: nowMs, atMs: nowMs, seen: [] };
        return { hints: [], requests: 0, commit: () => save(start) };
      }
      const seen = new Map(from.seen);
      const hints: ChangeHint[] = [];
      let atMs = from.atMs;
      let requests = 0;
      let searchAfter: unknown[] | undefined;
      for (let page = 0; page < MAX_PAGES; page++) {
        const body = {
          service: ['directory'],
          start_time: new Date(Math.max(from.sinceMs, from.atMs - overlap)).toISOString(),
          limit: INSIGHTS_PAGE_SIZE,
          sort: 'ASC',
          ...(searchAfter ? { search_after: searchAfter } : {}),
        };
        requests++;
        const { data, headers } = await deps.post(INSIGHTS_PATH, body, opts.signal).catch((err: unknown) => {
          throw asFeedError(err);
        });
        const events = eventsOf(data, headers);
        for (const raw of events) {
          const head = insightsEventHeadSchema.safeParse(raw);
          if (!head.success) throw new SourceReadError(`Directory Insights returned an event tvsync cannot place (${explain(head.error)}); the position stays`);
          if (seen.has(head.data.id)) continue;
          const ms = Date.parse(head.data.timestamp);
          seen.set(head.data.id, ms);
          atMs = Math.max(atMs, ms);
          hints.push(...hintsOf(raw, head.data, ms, config));
        }
        const limit = count(headers['x-limit']) ?? INSIGHTS_PAGE_SIZE;
        const next = headers['x-search_after'];
        if (events.length < limit || typeof next !== 'string' || next === '') break;
        searchAfter = cursor(next);
      }
      // Only ids inside the next poll's overlap can come back; older ones are dropped.
      const kept = [...seen].filter(([, ms]) => ms >= atMs - overlap).slice(-MAX_SEEN);
      const position: Position = { sinceMs: from.sinceMs, atMs, seen: kept };
      return { hints: dedupe(hints), requests, commit: () => save(position) };
    },
  };
}

function asFeedError(err: unknown): SourceReadError {
  if (err instanceof SourceReadError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // Directory Insights is a plan feature and an admin-role right of its own: say so, the rest of the source may work.
  const refused =
    err instanceof SyncError && err.status === 403
      ? '; the administrator behind apiKey may not read Directory Insights, or the plan does not include it (set changes.insights.enabled: false to rely on the full cycle)'
      : '';
  return new SourceReadError(`Directory Insights could not be read: ${outsideText(message, 500)}${refused}`, err);
}

/** The page's events; a 200 carrying an error, a non-array or a count that does not match its header fails the poll. */
function eventsOf(data: unknown, headers: Record<string, unknown>): unknown[] {
  if (!Array.isArray(data)) {
    const error = insightsErrorSchema.safeParse(data);
    const said = error.success ? outsideText(JSON.stringify('error' in error.data ? error.data.error : error.data.message), 200) : 'not an event list';
    throw new SourceReadError(`Directory Insights answered 200 without events (${said}); the position stays`);
  }
  const announced = count(headers['x-result-count']);
  if (announced !== undefined && announced !== data.length) {
    throw new SourceReadError(`Directory Insights announced ${announced} events and sent ${data.length}; the page is not taken as whole`);
  }
  return data;
}

/** X-Search_After: the JSON array to send back as `search_after` for the next page. */
function cursor(header: string): unknown[] {
  try {
    const parsed: unknown = JSON.parse(header);
    if (Array.isArray(parsed) && parsed.length > 0) return parsed;
  } catch {
    // reported below
  }
  throw new SourceReadError(`Directory Insights sent a paging cursor tvsync cannot read (${outsideText(header, 100)})`);
}

function count(header: unknown): number | undefined {
  if (typeof header !== 'string' && typeof header !== 'number') return undefined;
  const n = Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

const lower = (v: string | null | undefined) => (v ?? '').toLowerCase();
/** Event types that may concern the people or groups in scope; others (logins, devices…) are skipped unread. */
const RELEVANT = /^(user_|group_|user_group_|association_change$)/;
/** A portal or SSO sign-in changes nobody. */
const SIGN_IN = /login|auth|mfa|otp|webauthn|push/;
/** Group fields whose change alters no membership or name. */
const QUIET_GROUP_FIELDS = new Set(['description']);

/** What one event asks for: a person re-read, a full cycle, or nothing. */
export function hintsOf(
  raw: unknown,
  head: { id: string; event_type: string },
  atMs: number,
  config: Pick<JumpcloudSourceConfig, 'scope' | 'nestedGroups'>,
): ChangeHint[] {
  const type = head.event_type;
  if (!RELEVANT.test(type) || SIGN_IN.test(type)) return [];
  const base = { atMs, what: type, eventId: head.id };
  const parsed = insightsEventSchema.safeParse(raw);
  // An event tvsync cannot read may be an unassignment: the full cycle decides.
  if (!parsed.success) return [{ ...base, fullCycle: `a ${type} event tvsync could not read (${explain(parsed.error)})` }];
  const event = parsed.data;
  if (event.success === false) return [];
  if (type === 'association_change') return associationHints(event, base, config);

  const resource = event.resource;
  const resourceType = lower(resource?.type);
  if (resourceType === 'user' && resource?.id && type.startsWith('user_')) return [{ ...base, userId: resource.id }];
  if (resourceType === 'user_group' && resource?.id && /(update|delete)$/.test(type)) {
    if (config.scope.mode === 'groups' && !config.scope.groupIds.includes(resource.id)) return [];
    const fields = event.changes?.map((c) => c.field) ?? [];
    if (fields.length > 0 && fields.every((f) => QUIET_GROUP_FIELDS.has(f))) return [];
    const name = resource.name ? ` ${resource.name}` : '';
    return [{ ...base, fullCycle: `user group${name} (${resource.id}) was ${type.endsWith('delete') ? 'deleted' : 'changed'}` }];
  }
  return [];
}

function associationHints(
  event: InsightsEvent,
  base: { atMs: number; what: string; eventId: string },
  config: Pick<JumpcloudSourceConfig, 'scope' | 'nestedGroups'>,
): ChangeHint[] {
  const connection = event.association?.connection;
  if (!connection) return [];
  const ends = [connection.from, connection.to];
  const of = (t: string) => ends.filter((end) => lower(end.type) === t);
  const [user] = of('user');
  const groups = of('user_group');
  const [app] = of('application');
  const { scope } = config;
  const ourApp = scope.mode === 'application' && app?.object_id === scope.applicationId;
  const removed = lower(event.association?.op) === 'remove';

  // A membership: the member is re-read; the scope rule decides whether the group counts.
  if (user && groups.length === 1) return [{ ...base, userId: user.object_id }];
  // A direct binding to the application.
  if (user && ourApp) return [{ ...base, userId: user.object_id }];
  const [group] = groups;
  if (group && ourApp) {
    const name = group.name ? ` ${group.name}` : '';
    return [{ ...base, fullCycle: `user group${name} (${group.object_id}) was ${removed ? 'unbound from' : 'bound to'} the application` }];
  }
  // A group inside a group changes who counts as a member only where nested groups count.
  if (groups.length === 2 && config.nestedGroups) {
    return [{ ...base, fullCycle: `user group ${groups[0]?.object_id} was ${removed ? 'taken out of' : 'put into'} user group ${groups[1]?.object_id}` }];
  }
  return [];
}

/** One hint per event id. */
function dedupe(hints: ChangeHint[]): ChangeHint[] {
  const ids = new Set<string>();
  return hints.filter((h) => {
    if (h.eventId === undefined) return true;
    if (ids.has(h.eventId)) return false;
    ids.add(h.eventId);
    return true;
  });
}
