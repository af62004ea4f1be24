import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChangeFeed, ChangeHint, HookReceiver } from '../../../src/connectors/changes.js';
import { oktaSourceConfigSchema } from '../../../src/connectors/okta/config.js';
import { createOktaSource } from '../../../src/connectors/okta/source.js';
import { SourceReadError, type DirectorySource } from '../../../src/connectors/source.js';
import type { BackoffPolicy } from '../../../src/net/retry.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';
import { startOktaFake, type OktaFakeIdp } from '../../support/fakes/okta.js';

/*
 * The okta connector against the stateful fake org: full read, readUser and the System Log feed
 * see the same directory as it changes, and the fake's event hook reaches the hook receiver.
 */

const FAST: BackoffPolicy = { attempts: 2, baseMs: 1, capMs: 5, maxWaitMs: 2000 };
const log = pino({ level: 'silent' });

let fake: OktaFakeIdp;
beforeEach(async () => {
  fake = await startOktaFake();
});
afterEach(async () => {
  await fake.close();
});

/** The sourceConfig block with its `${…}` references resolved, as the config loader would. */
function sourceOf(changes: Record<string, unknown> = {}, state = new MemoryStateStore()): DirectorySource {
  const block = JSON.parse(JSON.stringify(fake.sourceConfig(changes)).replace(/\$\{(\w+)\}/g, (_, name: string) => fake.env[name] ?? ''));
  return createOktaSource(oktaSourceConfigSchema.parse(block), { state, log, backoff: FAST });
}

async function feedOf(source: DirectorySource): Promise<ChangeFeed> {
  const feed = await source.changeFeed?.();
  if (!feed) throw new Error('no feed');
  return feed;
}

/** Polls and commits, as the runtime does once the hints are queued. */
async function drain(feed: ChangeFeed): Promise<{ hints: ChangeHint[]; requests: number }> {
  const batch = await feed.poll();
  await batch.commit();
  return { hints: batch.hints, requests: batch.requests };
}

