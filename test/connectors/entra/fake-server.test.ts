import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChangeHint, HookReceiver } from '../../../src/connectors/changes.js';
import { entraSourceConfigSchema } from '../../../src/connectors/entra/config.js';
import { createEntraSource } from '../../../src/connectors/entra/source.js';
import { SourceReadError, type DirectorySource } from '../../../src/connectors/source.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';
import { type EntraFake, startEntraFake } from '../../support/fakes/entra.js';

const silent = pino({ level: 'silent' });
const CLIENT_STATE = 'fake-client-state-6f1d2c9b8a7e';

function sourceFor(fake: EntraFake, changes?: Record<string, unknown>, state = new MemoryStateStore()): DirectorySource {
  const config = entraSourceConfigSchema.parse(fake.sourceConfig(changes));
  return createEntraSource(config, { state, log: silent, backoff: { attempts: 3, baseMs: 1, capMs: 5, maxWaitMs: 2000 } });
}

/** The hook endpoint as the daemon's HTTP layer serves it: the request handed over whole, the answer sent back. */
async function hookServer(): Promise<{ url: string; hints: ChangeHint[]; use(r: HookReceiver): void; close(): Promise<void> }> {
  let receiver: HookReceiver | undefined;
  const hints: ChangeHint[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (!receiver) {
        res.writeHead(503).end();
        return;
      }
      const { answer, hints: got } = await receiver.receive({
        method: req.method ?? 'GET',
        headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v])),
        query: Object.fromEntries(url.searchParams),
        body: Buffer.concat(chunks).toString('utf8'),
      });
      hints.push(...got);
      res.writeHead(answer.status, answer.headers).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/main/entra`,
    hints,
    use: (r) => {
      receiver = r;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const userIds = (hints: ChangeHint[]) => [...new Set(hints.flatMap((h) => (h.userId ? [h.userId] : [])))].sort();

let fake: EntraFake;
beforeEach(async () => {
  fake = await startEntraFake({ pageSize: 7 });
});
afterEach(async () => {
  await fake.close();
});

describe('the Entra connector against the stateful Graph fake', () => {
  it('signs in, reads everything, reads one user, and follows a burst of changes through the delta feed', async () => {
    const alice = await fake.createUser({ email: 'alice@contoso.test', givenName: 'Alice', familyName: 'Ash' });
    const bob = await fake.createUser({ email: 'bob@contoso.test', givenName: 'Bob', familyName: 'Birch', inScope: false });
    const carol = await fake.createUser({ email: 'carol@contoso.test', givenName: 'Carol', familyName: 'Cedar', inScope: false });
    const sales = await fake.createGroup('Sales');
    await fake.addMember(sales.id, carol.id);
    const state = new MemoryStateStore();
    const source = sourceFor(fake, undefined, state);

    expect((await source.check()).ok).toBe(true);
    const read = await source.read();
    expect(read.complete).toBe(true);
    expect(read.users.map((u) => u.email).sort()).toEqual(['alice@contoso.test', 'carol@contoso.test']);
    expect(read.groups).toEqual([{ id: sales.id, name: 'Sales', memberIds: [carol.id] }]);

    // One user, by id, by e-mail, out of scope and unknown; mapped as the full read maps it.
    const byId = await source.readUser?.(alice.id);
    expect(byId).toMatchObject({ status: 'in-scope', groups: [], why: expect.stringMatching(/assigned to app .* directly/) });
    expect(byId?.status === 'in-scope' && byId.user).toEqual(read.users.find((u) => u.id === alice.id));
    expect(await source.readUser?.('carol@contoso.test')).toMatchObject({
      status: 'in-scope',
      groups: [{ id: sales.id, name: 'Sales' }],
      groupsComplete: true,
      why: expect.stringMatching(/through group "Sales"/),
    });
    expect(await source.readUser?.(bob.id)).toMatchObject({ status: 'out-of-scope', user: { id: bob.id } });
    expect(await source.readUser?.('00000000-0000-4000-8000-000000000000')).toMatchObject({ status: 'not-found' });

    const feed = await source.changeFeed?.();
    expect(feed?.name).toBe('entra-delta');
    const first = await feed?.poll();
    expect(first?.hints).toEqual([]);
    await first?.commit();

    // A burst: 12 new users, 4 deactivations, 5 joining Sales, 1 leaving it, 1 unassignment.
    const expected = new Set<string>();
    for (let i = 0; i < 12; i++) expected.add((await fake.createUser({ email: `new${i}@contoso.test`, givenName: 'New', familyName: `N${i}` })).id);
    const fresh = [...expected];
    for (const id of fresh.slice(0, 4)) await fake.setActive(id, false);
    for (const id of fresh.slice(4, 9)) await fake.addMember(sales.id, id);
    await fake.removeMember(sales.id, carol.id);
    expected.add(carol.id);
    await fake.setInScope(alice.id, false);
    expected.add(alice.id);

    const burst = await feed?.poll();
    expect(userIds(burst?.hints ?? [])).toEqual([...expected].sort());
    expect(burst?.hints.some((h) => h.fullCycle)).toBe(false);
    expect(burst?.requests).toBeGreaterThan(3); // several pages of 7
    await burst?.commit();
    expect((await feed?.poll())?.hints).toEqual([]);

    // The cycle's own delta links were left where the full read put them.
    const again = await source.read();
    expect(again.users.map((u) => u.id).sort()).toEqual([...fresh, carol.id].filter((id) => id !== carol.id).sort());
    expect(again.groups[0]?.memberIds.sort()).toEqual(fresh.slice(4, 9).sort());
  });

  it('keeps its position through an outage, and starts afresh with a full cycle after the delta tokens expire', async () => {
    const source = sourceFor(fake);
    const feed = await source.changeFeed?.();
    await (await feed?.poll())?.commit();
    const dan = await fake.createUser({ email: 'dan@contoso.test', givenName: 'Dan', familyName: 'Dale' });

    fake.setOutage(true);
    await expect(feed?.poll()).rejects.toBeInstanceOf(SourceReadError);
    await expect(source.readUser?.(dan.id)).rejects.toBeInstanceOf(SourceReadError);
    fake.setOutage(false);
    expect(fake.requestCounts().outage).toBeGreaterThan(0);

    const after = await feed?.poll();
    expect(userIds(after?.hints ?? [])).toEqual([dan.id]);
    await after?.commit();

    fake.expireDeltaTokens();
    const expired = await feed?.poll();
    expect(expired?.hints).toEqual([expect.objectContaining({ fullCycle: expect.stringMatching(/delta link cannot continue/) })]);
    await expired?.commit();
    await fake.rename(dan.id, 'Daniel', 'Dale');
    expect(userIds((await feed?.poll())?.hints ?? [])).toEqual([dan.id]);
  });

  it('subscribes through the validation handshake and turns delivered notifications into hints', async () => {
    const hook = await hookServer();
    try {
      const changes = { notifications: { enabled: true, notificationUrl: hook.url, clientState: CLIENT_STATE } };
      const source = sourceFor(fake, changes);
      const receiver = await source.hookReceiver?.();
      if (!receiver) throw new Error('no receiver');
      hook.use(receiver);
      const erin = await fake.createUser({ email: 'erin@contoso.test', givenName: 'Erin', familyName: 'Elm', inScope: false });
      const ops = await fake.createGroup('Ops');

      const feed = await source.changeFeed?.();
      await (await feed?.poll())?.commit();
      expect(
        fake
          .subscriptions()
          .map((s) => s.resource)
          .sort(),
      ).toEqual(['groups', 'users']);
      expect(fake.subscriptions().every((s) => s.clientState === CLIENT_STATE && s.changeType === 'updated,deleted')).toBe(true);

      await fake.setActive(erin.id, false);
      await fake.addMember(ops.id, erin.id);
      await fake.settle();
      expect(fake.deliveries()).toEqual({ ok: 2, failed: 0 });
      expect(userIds(hook.hints)).toEqual([erin.id]);
      expect(hook.hints.map((h) => h.what)).toEqual(['graph notification: user updated', expect.stringMatching(/member added to Ops/)]);
    } finally {
      await hook.close();
    }
  });
});
