import { afterEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/observe/alerts.js';
import { WebhookDispatcher, type Webhook } from '../../src/observe/webhooks.js';
import { registerSecret } from '../../src/net/secrets.js';
import { webhookUrlSecrets } from '../../src/net/secrets.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/fakes/webhook-receiver.js';
import { capturedLogger, expectNoLeak } from '../support/leaks.js';
import { waitFor } from '../support/wait.js';

const receivers: WebhookReceiver[] = [];
const dispatchers: WebhookDispatcher[] = [];
afterEach(async () => {
  await Promise.all(dispatchers.splice(0).map((d) => d.close(0)));
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

const TOKEN = 'XoXbWebhookToken0123456789abcdef';

function alert(n: number, status: Alert['status'] = 'firing'): Alert {
  return {
    key: `cycle-failed:sync${n}`,
    kind: 'cycle-failed',
    sync: `sync${n}`,
    status,
    summary: `The last cycle of sync${n} failed`,
    details: {},
    atMs: 1_700_000_000_000,
  };
}

async function receiver(answer?: Parameters<typeof startWebhookReceiver>[0]) {
  const r = await startWebhookReceiver(answer);
  receivers.push(r);
  return r;
}

function dispatcher(hooks: Webhook[], opts: Partial<ConstructorParameters<typeof WebhookDispatcher>[1]> = {}, log = capturedLogger().log) {
  const d = new WebhookDispatcher(hooks, { timeoutMs: 2000, attempts: 4, rateLimitPerMinute: 20, backoffBaseMs: 20, backoffCapMs: 200, ...opts }, log);
  dispatchers.push(d);
  return d;
}

describe('webhook dispatcher', () => {
  it('retries a webhook that answers 500 and 429 with back-off, and the alert arrives once', async () => {
    const r = await receiver((attempt) => (attempt === 1 ? 500 : attempt === 2 ? 429 : 200));
    const { lines, log } = capturedLogger();
    for (const part of webhookUrlSecrets(`${r.origin}/hook/${TOKEN}`)) registerSecret(part);
    const d = dispatcher([{ name: 'ops', url: `${r.origin}/hook/${TOKEN}`, format: 'generic' }], {}, log);
    d.send(alert(1));
    await d.idle();
    expect(r.attempts).toHaveLength(3);
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]?.body).toMatchObject({ version: 1, condition: 'cycle-failed:sync1', status: 'firing', sync: 'sync1' });
    expect(d.stats().ops).toEqual({ sent: 1, failed: 0, digests: 0 });
    expect(lines.join('\n')).toContain('retrying');
    // The URL carries the token: no log line names it.
    expectNoLeak(TOKEN, lines.join('\n'));
  });

  it('gives up after its attempts, and on a 4xx at once', async () => {
    const failing = await receiver(() => 500);
    const refusing = await receiver(() => 404);
    const d = dispatcher(
      [
        { name: 'failing', url: `${failing.origin}/a`, format: 'generic' },
        { name: 'refusing', url: `${refusing.origin}/b`, format: 'generic' },
      ],
      { attempts: 3 },
    );
    d.send(alert(1));
    await d.idle();
    expect(failing.attempts).toHaveLength(3);
    expect(refusing.attempts).toHaveLength(1);
    expect(d.stats()).toEqual({ failing: { sent: 0, failed: 1, digests: 0 }, refusing: { sent: 0, failed: 1, digests: 0 } });
  });

  it('never makes the caller wait: a hanging webhook holds up only itself, and its requests time out', async () => {
    const hanging = await receiver(() => 'hang');
    const healthy = await receiver();
    const d = dispatcher(
      [
        { name: 'hanging', url: `${hanging.origin}/h`, format: 'generic' },
        { name: 'healthy', url: `${healthy.origin}/ok`, format: 'slack' },
      ],
      { timeoutMs: 500, attempts: 2 },
    );
    // send only queues: it hands back nothing to wait for.
    expect(d.send(alert(1))).toBeUndefined();
    d.send(alert(2));
    await waitFor('the healthy webhook to get both', () => healthy.calls.length === 2, 10_000);
    // …while the hanging one still holds its first request open.
    expect(hanging.calls).toHaveLength(0);
    expect(d.stats().hanging).toEqual({ sent: 0, failed: 0, digests: 0 });
    await d.idle();
    // Each alert tried twice on the hanging webhook, each attempt cut at the timeout.
    expect(hanging.attempts).toHaveLength(4);
    expect(d.stats().hanging).toEqual({ sent: 0, failed: 2, digests: 0 });
  });

  it('keeps to the rate limit: the excess goes out as one digest', async () => {
    const r = await receiver();
    const d = dispatcher([{ name: 'ops', url: `${r.origin}/x`, format: 'generic' }], { rateLimitPerMinute: 3 });
    for (let n = 1; n <= 7; n++) d.send(alert(n));
    await waitFor('three requests', () => r.calls.length >= 3, 10_000);
    // The window is full: no more for a minute.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(r.calls).toHaveLength(3);
    // Sent in order; one of the first alerts may ride in the digest if it queued behind the second.
    const conditions = r.calls.map((c) => c.body.condition);
    expect(conditions[0]).toBe('cycle-failed:sync1');
    const digest = r.calls[2]?.body as { condition: string; alerts: { condition: string }[] };
    expect(digest.condition).toBe('rate-limited');
    // Every alert arrived exactly once, alone or in the digest.
    const seen = [...conditions.slice(0, 2), ...digest.alerts.map((a) => a.condition)];
    expect(seen.sort()).toEqual(Array.from({ length: 7 }, (_, i) => `cycle-failed:sync${i + 1}`).sort());
    expect(d.stats().ops).toMatchObject({ sent: 3, digests: 1 });
  });

  it('sends only the kinds a webhook names', async () => {
    const r = await receiver();
    const d = dispatcher([{ name: 'held-only', url: `${r.origin}/x`, format: 'teams', conditions: ['held'] }]);
    d.send(alert(1));
    d.send({ ...alert(2), key: 'held:sync2', kind: 'held' });
    await d.idle();
    expect(r.calls).toHaveLength(1);
    expect(JSON.stringify(r.calls[0]?.body)).toContain('held:sync2');
    expect(d.wants('held')).toBe(true);
    expect(d.wants('cycle-failed')).toBe(false);
  });
});