describe('okta connector against the fake org', () => {
  it('reads fully, reads one user, and polls the System Log as the directory changes', async () => {
    const source = sourceOf();
    const feed = await feedOf(source);
    expect(feed.name).toBe('okta-system-log');
    expect(feed.everyMs).toBe(15_000);
    expect(await drain(feed)).toEqual({ hints: [], requests: 1 });

    const alice = await fake.createUser({ email: 'alice@example.com', givenName: 'Alice', familyName: 'Archer' });
    const bob = await fake.createUser({ email: 'bob@example.com', givenName: 'Bob', familyName: 'Baker', inScope: false });
    const carol = await fake.createUser({ email: 'carol@example.com', givenName: 'Carol', familyName: 'Clark', inScope: false });
    const sales = await fake.createGroup('Sales');
    await fake.addMember(sales.id, bob.id);

    const read = await source.read();
    expect(read.users.map((u) => u.email).sort()).toEqual(['alice@example.com', 'bob@example.com']);
    expect(read.groups).toEqual([{ id: sales.id, name: 'Sales', memberIds: [bob.id] }]);

    const aliceRead = read.users.find((u) => u.id === alice.id);
    expect(await source.readUser?.(alice.id)).toEqual({
      status: 'in-scope',
      user: aliceRead,
      groups: [],
      groupsComplete: true,
      why: `assigned to app ${fake.appId} directly`,
    });
    expect(await source.readUser?.('bob@example.com')).toMatchObject({
      status: 'in-scope',
      user: { id: bob.id },
      groups: [{ id: sales.id, name: 'Sales' }],
      why: `assigned to app ${fake.appId} through group Sales`,
    });
    expect(await source.readUser?.(carol.id)).toMatchObject({ status: 'out-of-scope', user: { id: carol.id }, why: expect.stringContaining('not assigned') });

    const first = await drain(feed);
    expect(first.requests).toBe(1);
    const byUser = (id: string) => first.hints.filter((h) => h.userId === id).map((h) => h.what);
    expect(byUser(alice.id)).toEqual(['user.lifecycle.create', 'user.lifecycle.activate', 'application.user_membership.add']);
    expect(byUser(bob.id)).toEqual(['user.lifecycle.create', 'user.lifecycle.activate', 'group.user_membership.add']);
    // Out of scope: still a hint; the re-read decides.
    expect(byUser(carol.id)).toEqual(['user.lifecycle.create', 'user.lifecycle.activate']);
    expect(first.hints.filter((h) => h.fullCycle)).toEqual([
      expect.objectContaining({ what: 'group.application_assignment.add', fullCycle: expect.stringContaining('Sales') }),
    ]);
    expect(first.hints.every((h) => h.eventId && h.atMs >= alice.atMs)).toBe(true);

    // Nothing new: one request, nothing read twice.
    expect(await drain(feed)).toEqual({ hints: [], requests: 1 });

    // A renamed group that was read as in scope: a full cycle. One never read: nothing.
    const other = await fake.createGroup('Other');
    await fake.setGroupAssigned(other.id, false);
    await source.read();
    await fake.renameGroup(sales.id, 'Sales EMEA');
    await fake.renameGroup(other.id, 'Other 2');
    const renamed = (await drain(feed)).hints.filter((h) => h.what === 'group.profile.update');
    expect(renamed).toEqual([expect.objectContaining({ fullCycle: 'group "Sales EMEA" was renamed or changed' })]);

    // Suspended, unassigned, deleted: each a hint, and the re-read says what became of them.
    await fake.setActive(alice.id, false);
    expect(await source.readUser?.(alice.id)).toMatchObject({
      status: 'in-scope',
      user: { active: false },
      why: expect.stringContaining('status SUSPENDED: disabled'),
    });
    await fake.setInScope(bob.id, false);
    expect(await source.readUser?.(bob.id)).toMatchObject({ status: 'out-of-scope' });
    await fake.deleteUser(carol.id);
    expect(await source.readUser?.(carol.id)).toEqual({ status: 'not-found', why: expect.any(String) });
    const later = await drain(feed);
    expect(later.hints.map((h) => [h.userId, h.what])).toEqual([
      [alice.id, 'user.lifecycle.suspend'],
      [bob.id, 'application.user_membership.remove'],
      [bob.id, 'group.user_membership.remove'],
      [carol.id, 'user.lifecycle.deactivate'],
      [carol.id, 'user.lifecycle.delete.initiated'],
    ]);
  });

  it('takes a burst of changes over several pages and polls, each once', async () => {
    const state = new MemoryStateStore();
    const feed = await feedOf(sourceOf({ systemLog: { pageSize: 5, maxPages: 3 } }, state));
    await drain(feed);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await fake.createUser({ email: `u${i}@example.com`, givenName: 'U', familyName: `${i}` })).id);
    for (const id of ids) {
      await fake.rename(id, 'V', 'W');
      await fake.setActive(id, false);
    }
    const made = fake.events().filter((e) => e.eventType !== 'group.lifecycle.create').length;
    expect(made).toBe(8 * 5);

    const seen: ChangeHint[] = [];
    let polls = 0;
    let requests = 0;
    for (;;) {
      const batch = await drain(feed);
      polls++;
      requests += batch.requests;
      seen.push(...batch.hints);
      if (batch.hints.length === 0) break;
    }
    expect(seen).toHaveLength(made);
    expect(new Set(seen.map((h) => h.eventId)).size).toBe(made);
    // 40 events, 5 a page, 3 pages a poll: 15, 15, then 10 (the third page is empty), then nothing.
    expect(polls).toBe(4);
    expect(requests).toBe(3 + 3 + 3 + 1);
    expect(fake.requestCounts().logs).toBe(1 + requests);
  });

  it('fails a poll and a re-read during an outage, keeps the position, and catches up after it', async () => {
    const state = new MemoryStateStore();
    const source = sourceOf({}, state);
    const feed = await feedOf(source);
    await drain(feed);
    const dave = await fake.createUser({ email: 'dave@example.com', givenName: 'Dave', familyName: 'Dunn' });
    const position = await state.get('okta:system-log');

    fake.setOutage(true);
    await expect(feed.poll()).rejects.toThrow(SourceReadError);
    await expect(source.readUser?.(dave.id)).rejects.toThrow(/Okta read of user .* failed: .*503/);
    expect(await state.get('okta:system-log')).toBe(position);
    fake.setOutage(false);

    const after = await drain(feed);
    expect(after.hints.filter((h) => h.userId === dave.id).map((h) => h.what)).toEqual([
      'user.lifecycle.create',
      'user.lifecycle.activate',
      'application.user_membership.add',
    ]);
    expect(fake.requestCounts().logs).toBeGreaterThanOrEqual(4);
  });

  it("receives the fake's event hook: verification first, then each change as it happens", async () => {
    const secret = 'hook-secret-0123456789abcdef';
    const source = sourceOf({ eventHook: { enabled: true, authHeader: 'X-Tvsync-Hook', hookSecret: secret } });
    const receiver = (await source.hookReceiver?.()) as HookReceiver;
    expect(receiver.name).toBe('okta');
    const hints: ChangeHint[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      req.on('end', async () => {
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]));
        const { answer, hints: got } = await receiver.receive({ method: req.method ?? 'GET', headers, query: {}, body });
        hints.push(...got);
        res.writeHead(answer.status, answer.headers ?? {});
        res.end(answer.body ?? '');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/corp/okta`;
      await expect(fake.registerEventHook(url, 'X-Tvsync-Hook', 'wrong-secret-0123456789')).rejects.toThrow(/verification failed: 401/);
      await fake.registerEventHook(url, 'X-Tvsync-Hook', secret);
      const erin = await fake.createUser({ email: 'erin@example.com', givenName: 'Erin', familyName: 'Evans' });
      await fake.setActive(erin.id, false);
      await fake.hooksSettled();
      expect(fake.hookDeliveries().every((status) => status === 200)).toBe(true);
      expect(hints.map((h) => [h.userId, h.what])).toEqual([
        [erin.id, 'user.lifecycle.create'],
        [erin.id, 'user.lifecycle.activate'],
        [erin.id, 'application.user_membership.add'],
        [erin.id, 'user.lifecycle.suspend'],
      ]);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
