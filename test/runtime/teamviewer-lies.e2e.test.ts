import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { Daemon } from '../../src/runtime/daemon.js';
import { TeamViewerScimClient } from '../../src/teamviewer/scim-client.js';
import { runCycle, startWorker } from '../support/cycle.js';
import { TOKEN, people, startEmulator, writeExport } from '../support/fixtures.js';
import { SCIM_ERROR, SCIM_LIST, startLyingTeamViewer, type LyingTeamViewer } from '../support/lying-teamviewer.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';

/**
 * TeamViewer answers that must never be read as facts: a 200 carrying an error, an early empty
 * page. A cycle that meets them writes nothing on their account, changes no link and records no
 * address as owned outside the company.
 */
type Started = Awaited<ReturnType<typeof startEmulator>>;
let tv: Started;
let liar: LyingTeamViewer;
const prefixes: string[] = [];
const daemons: Daemon[] = [];

beforeAll(async () => {
  tv = await startEmulator({ outsideEmails: ['joiner@corp.example'] });
  liar = await startLyingTeamViewer(tv.baseUrl);
});
afterEach(async () => {
  liar.rule = () => undefined;
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await liar.close();
  await tv.emulator.stop();
  await Promise.all(prefixes.map(dropPrefix));
});

function configFor(exportDir: string, prefix: string) {
  return parseConfig(
    `redis: { url: "${REDIS_URL}", prefix: ${prefix} }
syncs:
  - name: corp
    source: { type: file, path: ${exportDir}, settle: 0s }
    target: { baseUrl: ${liar.baseUrl}, token: "\${T}", requestsPerSecond: 1000, concurrency: 4, tokenOwner: owner@corp.example }
`,
    { env: { T: TOKEN } },
  );
}

async function started(name: string, exportDir: string, runtime = {}): Promise<{ daemon: Daemon; prefix: string }> {
  const prefix = testPrefix(name);
  prefixes.push(prefix);
  const daemon = await startWorker(configFor(exportDir, prefix), { readBackoffMs: 10, opAttempts: 2, ...runtime });
  daemons.push(daemon);
  return { daemon, prefix };
}

const errorBody = { schemas: [SCIM_ERROR], status: '503', detail: 'Service temporarily unavailable' };
const isUserList = (method: string, url: string) => method === 'GET' && /\/Users\?/.test(url) && !/filter=/.test(url);
const isGroupList = (method: string, url: string) => method === 'GET' && /\/Groups\?/.test(url) && !/filter=/.test(url);

