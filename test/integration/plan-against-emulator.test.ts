import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computePlan } from '../../src/plan/diff.js';
import type { Plan } from '../../src/plan/types.js';
import { applyUserOperation } from '../../src/runtime/apply.js';
import { readAndPlan, type SyncSides } from '../../src/runtime/prepare.js';
import { createSource } from '../../src/connectors/index.js';
import { MemorySyncState } from '../../src/store/sync-state.js';
import { TeamViewerScimClient } from '../../src/teamviewer/scim-client.js';
import { parseConfig } from '../../src/config/load.js';
import type { DirectoryUser } from '../../src/model/directory.js';
import { OWNER, TOKEN, people, silentLog, startEmulator, writeExport } from '../support/fixtures.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;

beforeAll(async () => {
  tv = await startEmulator({ outsideEmails: ['freelancer@gmail.example'] });
});
afterAll(async () => {
  await tv.emulator.stop();
});

function sidesFor(users: DirectoryUser[], state: MemorySyncState, extraYaml = ''): SyncSides {
  const config = parseConfig(
    `syncs:\n  - name: corp\n    source: { type: file, path: ${writeExport(users)}, settle: 0s }\n    target: { baseUrl: ${tv.baseUrl}, token: "\${T}" }\n${extraYaml}`,
    { env: { T: TOKEN } },
  );
  const sync = config.syncs[0]!;
  return {
    sync,
    source: createSource(sync.source, { state: state.source, log: silentLog }),
    client: new TeamViewerScimClient({ baseUrl: tv.baseUrl, token: TOKEN }),
    state,
    log: silentLog,
    now: Date.now,
  };
}

/** Applies a plan the simple way (one operation after another) and records its links. */
async function apply(sides: SyncSides, plan: Plan) {
  await sides.state.applyLinkChanges(plan.links);
  const outcomes = [];
  for (const op of plan.operations) outcomes.push(await applyUserOperation(op, { client: sides.client, state: sides.state, nowMs: Date.now }));
  return outcomes;
}

describe('plan + client against the emulator', () => {
  const state = new MemorySyncState();
  // The state is "durable" for this test: it lives across the cycles below like Redis would.
  Object.defineProperty(state, 'durable', { value: true });
  let users = people(30);

  it('provisions an initial directory and then has nothing to do', async () => {
    const sides = sidesFor(users, state, '    ssoCustomerId: sso-abc\n');
    const first = await readAndPlan(sides);
    expect(first.tokenOwner).toBe(OWNER);
    expect(first.plan.summary.operations.createUser).toBe(30);
    const outcomes = await apply(sides, first.plan);
    expect(outcomes.every((o) => o.status === 'applied')).toBe(true);

    const dump = tv.emulator.dump();
    const created = dump.users.filter((u) => u.userName.startsWith('person'));
    expect(created).toHaveLength(30);
    expect(created[0]).toMatchObject({ displayName: 'Person 0', active: true, ssoCustomerId: 'sso-abc' });
    expect((await state.loadLinks()).size).toBe(30);

    const second = await readAndPlan(sides);
    expect(second.plan.operations).toEqual([]);
    expect(second.plan.summary.unchanged).toBe(30);
  });

  it('applies changes between cycles; an e-mail change is reported, not performed', async () => {
    users = users.slice(0, 28); // person28, person29 leave the scope
    users[0] = { ...users[0]!, displayName: 'Renamed Person' };
    users[1] = { ...users[1]!, active: false };
    users[2] = { ...users[2]!, email: 'person2.new@corp.example' };
    users.push(...people(2, 100));
    const sides = sidesFor(users, state);
    const { plan } = await readAndPlan(sides);
    expect(plan.operations.map((o) => `${o.kind} ${o.email}`)).toEqual([
      'createUser person100@corp.example',
      'createUser person101@corp.example',
      'updateUser person0@corp.example',
      'deactivateUser person1@corp.example',
      'deactivateUser person28@corp.example',
      'deactivateUser person29@corp.example',
    ]);
    expect(plan.skipped).toMatchObject([{ reason: 'email-change-unsupported', email: 'person2.new@corp.example' }]);
    await apply(sides, plan);

    const byMail = new Map(tv.emulator.dump().users.map((u) => [u.userName, u]));
    expect(byMail.get('person0@corp.example')?.displayName).toBe('Renamed Person');
    expect(byMail.get('person1@corp.example')?.active).toBe(false);
    expect(byMail.get('person28@corp.example')?.active).toBe(false);
    expect(byMail.get('person2@corp.example')?.active).toBe(true);
    expect(byMail.has('person2.new@corp.example')).toBe(false);
    expect(tv.emulator.stats.byRoute['DELETE /Users']).toBe(0);

    const again = await readAndPlan(sides);
    expect(again.plan.operations).toEqual([]);
  });

  it('adopts an in-company user on conflict and records an address owned outside the company', async () => {
    users.push(
      { id: 'ext', email: 'freelancer@gmail.example', displayName: 'Free Lancer', active: true },
      { id: 'late', email: 'late@corp.example', displayName: 'Late', active: true },
    );
    const sides = sidesFor(users, state);
    const { plan } = await readAndPlan(sides);
    // Someone creates late@ in TeamViewer between the plan and the write: the create conflicts and is adopted.
    await new TeamViewerScimClient({ baseUrl: tv.baseUrl, token: TOKEN }).createUser({ userName: 'late@corp.example', displayName: 'Late', active: true });
    const outcomes = await apply(sides, plan);
    expect(outcomes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ status: 'applied', adopted: true }),
        expect.objectContaining({ status: 'failed', failureClass: 'owned-outside-company', message: expect.stringContaining('outside the company') }),
      ]),
    );
    expect((await state.loadOutsideCompany()).has('freelancer@gmail.example')).toBe(true);
    const next = await readAndPlan(sides);
    expect(next.plan.operations).toEqual([]);
    expect(next.plan.skipped.map((s) => s.reason).sort()).toEqual(['email-change-unsupported', 'owned-outside-company']);
  });

  it('never deactivates the token owner, even if linked and removed', async () => {
    const owner = tv.emulator.dump().users.find((u) => u.userName === OWNER)!;
    await state.setLink('former-owner-record', owner.id);
    const sides = sidesFor(users, state);
    const { plan } = await readAndPlan(sides);
    expect(plan.operations).toEqual([]);
    expect(plan.skipped.find((s) => s.reason === 'protected')?.email).toBe(OWNER);
  });

  it('is deterministic against a live TeamViewer list', async () => {
    const sides = sidesFor(users, state);
    const a = await readAndPlan(sides);
    const b = computePlan({
      directory: a.directory,
      teamviewer: [...a.teamviewer].reverse(),
      links: await state.loadLinks(),
      outsideCompany: await state.loadOutsideCompany(),
      nowMs: Date.now(),
      policy: {
        protect: [],
        threshold: sides.sync.policy.deactivationThreshold,
        outsideCompanyRetryMs: sides.sync.policy.outsideCompanyRetry,
        tokenOwnerEmail: OWNER,
      },
    });
    expect(JSON.stringify(b.operations)).toBe(JSON.stringify(a.plan.operations));
  });
});
