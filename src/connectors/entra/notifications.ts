import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { SyncError } from '../../model/failure.js';
import { payloadReason } from '../../net/payload.js';
import { scrubSecrets } from '../../net/secrets.js';
import type { ChangeHint, HookAnswer, HookReceiver, HookRequest } from '../changes.js';
import type { SourceStateStore } from '../source.js';
import type { Call, EntraGraph } from './client.js';
import type { EntraSourceConfig } from './config.js';
import { notificationCollectionSchema, subscriptionSchema } from './wire.js';

/**
 * Graph change notifications: the subscriptions on users and groups (made, renewed before they
 * expire and made again when Graph forgot them, from the feed's poll), and the hook that receives
 * what Graph pushes. A notification names a user or a group, never the member who changed, so a
 * group's notification asks the delta feed which members changed (without moving its position).
 */

export const SUBSCRIPTIONS_KEY = 'entra.subscriptions';
const RESOURCES = ['users', 'groups'] as const;
type Resource = (typeof RESOURCES)[number];
const MANAGE: Call = { what: 'managing Graph change notification subscriptions', permission: 'User.Read.All and Group.Read.All' };
/** After a failed subscription call, the polls leave Graph alone this long (a failed creation costs Graph a validation call). */
const RETRY_AFTER_MS = 5 * 60_000;
/** Graph drops a notification answered later than about 3 s; a group's member look-up gets less than that. */
const PEEK_BUDGET_MS = 2000;
const MAX_VALIDATION_TOKEN = 4096;

const subscriptionsStateSchema = z.object({
  version: z.literal(1),
  notificationUrl: z.string(),
  items: z.partialRecord(z.enum(RESOURCES), z.object({ id: z.string(), expiresAt: z.number() })),
});
type SubscriptionsState = z.output<typeof subscriptionsStateSchema>;

export class EntraSubscriptions {
  private pausedUntil = 0;

  constructor(
    private readonly graph: EntraGraph,
    private readonly config: EntraSourceConfig,
    private readonly state: SourceStateStore,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  /** Makes, renews or removes subscriptions as the config says; logs and waits on failure, never throws. */
  async upkeep(signal?: AbortSignal): Promise<void> {
    if (this.now() < this.pausedUntil) return;
    try {
      await this.maintain(signal);
    } catch (err) {
      if (signal?.aborted) return;
      this.pausedUntil = this.now() + RETRY_AFTER_MS;
      const reason = scrubSecrets(err instanceof Error ? err.message : String(err));
      this.log.warn({ reason }, 'Entra: change notification subscriptions could not be kept up; trying again in 5 minutes (the delta feed still runs)');
    }
  }

  private async load(): Promise<SubscriptionsState | undefined> {
    const text = await this.state.get(SUBSCRIPTIONS_KEY);
    if (text === undefined) return undefined;
    try {
      return subscriptionsStateSchema.parse(JSON.parse(text));
    } catch {
      return undefined;
    }
  }

  private async maintain(signal?: AbortSignal): Promise<void> {
    const n = this.config.changes.notifications;
    const saved = await this.load();
    if (!n.enabled || n.notificationUrl === undefined || n.clientState === undefined) {
      if (saved) await this.removeAll(saved, signal);
      return;
    }
    let current: SubscriptionsState = saved ?? { version: 1, notificationUrl: n.notificationUrl, items: {} };
    if (current.notificationUrl !== n.notificationUrl) {
      await this.removeAll(current, signal);
      current = { version: 1, notificationUrl: n.notificationUrl, items: {} };
    }
    for (const resource of RESOURCES) {
      const item = current.items[resource];
      const left = item ? item.expiresAt - this.now() : 0;
      if (item && left > n.lifetime / 3) continue;
      const renewed = item && left > 0 ? await this.renew(item.id, signal) : undefined;
      const made = renewed ?? (await this.create(resource, n.notificationUrl, n.clientState, signal));
      current = { ...current, items: { ...current.items, [resource]: made } };
      await this.state.set(SUBSCRIPTIONS_KEY, JSON.stringify(current));
    }
  }

  private expiry(): string {
    return new Date(this.now() + this.config.changes.notifications.lifetime).toISOString();
  }

  private parsed(body: unknown, what: string): { id: string; expiresAt: number } {
    const sub = subscriptionSchema.safeParse(body);
    if (!sub.success) throw new SyncError('invalid', `${what}: Graph sent a subscription tvsync cannot read (${payloadReason(sub.error)})`);
    return { id: sub.data.id, expiresAt: Date.parse(sub.data.expirationDateTime) };
  }

  private async create(resource: Resource, notificationUrl: string, clientState: string, signal?: AbortSignal): Promise<{ id: string; expiresAt: number }> {
    const call: Call = { ...MANAGE, what: `subscribing to changes of ${resource}` };
    // Graph validates notificationUrl before answering; the next poll tries again rather than a quick retry making a twin.
    const body = await this.graph.send(
      'POST',
      call,
      '/subscriptions',
      { changeType: 'updated,deleted', notificationUrl, resource, expirationDateTime: this.expiry(), clientState, latestSupportedTlsVersion: 'v1_2' },
      { policy: { attempts: 1, baseMs: 0, capMs: 0 } },
      signal,
    );
    const made = this.parsed(body, call.what);
    this.log.info({ resource, subscriptionId: made.id, expires: new Date(made.expiresAt).toISOString() }, 'Entra: change notification subscription made');
    return made;
  }

  /** PATCH expirationDateTime; undefined when Graph no longer has the subscription (it is then made again). */
  private async renew(id: string, signal?: AbortSignal): Promise<{ id: string; expiresAt: number } | undefined> {
    const call: Call = { ...MANAGE, what: `renewing subscription ${id}` };
    try {
      const body = await this.graph.send('PATCH', call, `/subscriptions/${encodeURIComponent(id)}`, { expirationDateTime: this.expiry() }, {}, signal);
      const renewed = this.parsed(body, call.what);
      this.log.info({ subscriptionId: id, expires: new Date(renewed.expiresAt).toISOString() }, 'Entra: change notification subscription renewed');
      return renewed;
    } catch (err) {
      if (err instanceof SyncError && err.failureClass === 'not-found') return undefined;
      throw err;
    }
  }

  private async removeAll(saved: SubscriptionsState, signal?: AbortSignal): Promise<void> {
    for (const item of Object.values(saved.items)) {
      try {
        await this.graph.send(
          'DELETE',
          { ...MANAGE, what: `removing subscription ${item.id}` },
          `/subscriptions/${encodeURIComponent(item.id)}`,
          undefined,
          {},
          signal,
        );
      } catch (err) {
        if (!(err instanceof SyncError && err.failureClass === 'not-found')) throw err;
      }
    }
    await this.state.delete(SUBSCRIPTIONS_KEY);
  }
}

/** Hashing first gives equal-length buffers, so the comparison time says nothing about the secret. */
function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest());
}