describe('TeamViewer answers that lie', () => {
  it('a 200 with an error body for the user list fails the cycle: no write, no link dropped, nobody "outside the company"', async () => {
    const users = people(12, 30_000);
    const dir = writeExport(users, [{ id: 'g1', name: 'Lie Group 1', members: users.map((u) => u.id) }]);
    const { daemon } = await started('lie-users', dir);
    expect((await runCycle(daemon)).outcome).toBe('succeeded');
    const state = daemon.runtime('corp').sides.state;
    const links = await state.loadLinks();
    expect(links.size).toBe(12);
    const before = tv.emulator.dump();
    const writes = tv.emulator.stats.writes;

    liar.rule = ({ method, url }) => (isUserList(method, url) ? { status: 200, body: errorBody } : undefined);
    const report = await runCycle(daemon);
    expect(report.outcome).toBe('failed');
    expect(report.failure?.message).toMatch(/not a SCIM ListResponse .*SCIM error: 503/);
    expect(tv.emulator.stats.writes).toBe(writes);
    expect(tv.emulator.dump()).toEqual(before);
    expect(await state.loadLinks()).toEqual(links);
    expect((await state.loadOutsideCompany()).size).toBe(0);
  });

  it('an empty page while totalResults says more remain fails the cycle instead of ending the list early', async () => {
    const users = people(8, 31_000);
    const prefix = testPrefix('lie-empty-page');
    prefixes.push(prefix);
    const config = configFor(writeExport(users), prefix);
    // Small pages, so the list takes several.
    config.syncs[0]!.target.pageSize = 2;
    const daemon = await startWorker(config, { readBackoffMs: 10 });
    daemons.push(daemon);
    expect((await runCycle(daemon)).outcome).toBe('succeeded');
    const writes = tv.emulator.stats.writes;
    const links = await daemon.runtime('corp').sides.state.loadLinks();
    liar.rule = ({ method, url }) => {
      if (!isUserList(method, url)) return undefined;
      const start = Number(new URL(url, 'http://x').searchParams.get('startIndex'));
      const total = tv.emulator.dump().users.length;
      return start > 3 ? { status: 200, body: { schemas: [SCIM_LIST], totalResults: total, Resources: [] } } : undefined;
    };
    const report = await runCycle(daemon);
    expect(report.outcome).toBe('failed');
    expect(report.failure?.message).toMatch(/empty while totalResults says/);
    expect(tv.emulator.stats.writes).toBe(writes);
    expect(await daemon.runtime('corp').sides.state.loadLinks()).toEqual(links);
  });

  it('pages read in parallel that disagree (totalResults changing, an item on two pages) fail the cycle without a write; a server capping its pages is followed', async () => {
    const users = people(20, 33_000);
    const prefix = testPrefix('lie-parallel-pages');
    prefixes.push(prefix);
    const config = configFor(writeExport(users), prefix);
    // Pages of 4, read 4 at a time: the list takes several rounds of parallel pages.
    config.syncs[0]!.target.pageSize = 4;
    config.syncs[0]!.target.readConcurrency = 4;
    const daemon = await startWorker(config, { readBackoffMs: 10 });
    daemons.push(daemon);
    expect((await runCycle(daemon)).outcome).toBe('succeeded');
    const state = daemon.runtime('corp').sides.state;
    const links = await state.loadLinks();
    const before = tv.emulator.dump();
    const writes = tv.emulator.stats.writes;
    const startOf = (url: string) => Number(new URL(url, 'http://x').searchParams.get('startIndex'));
    const honest = (url: string) => {
      const start = startOf(url);
      const all = tv.emulator.dump().users;
      const resources = all.slice(start - 1, start + 3).map((u) => ({ id: u.id, userName: u.userName, displayName: u.displayName, active: u.active }));
      return { all, resources };
    };

    liar.rule = ({ method, url }) => {
      if (!isUserList(method, url) || startOf(url) !== 9) return undefined;
      const { all, resources } = honest(url);
      return { status: 200, body: { schemas: [SCIM_LIST], totalResults: all.length + 1, Resources: resources } };
    };
    const changed = await runCycle(daemon);
    expect(changed.outcome).toBe('failed');
    expect(changed.failure?.message).toMatch(/totalResults changed/);

    liar.rule = ({ method, url }) => {
      if (!isUserList(method, url) || startOf(url) !== 13) return undefined;
      const { all, resources } = honest(url);
      // The first user of the list again, in place of this page's first.
      const first = all[0]!;
      resources[0] = { id: first.id, userName: first.userName, displayName: first.displayName, active: first.active };
      return { status: 200, body: { schemas: [SCIM_LIST], totalResults: all.length, Resources: resources } };
    };
    const twice = await runCycle(daemon);
    expect(twice.outcome).toBe('failed');
    expect(twice.failure?.message).toMatch(/came at two positions/);
    expect(tv.emulator.stats.writes).toBe(writes);
    expect(tv.emulator.dump()).toEqual(before);
    expect(await state.loadLinks()).toEqual(links);

    // A server that sends 3 where 4 were asked: every user is still read, so nothing is planned.
    liar.rule = () => undefined;
    tv.emulator.configure({ pageSizeMax: 3 });
    try {
      const capped = await runCycle(daemon);
      expect(capped.outcome).toBe('succeeded');
      expect(capped.operations.createUser.planned + capped.operations.deactivateUser.planned).toBe(0);
      expect(tv.emulator.stats.writes).toBe(writes);
    } finally {
      tv.emulator.configure({ pageSizeMax: null });
    }
  });

  it('a 200 with an error body for the group list neither empties nor re-creates a group', async () => {
    const users = people(6, 32_000);
    const dir = writeExport(users, [{ id: 'g2', name: 'Lie Group 2', members: users.map((u) => u.id) }]);
    const { daemon } = await started('lie-groups', dir);
    expect((await runCycle(daemon)).outcome).toBe('succeeded');
    const groupsBefore = tv.emulator.dump().groups;
    liar.rule = ({ method, url }) => (isGroupList(method, url) ? { status: 200, body: errorBody } : undefined);
    const report = await runCycle(daemon);
    expect(report.groups?.status).toBe('failed');
    expect(report.operations.createGroup.planned + report.operations.removeGroupMembers.planned + report.operations.deleteGroup.planned).toBe(0);
    expect(tv.emulator.dump().groups).toEqual(groupsBefore);
  });

  it('records an address as outside the company only after a well-formed look-up confirmed it, and forgets it once the address is in the company', async () => {
    const joiner = { id: 'j1', email: 'joiner@corp.example', displayName: 'Joiner', active: true };
    const { daemon } = await started('lie-outside', writeExport([joiner]));
    const state = daemon.runtime('corp').sides.state;
    // The look-up after the 409 answers 200 with an error: nothing is concluded from it.
    liar.rule = ({ method, url }) => (method === 'GET' && /filter=/.test(url) ? { status: 200, body: errorBody } : undefined);
    const doubtful = await runCycle(daemon);
    expect(doubtful.operations.createUser.failed).toBe(1);
    expect((await state.loadOutsideCompany()).size).toBe(0);
    // A well-formed look-up confirms it.
    liar.rule = () => undefined;
    await runCycle(daemon);
    expect([...(await state.loadOutsideCompany()).keys()]).toEqual(['joiner@corp.example']);
    // The account joins the company: the next cycle matches it and the record goes.
    tv.emulator.configure({ outsideEmails: [] });
    await new TeamViewerScimClient({ baseUrl: tv.baseUrl, token: TOKEN }).createUser({ userName: 'joiner@corp.example', displayName: 'Joiner', active: true });
    const matched = await runCycle(daemon);
    expect(matched.outcome).toBe('succeeded');
    expect((await state.loadOutsideCompany()).size).toBe(0);
    expect((await state.loadLinks()).get('j1')).toBeDefined();
  });
});
