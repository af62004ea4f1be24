import { outsideText } from '../net/secrets.js';

/*
 * Alert conditions, pure: from what is known of a sync now (its last cycle, quarantine, what is
 * held for approval, addresses owned outside the company, the queue), the conditions that hold.
 * Each has a stable key; whoever keeps the record of what was alerted sends `firing` once when a
 * key appears and `resolved` once when it goes.
 */

/** What an alert may be about; a webhook listens to all of them unless it names some. */
export const ALERT_KINDS = ['cycle-failed', 'quarantined', 'held', 'outside-company', 'fast-lane-backlog'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** The shape of the generic JSON body; a change that breaks a receiver raises it. */
export const ALERT_BODY_VERSION = 1;

export interface SyncFacts {
  sync: string;
  /** The last finished cycle. */
  lastCycle?: { cycleId: string; outcome: 'succeeded' | 'partial' | 'failed'; failureClass?: string; message?: string };
  quarantine?: { untilMs: number; reason?: string };
  /** Removals held for approval, by what they are (the last cycle's, and the fast lane's). */
  held: { deactivations: number; groupDeletions: number; memberRemovals: number; roleRemovals: number; fastLaneDeactivations: number };
  /** Addresses a create found owned by an account outside the company. */
  outsideCompany: readonly { email: string; atMs: number; message: string }[];
  /** Jobs waiting in the sync's operations queue (operations and user syncs), and how long the oldest has waited. */
  backlog?: { waiting: number; oldestAgeMs?: number };
  /** Kinds not known for sure this time (a cycle's report not yet stored): neither fired nor resolved. */
  unsettled?: readonly AlertKind[];
}

export interface BacklogThresholds {
  waiting: number;
  ageMs: number;
}

export type AlertDetails = Record<string, string | number | boolean>;

export interface Condition {
  key: string;
  kind: AlertKind;
  sync: string;
  summary: string;
  details: AlertDetails;
}

export interface Alert {
  key: string;
  kind: AlertKind;
  sync: string;
  status: 'firing' | 'resolved';
  summary: string;
  details: AlertDetails;
  atMs: number;
  /** When the condition was first alerted (resolved alerts). */
  sinceMs?: number;
}

/** What went over a webhook's rate limit, sent as one message. */
export interface AlertDigest {
  suppressed: readonly Alert[];
  atMs: number;
}

export function conditionKey(kind: AlertKind, sync: string, subject?: string): string {
  return subject === undefined ? `${kind}:${sync}` : `${kind}:${sync}:${subject}`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Pure: the conditions that hold for one sync. */
export function activeConditions(facts: SyncFacts, backlog: BacklogThresholds, nowMs: number): Condition[] {
  const { sync } = facts;
  const out: Condition[] = [];
  const last = facts.lastCycle;
  if (last?.outcome === 'failed') {
    const details: AlertDetails = { cycleId: last.cycleId };
    if (last.failureClass) details.failureClass = last.failureClass;
    out.push({
      key: conditionKey('cycle-failed', sync),
      kind: 'cycle-failed',
      sync,
      summary: `The last cycle of sync ${sync} failed${last.message ? `: ${outsideText(last.message, 400)}` : ''}`,
      details,
    });
  }
  if (facts.quarantine && facts.quarantine.untilMs > nowMs) {
    out.push({
      key: conditionKey('quarantined', sync),
      kind: 'quarantined',
      sync,
      summary: `Sync ${sync} is quarantined until ${new Date(facts.quarantine.untilMs).toISOString()}: scheduled cycles are skipped until a manual cycle succeeds${
        facts.quarantine.reason ? ` (${outsideText(facts.quarantine.reason, 300)})` : ''
      }`,
      details: { until: new Date(facts.quarantine.untilMs).toISOString() },
    });
  }
  const held = facts.held;
  const parts: string[] = [];
  if (held.deactivations) parts.push(plural(held.deactivations, 'deactivation'));
  if (held.fastLaneDeactivations) parts.push(`${plural(held.fastLaneDeactivations, 'deactivation')} of the fast lane`);
  if (held.groupDeletions) parts.push(plural(held.groupDeletions, 'group deletion'));
  if (held.memberRemovals) parts.push(plural(held.memberRemovals, 'member removal'));
  if (held.roleRemovals) parts.push(plural(held.roleRemovals, 'role removal'));
  if (parts.length) {
    out.push({
      key: conditionKey('held', sync),
      kind: 'held',
      sync,
      summary: `Sync ${sync} holds ${parts.join(', ')} for approval (tvsync approve)`,
      details: { ...held },
    });
  }
  for (const record of facts.outsideCompany) {
    const email = record.email.toLowerCase();
    out.push({
      key: conditionKey('outside-company', sync, email),
      kind: 'outside-company',
      sync,
      summary: `Sync ${sync}: ${email} is owned by a TeamViewer account outside the company, so it was not created`,
      details: { email, since: new Date(record.atMs).toISOString(), message: outsideText(record.message, 300) },
    });
  }
  const queue = facts.backlog;
  if (queue && (queue.waiting >= backlog.waiting || (queue.oldestAgeMs ?? 0) >= backlog.ageMs)) {
    const details: AlertDetails = { waiting: queue.waiting };
    if (queue.oldestAgeMs !== undefined) details.oldestWaitingSeconds = Math.round(queue.oldestAgeMs / 1000);
    out.push({
      key: conditionKey('fast-lane-backlog', sync),
      kind: 'fast-lane-backlog',
      sync,
      summary: `Sync ${sync} has a backlog: ${plural(queue.waiting, 'job')} waiting${
        queue.oldestAgeMs !== undefined ? `, the oldest for ${Math.round(queue.oldestAgeMs / 1000)} s` : ''
      } (thresholds: ${backlog.waiting} jobs, ${Math.round(backlog.ageMs / 1000)} s)`,
      details,
    });
  }
  return out;
}

/** Pure: what to send, from the conditions that hold and those already alerted (key → first alerted). */
export function alertChanges(
  active: readonly Condition[],
  alerted: ReadonlyMap<string, { kind: AlertKind; summary: string; sinceMs: number }>,
  nowMs: number,
): { firing: Alert[]; resolved: Alert[] } {
  const activeKeys = new Set(active.map((c) => c.key));
  const firing = active.filter((c) => !alerted.has(c.key)).map((c) => ({ ...c, status: 'firing' as const, atMs: nowMs }));
  const resolved: Alert[] = [];
  for (const [key, record] of alerted) {
    if (activeKeys.has(key)) continue;
    const sync = key.split(':')[1] ?? '';
    resolved.push({
      key,
      kind: record.kind,
      sync,
      status: 'resolved',
      summary: `Resolved: ${record.summary}`,
      details: {},
      atMs: nowMs,
      sinceMs: record.sinceMs,
    });
  }
  return { firing, resolved };
}

export type WebhookFormat = 'generic' | 'slack' | 'teams';

function digestSummary(digest: AlertDigest): string {
  const n = digest.suppressed.length;
  return `${plural(n, 'more alert')} went over this webhook's rate limit: ${digest.suppressed
    .slice(0, 20)
    .map((a) => `${a.status} ${a.key}`)
    .join('; ')}${n > 20 ? '; …' : ''}`;
}

/** The generic JSON body: { version, condition, kind, status, sync, summary, details, at, since? }. */
export function genericBody(alert: Alert | AlertDigest): Record<string, unknown> {
  if ('suppressed' in alert) {
    return {
      version: ALERT_BODY_VERSION,
      condition: 'rate-limited',
      kind: 'digest',
      status: 'firing',
      summary: digestSummary(alert),
      details: { count: alert.suppressed.length },
      alerts: alert.suppressed.map((a) => ({ condition: a.key, kind: a.kind, status: a.status, sync: a.sync, summary: a.summary })),
      at: new Date(alert.atMs).toISOString(),
    };
  }
  return {
    version: ALERT_BODY_VERSION,
    condition: alert.key,
    kind: alert.kind,
    status: alert.status,
    sync: alert.sync,
    summary: alert.summary,
    details: alert.details,
    at: new Date(alert.atMs).toISOString(),
    ...(alert.sinceMs !== undefined ? { since: new Date(alert.sinceMs).toISOString() } : {}),
  };
}

/** Slack's mrkdwn treats &, < and > as markup. */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function title(alert: Alert | AlertDigest): string {
  if ('suppressed' in alert) return 'tvsync: alerts over the rate limit';
  return `tvsync ${alert.status === 'firing' ? 'FIRING' : 'RESOLVED'}: ${alert.kind} (${alert.sync})`;
}

function facts(alert: Alert | AlertDigest): { title: string; value: string }[] {
  if ('suppressed' in alert) return [{ title: 'alerts', value: String(alert.suppressed.length) }];
  return [
    { title: 'sync', value: alert.sync },
    { title: 'condition', value: alert.key },
    ...Object.entries(alert.details).map(([key, value]) => ({ title: key, value: String(value) })),
    { title: 'at', value: new Date(alert.atMs).toISOString() },
  ];
}

/** A Slack incoming-webhook message: `text` for notifications, Block Kit for the channel. */
export function slackBody(alert: Alert | AlertDigest): Record<string, unknown> {
  const summary = 'suppressed' in alert ? digestSummary(alert) : alert.summary;
  return {
    text: slackEscape(cut(`${title(alert)}: ${summary}`, 3000)),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: cut(title(alert), 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: slackEscape(cut(summary, 3000)) } },
      {
        type: 'section',
        // Block Kit takes at most ten fields per section.
        fields: facts(alert)
          .slice(0, 10)
          .map((f) => ({ type: 'mrkdwn', text: slackEscape(cut(`*${f.title}*\n${f.value}`, 2000)) })),
      },
    ],
  };
}

/** A Teams message carrying an Adaptive Card, as Teams workflows and incoming webhooks take it. */
export function teamsBody(alert: Alert | AlertDigest): Record<string, unknown> {
  const summary = 'suppressed' in alert ? digestSummary(alert) : alert.summary;
  const resolved = !('suppressed' in alert) && alert.status === 'resolved';
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            { type: 'TextBlock', text: title(alert), weight: 'Bolder', size: 'Medium', wrap: true, color: resolved ? 'Good' : 'Attention' },
            { type: 'TextBlock', text: summary, wrap: true },
            { type: 'FactSet', facts: facts(alert) },
          ],
        },
      },
    ],
  };
}

export function alertBody(format: WebhookFormat, alert: Alert | AlertDigest): Record<string, unknown> {
  if (format === 'slack') return slackBody(alert);
  if (format === 'teams') return teamsBody(alert);
  return genericBody(alert);
}
