import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeFeed } from '../../../src/connectors/changes.js';
import { jumpcloudSourceConfigSchema } from '../../../src/connectors/jumpcloud/config.js';
import { createJumpcloudSource } from '../../../src/connectors/jumpcloud/source.js';
import { SourceReadError } from '../../../src/connectors/source.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';
import { startJumpcloudFake, type JumpcloudFake } from '../../support/fakes/jumpcloud.js';

/** The JumpCloud connector against the stateful fake: full read, one user read, and the Directory Insights feed. */

const FAST = { attempts: 2, baseMs: 1, capMs: 2 };
let fake: JumpcloudFake;
beforeAll(async () => {
  fake = await startJumpcloudFake();
});
afterAll(() => fake.close());

function sourceFor(state = new MemoryStateStore(), over: Record<string, unknown> = {}) {
  const config = jumpcloudSourceConfigSchema.parse({ ...fake.sourceConfig(), ...over });
  return createJumpcloudSource(config, { state, log: pino({ level: 'silent' }), backoff: FAST });
}
async function feedOf(source: ReturnType<typeof sourceFor>): Promise<ChangeFeed> {
  const feed = await source.changeFeed?.();
  if (!feed) throw new Error('no feed');
  return feed;
}

describe('JumpCloud against the stateful fake', () => {
  it('reads the scope, reads one user by id or address, and turns each change into the right hint', async () => {
    const ann = await fake.createUser({ email: 'ann@corp.example', givenName: 'Ann', familyName: 'Ash' });
    const bob = await fake.createUser({ email: 'bob@corp.example', givenName: 'Bob', familyName: 'Birch' });
    const out = await fake.createUser({ email: 'out@corp.example', givenName: 'Out', familyName: 'Side', inScope: false });
    const source = sourceFor();

    const read = await source.read();
    expect(read.complete).toBe(true);
    expect(read.users.map((u) => u.email).sort()).toEqual(['ann@corp.example', 'bob@corp.example']);
    const scopeGroup = read.groups.find((g) => g.id === fake.scopeGroupId);
    expect(scopeGroup?.name).toBe('TeamViewer Users');

    const byId = await source.readUser?.(ann.id);
    expect(byId).toMatchObject({ status: 'in-scope', groups: [{ id: fake.scopeGroupId, name: 'TeamViewer Users' }], groupsComplete: true });
    // The same record the full read holds.
    expect(byId?.status === 'in-scope' && byId.user).toEqual(read.users.find((u) => u.id === ann.id));
    expect(await source.readUser?.('ANN@corp.example')).toEqual(byId);
    expect(await source.readUser?.(out.id)).toMatchObject({ status: 'out-of-scope', user: { email: 'out@corp.example' } });
    expect(await source.readUser?.('nobody@corp.example')).toMatchObject({ status: 'not-found' });

    const feed = await feedOf(source);
    const first = await feed.poll();
    expect(first).toMatchObject({ hints: [], requests: 0 });
    await first.commit();

    await fake.setActive(ann.id, false);
    await fake.setInScope(bob.id, false);
    const cy = await fake.createUser({ email: 'cy@corp.example', givenName: 'Cy', familyName: 'Cole' });
    const sales = await fake.createGroup('Sales');
    await fake.addMember(sales.id, out.id);
    await fake.deleteUser(cy.id);

    const batch = await feed.poll();
    expect(batch.requests).toBe(1);
    const users = batch.hints.filter((h) => h.userId).map((h) => [h.what, h.userId]);
    expect(users).toEqual([
      ['user_update', ann.id],
      ['association_change', bob.id],
      ['user_create', cy.id],
      ['association_change', cy.id],
      ['association_change', out.id],
      ['user_delete', cy.id],
    ]);
    expect(batch.hints.filter((h) => h.fullCycle).map((h) => h.fullCycle)).toEqual([expect.stringMatching(/Sales .* was bound to the application/)]);
    await batch.commit();

    expect(await source.readUser?.(ann.id)).toMatchObject({ status: 'in-scope', user: { active: false }, why: expect.stringMatching(/inactive/) });
    expect(await source.readUser?.(bob.id)).toMatchObject({ status: 'out-of-scope' });
    expect(await source.readUser?.(cy.id)).toMatchObject({ status: 'not-found' });
    expect(await source.readUser?.(out.id)).toMatchObject({ status: 'in-scope', groups: [{ id: sales.id, name: 'Sales' }] });

    // Already seen: the overlap asks again, and nothing comes twice.
    expect((await feed.poll()).hints).toEqual([]);
  });

  it('pages through a burst of changes and hints each person once', async () => {
    const source = sourceFor();
    const feed = await feedOf(source);
    await (await feed.poll()).commit();
    const people = await Promise.all(
      Array.from({ length: 30 }, (_, i) => fake.createUser({ email: `burst${i}@corp.example`, givenName: 'B', familyName: `${i}`, inScope: false })),
    );
    for (let round = 0; round < 40; round++) for (const p of people) await fake.rename(p.id, `R${round}`, 'X');
    // 30 creations + 1200 renames: two pages of 1000.
    const batch = await feed.poll();
    expect(batch.requests).toBe(2);
    expect(batch.hints).toHaveLength(1230);
    expect(new Set(batch.hints.map((h) => h.eventId)).size).toBe(1230);
    expect(new Set(batch.hints.map((h) => h.userId))).toEqual(new Set(people.map((p) => p.id)));
    await batch.commit();
    expect((await feed.poll()).hints).toEqual([]);
  });

  it('an outage fails the read and the poll, and the position stays', async () => {
    const state = new MemoryStateStore();
    const source = sourceFor(state);
    const feed = await feedOf(source);
    await (await feed.poll()).commit();
    const dan = await fake.createUser({ email: 'dan@corp.example', givenName: 'Dan', familyName: 'Dale' });
    fake.setOutage(true);
    try {
      await expect(source.readUser?.(dan.id)).rejects.toThrow(SourceReadError);
      await expect(feed.poll()).rejects.toThrow(SourceReadError);
      await expect(source.read()).rejects.toThrow(SourceReadError);
    } finally {
      fake.setOutage(false);
    }
    const batch = await feed.poll();
    expect(batch.hints.map((h) => h.userId)).toEqual([dan.id, dan.id]);
    expect(fake.requestCounts().outage).toBeGreaterThan(0);
  });
});
