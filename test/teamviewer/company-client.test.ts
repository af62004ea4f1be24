import { afterEach, describe, expect, it } from 'vitest';
import { SyncError } from '../../src/model/failure.js';
import { CompanyClient } from '../../src/teamviewer/company-client.js';
import type { WebApiTransport } from '../../src/teamviewer/scim-client.js';
import { TeamViewerScimClient } from '../../src/teamviewer/scim-client.js';
import { checkWebApiAccess } from '../../src/teamviewer/web-api-check.js';
import { TOKEN, startEmulator } from '../support/fixtures.js';

type Started = Awaited<ReturnType<typeof startEmulator>>;
const started: Started[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.emulator.stop()));
});

async function client(opts: Parameters<typeof startEmulator>[0] = {}) {
  const tv = await startEmulator(opts);
  started.push(tv);
  const transport = new TeamViewerScimClient({ baseUrl: tv.baseUrl, token: TOKEN });
  return { tv, transport, company: new CompanyClient(transport) };
}

describe('the company client against the emulator', () => {
  it('reads the licence: assigned users are the active company users, the limit is the seats switch', async () => {
    const { tv, company } = await client({ seats: 7 });
    tv.emulator.load({ users: [{ id: 'u5', userName: 'x@corp.example', displayName: 'X Y', active: false }], groups: [] });
    expect(await company.licences()).toEqual([{ name: 'TeamViewer Tensor (emulated)', active: true, assignedUsers: 1, maxAssignments: 7 }]);
  });

  it('pages the Web API user list and an SSO list by continuation token, and adds exclusions 100 per call', async () => {
    const domain = { id: 'd1', name: 'corp.example', inclusion: [], exclusion: [] };
    const { tv, company } = await client({ pageSizeMax: 2, ssoStatus: { 'p3@corp.example': 4 }, ssoDomains: [domain] });
    tv.emulator.load({
      users: Array.from({ length: 5 }, (_, i) => ({ id: `u${i + 10}`, userName: `p${i}@corp.example`, displayName: `P ${i}`, active: true })),
      groups: [],
    });
    const users = await company.users();
    expect(users).toHaveLength(6);
    expect(users.find((u) => u.email === 'p3@corp.example')?.ssoStatus).toBe(4);
    expect(tv.emulator.stats.byRoute['GET /users']).toBe(3);

    const many = Array.from({ length: 230 }, (_, i) => `glass${i}@corp.example`);
    await company.addExclusions('d1', many);
    expect(tv.emulator.stats.byRoute['POST /ssoDomain']).toBe(3);
    expect(await company.ssoList('d1', 'exclusion')).toEqual(many);
    expect(await company.ssoDomains()).toEqual([{ id: 'd1', name: 'corp.example' }]);
  });

  it('a continuation token that repeats is a failure, not an endless read or an early end', async () => {
    let calls = 0;
    const looping: WebApiTransport = {
      webApi: async (_call, expect) => {
        calls++;
        return expect.schema.parse({ users: [{ id: `u${calls}`, email: `a${calls}@x.test`, active: true }], continuation_token: 'same' });
      },
    };
    await expect(new CompanyClient(looping).users()).rejects.toThrow(/continuation token repeats/);
    expect(calls).toBe(2);
  });

  it('a refused area is a forbidden SyncError; validate names it "no permission" and shows the seats', async () => {
    const { transport, company } = await client({ seats: 3, deniedWebApi: ['ssoDomain'] });
    const err = await company.ssoDomains().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncError);
    expect((err as SyncError).failureClass).toBe('forbidden');
    const checks = await checkWebApiAccess(transport, { seats: true, ssoReport: false, breakGlass: true });
    expect(checks.find((c) => c.name === 'seats')?.detail).toBe('1 of 3 seats used, 2 free; creates beyond the free seats wait');
    expect(checks.find((c) => c.name === 'Web API permissions')?.detail).toBe('company licence: yes; users: yes; SSO domains: no permission');
    expect(checks.find((c) => c.name === 'SSO break-glass')?.detail).toMatch(/^warning: sso.breakGlass is set, but SSO domains: no permission/);
  });
});
