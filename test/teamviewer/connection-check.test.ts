import nock from 'nock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SCIM_GROUP_SCHEMA, SCIM_LIST_SCHEMA } from '../../src/model/teamviewer.js';
import { checkTeamViewerConnection } from '../../src/teamviewer/connection-check.js';
import { TeamViewerScimClient } from '../../src/teamviewer/scim-client.js';

const HOST = 'https://tv-check.example.test';
const BASE = `${HOST}/scim/v2`;
const TOKEN = '5551234-CheckScriptToken';

const target = { baseUrl: BASE, groups: true };
const check = () => checkTeamViewerConnection(new TeamViewerScimClient({ baseUrl: BASE, token: TOKEN }), target);
const scim = () => nock(HOST).matchHeader('authorization', `Bearer ${TOKEN}`);
const onePage = { startIndex: '1', count: '1' };

beforeEach(() => {
  nock.disableNetConnect();
});

afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  nock.enableNetConnect();
  expect(pending).toEqual([]);
});

describe('checkTeamViewerConnection against answers the emulator never gives', () => {
  it('stops at a 200 that is not a SCIM list (a proxy login page), naming the base URL as the likely cause', async () => {
    scim().get('/scim/v2/Users').query(onePage).reply(200, '<html><body>Sign in</body></html>', { 'Content-Type': 'text/html' });
    expect(await check()).toEqual({
      ok: false,
      checks: [
        {
          name: 'authenticate and list users',
          ok: false,
          detail: "GET /Users answered 200 with something that is not a SCIM user list; is target.baseUrl TeamViewer's SCIM endpoint (…/scim/v2)?",
        },
      ],
    });
  });

  it('goes on after a token that may not list users, to show what else it may do', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(onePage)
      .reply(403, { error: 'invalid_permission', error_description: 'Missing permission: user management', error_code: 403 })
      .get('/api/v1/account')
      .reply(200, { userid: 'u7', email: 'admin@corp.example', name: 'Admin' })
      .get('/scim/v2/Groups')
      .query(true)
      .reply(200, { schemas: [SCIM_LIST_SCHEMA], totalResults: 0, Resources: [] });
    const result = await check();
    expect(result.ok).toBe(false);
    expect(result.checks.map((c) => [c.name, c.ok])).toEqual([
      ['authenticate and list users', false],
      ['token owner', true],
      ['user groups', true],
    ]);
    expect(result.checks[0]?.detail).toMatch(/^GET \/Users → 403 forbidden \(invalid_permission\): Missing permission: user management\./);
  });

  it('stops at a server failure, with the classified message and without the token the body echoed', async () => {
    scim().get('/scim/v2/Users').query(onePage).reply(503, `upstream failed for Authorization: Bearer ${TOKEN}`);
    const result = await check();
    expect(result.checks).toHaveLength(1);
    expect(result.checks[0]?.detail).toMatch(/^GET \/Users → 503 transient: /);
    expect(JSON.stringify(result)).not.toContain(TOKEN);
  });

  it('reads one page of one user, whatever the company size', async () => {
    scim()
      .get('/scim/v2/Users')
      .query(onePage)
      .reply(200, { schemas: [SCIM_LIST_SCHEMA], totalResults: 2500, Resources: [{ id: 'u1', userName: 'a@corp.example', active: true }] })
      .get('/api/v1/account')
      .reply(404, { error: 'not_found', error_description: 'no', error_code: 404 })
      .get('/scim/v2/Groups')
      .query(true)
      .reply(200, { schemas: [SCIM_LIST_SCHEMA], totalResults: 1, Resources: [{ schemas: [SCIM_GROUP_SCHEMA], id: 'g1', displayName: 'Other' }] });
    const result = await check();
    expect(result.checks[0]?.detail).toBe('the token was accepted; the company has 2500 users');
    expect(result.ok).toBe(true);
  });
});
