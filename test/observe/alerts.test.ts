import { describe, expect, it } from 'vitest';
import { activeConditions, alertBody, alertChanges, type Alert, type SyncFacts } from '../../src/observe/alerts.js';
import { registerSecret } from '../../src/net/secrets.js';
import { expectNoLeak } from '../support/leaks.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const BACKLOG = { waiting: 100, ageMs: 600_000 };
const quiet: SyncFacts = {
  sync: 'corp',
  lastCycle: { cycleId: 'c1', outcome: 'succeeded' },
  held: { deactivations: 0, groupDeletions: 0, memberRemovals: 0, roleRemovals: 0, fastLaneDeactivations: 0 },
  outsideCompany: [],
  backlog: { waiting: 3, oldestAgeMs: 1000 },
};

function keys(facts: SyncFacts): string[] {
  return activeConditions(facts, BACKLOG, NOW).map((c) => c.key);
}

describe('alert conditions', () => {
  it('holds none for a sync that is well', () => {
    expect(keys(quiet)).toEqual([]);
  });

  it('names each condition by kind and sync (and address, for addresses outside the company)', () => {
    const facts: SyncFacts = {
      ...quiet,
      lastCycle: { cycleId: 'c2', outcome: 'failed', failureClass: 'source-read', message: 'the IdP read failed' },
      quarantine: { untilMs: NOW + 3_600_000, reason: '3 failing cycles in a row' },
      held: { deactivations: 5, groupDeletions: 1, memberRemovals: 0, roleRemovals: 0, fastLaneDeactivations: 2 },
      outsideCompany: [{ email: 'Ann@Example.com', atMs: NOW - 1000, message: 'owned by another company' }],
      backlog: { waiting: 150, oldestAgeMs: 1000 },
    };
    expect(keys(facts)).toEqual(['cycle-failed:corp', 'quarantined:corp', 'held:corp', 'outside-company:corp:ann@example.com', 'fast-lane-backlog:corp']);
    const held = activeConditions(facts, BACKLOG, NOW).find((c) => c.kind === 'held');
    expect(held?.summary).toBe('Sync corp holds 5 deactivations, 2 deactivations of the fast lane, 1 group deletion for approval (tvsync approve)');
  });

  it('a partial cycle is not a failed one; a quarantine that ended no longer holds; a backlog holds by count or by age', () => {
    expect(keys({ ...quiet, lastCycle: { cycleId: 'c', outcome: 'partial' } })).toEqual([]);
    expect(keys({ ...quiet, quarantine: { untilMs: NOW - 1 } })).toEqual([]);
    expect(keys({ ...quiet, backlog: { waiting: 1, oldestAgeMs: 600_000 } })).toEqual(['fast-lane-backlog:corp']);
    expect(keys({ ...quiet, backlog: { waiting: 99 } })).toEqual([]);
  });

  it('fires what is new and resolves what cleared, once each', () => {
    const failed = activeConditions({ ...quiet, lastCycle: { cycleId: 'c2', outcome: 'failed' } }, BACKLOG, NOW);
    const first = alertChanges(failed, new Map(), NOW);
    expect(first.firing.map((a) => [a.key, a.status])).toEqual([['cycle-failed:corp', 'firing']]);
    expect(first.resolved).toEqual([]);
    const alerted = new Map([['cycle-failed:corp', { kind: 'cycle-failed' as const, summary: 'The last cycle of sync corp failed', sinceMs: NOW - 5000 }]]);
    expect(alertChanges(failed, alerted, NOW)).toEqual({ firing: [], resolved: [] });
    const cleared = alertChanges([], alerted, NOW);
    expect(cleared.firing).toEqual([]);
    expect(cleared.resolved).toEqual([
      {
        key: 'cycle-failed:corp',
        kind: 'cycle-failed',
        sync: 'corp',
        status: 'resolved',
        summary: 'Resolved: The last cycle of sync corp failed',
        details: {},
        atMs: NOW,
        sinceMs: NOW - 5000,
      },
    ]);
  });

  it('scrubs secrets from outside text it quotes', () => {
    const secret = 'sk-alert-secret-0123456789';
    registerSecret(secret);
    const [condition] = activeConditions(
      { ...quiet, lastCycle: { cycleId: 'c', outcome: 'failed', message: `TeamViewer said: bad token ${secret}` } },
      BACKLOG,
      NOW,
    );
    expect(condition?.summary).toContain('[REDACTED]');
    expectNoLeak(secret, condition);
  });
});