export interface NotificationDeps {
  clientState: string;
  log: Logger;
  now: () => number;
  /** The feed's groups delta from its stored position: which members of these groups changed. */
  peekGroups?: (groupIds: ReadonlySet<string>, signal?: AbortSignal) => Promise<ChangeHint[]>;
}

export class EntraNotifications implements HookReceiver {
  readonly name = 'entra';
  /** Notifications dropped because their clientState did not match. */
  dropped = 0;

  constructor(private readonly deps: NotificationDeps) {}

  async receive(req: HookRequest): Promise<{ answer: HookAnswer; hints: ChangeHint[] }> {
    const none = (status: number, body?: string) => ({ answer: { status, ...(body ? { headers: { 'content-type': 'text/plain' }, body } : {}) }, hints: [] });
    if (req.method !== 'POST') return none(405);
    const token = req.query.validationToken;
    if (token !== undefined) {
      // Graph's handshake: the token back, as plain text, at once.
      if (token.length === 0 || token.length > MAX_VALIDATION_TOKEN) return none(400);
      return { answer: { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: token }, hints: [] };
    }
    let json: unknown;
    try {
      json = JSON.parse(req.body);
    } catch {
      return none(400);
    }
    const collection = notificationCollectionSchema.safeParse(json);
    if (!collection.success) {
      this.deps.log.warn({ reason: payloadReason(collection.error) }, 'Entra: a change notification tvsync cannot read was refused');
      return none(400);
    }
    const atMs = this.deps.now();
    const hints: ChangeHint[] = [];
    const groups = new Set<string>();
    let dropped = 0;
    for (const item of collection.data.value) {
      if (!sameSecret(item.clientState ?? '', this.deps.clientState)) {
        dropped++;
        continue;
      }
      const kind = /^\/?users\//i.test(item.resource) ? 'user' : /^\/?groups\//i.test(item.resource) ? 'group' : undefined;
      const id = item.resourceData?.id ?? item.resource.split('/').pop();
      if (!kind || !id) continue;
      if (kind === 'user') hints.push({ userId: id, atMs, what: `graph notification: user ${item.changeType}` });
      else groups.add(id);
    }
    if (dropped > 0) {
      this.dropped += dropped;
      this.deps.log.warn({ dropped }, 'Entra: change notifications with a wrong clientState were dropped');
    }
    if (groups.size > 0 && this.deps.peekGroups) {
      try {
        hints.push(...(await this.deps.peekGroups(groups, AbortSignal.timeout(PEEK_BUDGET_MS))));
      } catch (err) {
        // The delta feed's next round finds the same members.
        this.deps.log.info(
          { reason: scrubSecrets(err instanceof Error ? err.message : String(err)) },
          'Entra: members of a notified group not read now; the delta feed will',
        );
      }
    }
    const seen = new Set<string>();
    const unique = hints.filter((h) => {
      const key = h.userId ?? `\u0000${h.fullCycle ?? ''}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    return { answer: { status: 202 }, hints: unique };
  }
}