const firing: Alert = {
  key: 'held:corp',
  kind: 'held',
  sync: 'corp',
  status: 'firing',
  summary: 'Sync corp holds 5 deactivations for approval <script>',
  details: { deactivations: 5 },
  atMs: NOW,
};

describe('alert bodies', () => {
  it('generic JSON has a stable shape', () => {
    expect(alertBody('generic', firing)).toEqual({
      version: 1,
      condition: 'held:corp',
      kind: 'held',
      status: 'firing',
      sync: 'corp',
      summary: firing.summary,
      details: { deactivations: 5 },
      at: '2026-01-01T12:00:00.000Z',
    });
    expect(alertBody('generic', { ...firing, status: 'resolved', sinceMs: NOW - 60_000 })).toMatchObject({
      status: 'resolved',
      since: '2026-01-01T11:59:00.000Z',
    });
  });

  it('Slack gets an incoming-webhook message: text, and blocks with escaped mrkdwn', () => {
    const body = alertBody('slack', firing) as { text: string; blocks: { type: string; text?: { type: string; text: string }; fields?: unknown[] }[] };
    expect(body.text).toBe('tvsync FIRING: held (corp): Sync corp holds 5 deactivations for approval &lt;script&gt;');
    expect(body.blocks.map((b) => b.type)).toEqual(['header', 'section', 'section']);
    expect(body.blocks[0]?.text).toEqual({ type: 'plain_text', text: 'tvsync FIRING: held (corp)' });
    expect(body.blocks[1]?.text?.type).toBe('mrkdwn');
    expect(body.blocks[2]?.fields).toContainEqual({ type: 'mrkdwn', text: '*deactivations*\n5' });
    expect((body.blocks[2]?.fields ?? []).length).toBeLessThanOrEqual(10);
  });

  it('Teams gets a message with one Adaptive Card attachment', () => {
    const body = alertBody('teams', { ...firing, status: 'resolved' }) as {
      type: string;
      attachments: {
        contentType: string;
        contentUrl: null;
        content: { type: string; version: string; body: { type: string; color?: string; facts?: unknown[] }[] };
      }[];
    };
    expect(body.type).toBe('message');
    expect(body.attachments).toHaveLength(1);
    const [attachment] = body.attachments;
    expect(attachment?.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(attachment?.contentUrl).toBeNull();
    expect(attachment?.content).toMatchObject({ type: 'AdaptiveCard', version: '1.4', $schema: 'http://adaptivecards.io/schemas/adaptive-card.json' });
    expect(attachment?.content.body.map((b) => b.type)).toEqual(['TextBlock', 'TextBlock', 'FactSet']);
    expect(attachment?.content.body[0]?.color).toBe('Good');
    expect(attachment?.content.body[2]?.facts).toContainEqual({ title: 'condition', value: 'held:corp' });
  });

  it('a digest lists what went over the rate limit, in each format', () => {
    const digest = { suppressed: [firing, { ...firing, key: 'held:hr', sync: 'hr' }], atMs: NOW };
    expect(alertBody('generic', digest)).toMatchObject({
      condition: 'rate-limited',
      details: { count: 2 },
      alerts: [{ condition: 'held:corp' }, { condition: 'held:hr' }],
    });
    expect(JSON.stringify(alertBody('slack', digest))).toContain('2 more alerts went over');
    expect(JSON.stringify(alertBody('teams', digest))).toContain('firing held:hr');
  });
});
