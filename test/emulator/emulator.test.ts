import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SCIM_ERROR_SCHEMA, SCIM_GROUP_SCHEMA, SCIM_PATCH_SCHEMA, SCIM_USER_SCHEMA, SSO_USER_SCHEMA } from '../../src/model/teamviewer.js';
import { runEmulator } from '../../src/emulator/run.js';
import { TeamViewerEmulator, type EmulatorOptions } from '../../src/emulator/server.js';
import { emulatorStateSchema } from '../../src/emulator/store.js';

const TOKEN = 'secret-token';

const userSchema = z.looseObject({
  id: z.string(),
  userName: z.string(),
  displayName: z.string(),
  active: z.boolean(),
  name: z.object({ formatted: z.string(), givenName: z.string().nullable(), familyName: z.string().nullable() }),
});
const listSchema = z.object({
  schemas: z.array(z.string()),
  totalResults: z.number(),
  startIndex: z.number(),
  itemsPerPage: z.number(),
  Resources: z.array(z.looseObject({ id: z.string() })),
});
const groupSchema = z.looseObject({
  id: z.string(),
  displayName: z.string(),
  members: z.array(z.object({ value: z.string() })).optional(),
});
const scimErrorSchema = z.object({
  schemas: z.array(z.string()),
  status: z.string(),
  scimType: z.string().optional(),
  detail: z.string(),
});

interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

let running: TeamViewerEmulator[] = [];

afterEach(async () => {
  await Promise.all(running.map((emulator) => emulator.stop()));
  running = [];
});

async function launch(opts: Partial<EmulatorOptions> = {}) {
  const emulator = new TeamViewerEmulator({ tokens: [TOKEN], ...opts });
  const address = await emulator.start(0);
  running.push(emulator);
  const origin = new URL(address.baseUrl).origin;

  async function call(method: string, url: string, body?: unknown, token: string | null = TOKEN): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/scim+json';
    const res = await fetch(url, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers };
  }

  return {
    emulator,
    address,
    scim: (method: string, path: string, body?: unknown, token?: string | null) => call(method, address.baseUrl + path, body, token),
    web: (path: string, token?: string | null) => call('GET', address.webApiBaseUrl + path, undefined, token),
    admin: (method: string, path: string, body?: unknown) => call(method, `${origin}/_emulator${path}`, body, null),
  };
}

type Emulated = Awaited<ReturnType<typeof launch>>;

const newUser = (userName: string, displayName: string, extra: Record<string, unknown> = {}) => ({
  schemas: [SCIM_USER_SCHEMA],
  userName,
  displayName,
  ...extra,
});

const patch = (...Operations: unknown[]) => ({ schemas: [SCIM_PATCH_SCHEMA], Operations });

async function createUser(tv: Emulated, userName: string, displayName = 'Some One') {
  const answer = await tv.scim('POST', '/Users', newUser(userName, displayName));
  expect(answer.status).toBe(201);
  return userSchema.parse(answer.body);
}

async function listIds(tv: Emulated, query: string): Promise<string[]> {
  const answer = await tv.scim('GET', `/Users?${query}`);
  expect(answer.status).toBe(200);
  return listSchema.parse(answer.body).Resources.map((resource) => resource.id);
}

const filterQuery = (filter: string) => `filter=${encodeURIComponent(filter)}`;

function expectScimError(answer: Answer, status: number, scimType?: string) {
  expect(answer.status).toBe(status);
  expect(answer.headers.get('content-type')).toContain('application/scim+json');
  const error = scimErrorSchema.parse(answer.body);
  expect(error.schemas).toEqual([SCIM_ERROR_SCHEMA]);
  expect(error.status).toBe(String(status));
  if (scimType !== undefined) expect(error.scimType).toBe(scimType);
  return error;
}

describe('users', () => {
  it('creates users with sequential ids and pages through them, echoing startIndex 0', async () => {
    const tv = await launch();
    const created = [];
    for (let i = 1; i <= 5; i++) created.push(await createUser(tv, `user${i}@example.test`));
    expect(created.map((user) => user.id)).toEqual(['u1000001', 'u1000002', 'u1000003', 'u1000004', 'u1000005']);

    const page = await tv.scim('GET', '/Users?startIndex=3&count=2');
    expect(listSchema.parse(page.body)).toMatchObject({ totalResults: 5, startIndex: 0, itemsPerPage: 2 });
    expect(listSchema.parse(page.body).Resources.map((user) => user.id)).toEqual(['u1000003', 'u1000004']);

    expect(await listIds(tv, '')).toHaveLength(5);
    expect(await listIds(tv, 'count=0')).toEqual([]);
    expect(await listIds(tv, 'startIndex=5&count=10')).toEqual(['u1000005']);
    expect(await listIds(tv, 'startIndex=9')).toEqual([]);
    expectScimError(await tv.scim('GET', '/Users?count=ten'), 400, 'invalidValue');

    tv.emulator.configure({ pageSizeMax: 2 });
    expect(await listIds(tv, '')).toEqual(['u1000001', 'u1000002']);

    const one = await tv.scim('GET', '/Users/u1000002');
    expect(userSchema.parse(one.body).userName).toBe('user2@example.test');
    expectScimError(await tv.scim('GET', '/Users/u9999999'), 404);
  });

  it('renders the documented shape and keeps create-only attributes out of it', async () => {
    const tv = await launch();
    const answer = await tv.scim(
      'POST',
      '/Users',
      newUser('Jane.Doe@Example.test', 'Jane van Doe', {
        schemas: [SCIM_USER_SCHEMA, SSO_USER_SCHEMA],
        preferredLanguage: 'de_DE',
        password: 'hunter2',
        externalId: 'idp-1',
        [SSO_USER_SCHEMA]: { ssoCustomerId: 'abc123' },
      }),
    );
    expect(answer.status).toBe(201);
    expect(answer.headers.get('content-type')).toContain('application/scim+json');
    const expected = {
      schemas: [SCIM_USER_SCHEMA],
      id: 'u1000001',
      userName: 'Jane.Doe@Example.test',
      displayName: 'Jane van Doe',
      name: { formatted: 'Jane van Doe', givenName: 'Jane', familyName: 'van Doe' },
      emails: [{ value: 'Jane.Doe@Example.test', primary: true }],
      active: true,
    };
    expect(answer.body).toEqual(expected);
    expect((await tv.scim('GET', '/Users/u1000001')).body).toEqual(expected);

    expect(tv.emulator.dump().users).toEqual([
      {
        id: 'u1000001',
        userName: 'Jane.Doe@Example.test',
        displayName: 'Jane van Doe',
        active: true,
        preferredLanguage: 'de_DE',
        ssoCustomerId: 'abc123',
        password: 'hunter2',
      },
    ]);
  });

  it('takes the address and name by the documented precedence', async () => {
    const tv = await launch();
    const fromEmails = await tv.scim('POST', '/Users', {
      schemas: [SCIM_USER_SCHEMA],
      emails: [{ value: 'first@example.test' }, { value: 'primary@example.test', primary: true }],
      name: { givenName: 'Ada', familyName: 'Lovelace' },
    });
    expect(userSchema.parse(fromEmails.body)).toMatchObject({
      userName: 'primary@example.test',
      displayName: 'Ada Lovelace',
    });

    const firstEmail = await tv.scim('POST', '/Users', {
      schemas: [SCIM_USER_SCHEMA],
      emails: [{ value: 'only@example.test' }],
      name: { formatted: 'Formatted Name', givenName: 'Ignored' },
    });
    expect(userSchema.parse(firstEmail.body)).toMatchObject({
      userName: 'only@example.test',
      displayName: 'Formatted Name',
    });

    const userNameWins = await tv.scim('POST', '/Users', newUser('wins@example.test', 'Madonna', { emails: [{ value: 'loses@example.test', primary: true }] }));
    const madonna = userSchema.parse(userNameWins.body);
    expect(madonna.userName).toBe('wins@example.test');
    expect(madonna.name).toEqual({ formatted: 'Madonna', givenName: null, familyName: null });

    const noEmail = await tv.scim('POST', '/Users', { schemas: [SCIM_USER_SCHEMA], displayName: 'No Mail' });
    expectScimError(noEmail, 400, 'invalidValue');
    const noName = await tv.scim('POST', '/Users', { schemas: [SCIM_USER_SCHEMA], userName: 'noname@example.test' });
    expectScimError(noName, 400, 'invalidValue');
    expectScimError(await tv.scim('POST', '/Users', newUser('not-an-address', 'X Y')), 400, 'invalidValue');
    const noSchemas = await tv.scim('POST', '/Users', { userName: 'a@example.test', displayName: 'A' });
    expectScimError(noSchemas, 400, 'invalidSyntax');
    expect(tv.emulator.dump().users).toHaveLength(3);
  });

  it('filters case-sensitively with eq, ne, co, sw and ew', async () => {
    const tv = await launch();
    const alice = await createUser(tv, 'Alice@Example.test', 'Alice Smith');
    const bob = await createUser(tv, 'bob@example.test', 'Bob "The Builder" Jones');

    expect(await listIds(tv, filterQuery('userName eq "Alice@Example.test"'))).toEqual([alice.id]);
    expect(await listIds(tv, filterQuery('userName eq "alice@example.test"'))).toEqual([]);
    expect(await listIds(tv, filterQuery('emails.value eq "bob@example.test"'))).toEqual([bob.id]);
    expect(await listIds(tv, filterQuery('USERNAME EQ "bob@example.test"'))).toEqual([bob.id]);
    expect(await listIds(tv, filterQuery('userName ne "bob@example.test"'))).toEqual([alice.id]);
    expect(await listIds(tv, filterQuery('userName co "example"'))).toEqual([bob.id]);
    expect(await listIds(tv, filterQuery('displayName sw "Ali"'))).toEqual([alice.id]);
    expect(await listIds(tv, filterQuery('displayName sw "ali"'))).toEqual([]);
    expect(await listIds(tv, filterQuery('displayName eq "alice smith"'))).toEqual([]);
    expect(await listIds(tv, filterQuery('name eq "Alice Smith"'))).toEqual([alice.id]);
    expect(await listIds(tv, filterQuery('name ew "Jones"'))).toEqual([bob.id]);
    expect(await listIds(tv, filterQuery('displayName eq "Bob \\"The Builder\\" Jones"'))).toEqual([bob.id]);

    const unsupported = ['userName gt "a"', 'externalId eq "x"', 'userName eq "a" and name eq "b"', 'userName eq a'];
    for (const bad of unsupported) {
      expectScimError(await tv.scim('GET', `/Users?${filterQuery(bad)}`), 400, 'invalidFilter');
    }
  });

  it('patches with replace only and refuses to change the address', async () => {
    const tv = await launch();
    const user = await createUser(tv, 'jane@example.test', 'Jane Doe');
    const path = `/Users/${user.id}`;

    const renamed = await tv.scim(
      'PATCH',
      path,
      patch({ op: 'Replace', path: 'displayName', value: 'Janet Doe' }, { op: 'replace', value: { active: false } }),
    );
    expect(renamed.status).toBe(200);
    expect(userSchema.parse(renamed.body)).toMatchObject({ displayName: 'Janet Doe', active: false });

    const docUrn = await tv.scim('PATCH', path, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: 'name.familyName', value: 'Smith' }],
    });
    expect(userSchema.parse(docUrn.body).displayName).toBe('Janet Smith');

    const sameAddress = patch({ op: 'replace', path: 'userName', value: 'jane@example.test' });
    expect((await tv.scim('PATCH', path, sameAddress)).status).toBe(200);

    const mutability = [
      patch({ op: 'replace', path: 'userName', value: 'new@example.test' }),
      patch({ op: 'replace', path: 'emails[type eq "work"].value', value: 'new@example.test' }),
      patch({ op: 'replace', value: { emails: [{ value: 'new@example.test', primary: true }] } }),
      patch({ op: 'replace', path: 'preferredLanguage', value: 'fr' }),
    ];
    for (const body of mutability) expectScimError(await tv.scim('PATCH', path, body), 400, 'mutability');
    // A rejected PATCH changes nothing, not even its valid operations.
    const mixed = patch({ op: 'replace', path: 'displayName', value: 'Should Not Stick' }, { op: 'replace', path: 'userName', value: 'other@example.test' });
    expectScimError(await tv.scim('PATCH', path, mixed), 400, 'mutability');

    for (const unsupported of [
      { op: 'add', path: 'displayName', value: 'X' },
      { op: 'remove', path: 'displayName' },
    ]) {
      expectScimError(await tv.scim('PATCH', path, patch(unsupported)), 400, 'invalidSyntax');
    }
    const wrongSchema = { schemas: [SCIM_USER_SCHEMA], Operations: [{ op: 'replace', path: 'active', value: true }] };
    expectScimError(await tv.scim('PATCH', path, wrongSchema), 400, 'invalidSyntax');
    const notBoolean = patch({ op: 'replace', path: 'active', value: 'yes' });
    expectScimError(await tv.scim('PATCH', path, notBoolean), 400, 'invalidValue');
    expectScimError(await tv.scim('PATCH', '/Users/u404', patch({ op: 'replace', path: 'active', value: true })), 404);

    expect(userSchema.parse((await tv.scim('GET', path)).body)).toMatchObject({
      userName: 'jane@example.test',
      displayName: 'Janet Smith',
      active: false,
    });
  });

  it('replaces the mutable attributes with PUT and keeps the address', async () => {
    const tv = await launch();
    const user = await createUser(tv, 'put@example.test', 'Put Me');
    const body = newUser('put@example.test', 'Put Again', { active: false });
    const replaced = await tv.scim('PUT', `/Users/${user.id}`, body);
    expect(userSchema.parse(replaced.body)).toMatchObject({ displayName: 'Put Again', active: false });
    const moved = await tv.scim('PUT', `/Users/${user.id}`, newUser('moved@example.test', 'Put Again'));
    expectScimError(moved, 400, 'mutability');
  });

  it('answers DELETE with 405 and counts it', async () => {
    const tv = await launch();
    const user = await createUser(tv, 'stay@example.test');
    const answer = await tv.scim('DELETE', `/Users/${user.id}`);
    expectScimError(answer, 405);
    expect(answer.headers.get('allow')).toBe('GET, PUT, PATCH');
    expect((await tv.scim('GET', `/Users/${user.id}`)).status).toBe(200);
    expect(tv.emulator.stats.byRoute).toMatchObject({ 'DELETE /Users': 1, 'POST /Users': 1, 'PATCH /Users': 0 });
    expect(tv.emulator.stats.writes).toBe(1);
  });

  it('rejects addresses taken in the company (case-insensitively) or outside it', async () => {
    const tv = await launch({ outsideEmails: ['Taken@Elsewhere.test'] });
    await createUser(tv, 'dup@example.test');
    const duplicate = await tv.scim('POST', '/Users', newUser('DUP@example.test', 'Dup'));
    expect(expectScimError(duplicate, 409, 'uniqueness').detail).toBe('User already exists');

    const outside = expectScimError(await tv.scim('POST', '/Users', newUser('taken@elsewhere.test', 'Out')), 409);
    expect(outside.detail).toMatch(/outside the company/);

    tv.emulator.configure({ outsideEmails: ['later@elsewhere.test'] });
    expectScimError(await tv.scim('POST', '/Users', newUser('later@elsewhere.test', 'Late')), 409);
    expect((await tv.scim('POST', '/Users', newUser('taken@elsewhere.test', 'Back'))).status).toBe(201);
    expect(tv.emulator.dump().outsideEmails).toEqual(['later@elsewhere.test']);
  });
});

describe('groups', () => {
  async function groupMembers(tv: Emulated, id: string): Promise<string[] | undefined> {
    return groupSchema.parse((await tv.scim('GET', `/Groups/${id}`)).body).members?.map((member) => member.value);
  }

  it('creates, patches, renames and deletes groups', async () => {
    const tv = await launch();
    const [a, b, c] = [await createUser(tv, 'a@example.test'), await createUser(tv, 'b@example.test'), await createUser(tv, 'c@example.test')];
    const created = await tv.scim('POST', '/Groups', {
      schemas: [SCIM_GROUP_SCHEMA],
      displayName: 'Support',
      members: [{ value: a.id }],
    });
    expect(created.status).toBe(201);
    const group = groupSchema.parse(created.body);
    expect(group).toMatchObject({ schemas: [SCIM_GROUP_SCHEMA], displayName: 'Support', members: [{ value: a.id }] });
    const path = `/Groups/${group.id}`;

    const add = patch({ op: 'Add', path: 'members', value: [{ value: b.id }, { value: c.id }] });
    expect((await tv.scim('PATCH', path, add)).status).toBe(204);
    expect(await groupMembers(tv, group.id)).toEqual([a.id, b.id, c.id]);

    await tv.scim('PATCH', path, patch({ op: 'remove', path: `members[value eq "${a.id}"]` }));
    await tv.scim('PATCH', path, patch({ op: 'Remove', path: 'members', value: [{ value: b.id }] }));
    expect(await groupMembers(tv, group.id)).toEqual([c.id]);

    await tv.scim('PATCH', path, patch({ op: 'replace', path: 'members', value: [{ value: a.id }, { value: b.id }] }));
    expect(await groupMembers(tv, group.id)).toEqual([a.id, b.id]);

    // Okta renames with the id repeated in a path-less replace.
    await tv.scim('PATCH', path, patch({ op: 'replace', value: { id: group.id, displayName: 'Helpdesk' } }));
    const byName = filterQuery('displayName eq "Helpdesk"');
    const renamed = await tv.scim('GET', `/Groups?${byName}&excludedAttributes=members`);
    const listed = listSchema.parse(renamed.body);
    expect(listed).toMatchObject({ totalResults: 1, startIndex: 0 });
    expect(listed.Resources[0]).toEqual({ schemas: [SCIM_GROUP_SCHEMA], id: group.id, displayName: 'Helpdesk' });
    const wrongCase = await tv.scim('GET', `/Groups?${filterQuery('displayName eq "helpdesk"')}`);
    expect(listSchema.parse(wrongCase.body).totalResults).toBe(0);

    await tv.scim('PATCH', path, patch({ op: 'remove', path: 'members' }));
    expect(await groupMembers(tv, group.id)).toEqual([]);

    expect((await tv.scim('DELETE', path)).status).toBe(204);
    expectScimError(await tv.scim('GET', path), 404);
    expectScimError(await tv.scim('DELETE', path), 404);
    expect(tv.emulator.dump().groups).toEqual([]);
  });

  it('refuses unknown members, duplicate names and unsupported operations, all-or-nothing', async () => {
    const tv = await launch();
    const user = await createUser(tv, 'm@example.test');
    const unknown = await tv.scim('POST', '/Groups', {
      schemas: [SCIM_GROUP_SCHEMA],
      displayName: 'Ghosts',
      members: [{ value: 'u7777777' }],
    });
    expectScimError(unknown, 400, 'invalidValue');

    const created = await tv.scim('POST', '/Groups', { schemas: [SCIM_GROUP_SCHEMA], displayName: 'Sales' });
    const group = groupSchema.parse(created.body);
    await tv.scim('POST', '/Groups', { schemas: [SCIM_GROUP_SCHEMA], displayName: 'Marketing' });
    const duplicate = await tv.scim('POST', '/Groups', { schemas: [SCIM_GROUP_SCHEMA], displayName: 'SALES' });
    expectScimError(duplicate, 409, 'uniqueness');
    const clash = patch({ op: 'replace', path: 'displayName', value: 'marketing' });
    expectScimError(await tv.scim('PATCH', `/Groups/${group.id}`, clash), 409, 'uniqueness');

    const halfBad = patch(
      { op: 'replace', path: 'displayName', value: 'Renamed' },
      { op: 'add', path: 'members', value: [{ value: user.id }, { value: 'u7777777' }] },
    );
    expectScimError(await tv.scim('PATCH', `/Groups/${group.id}`, halfBad), 400, 'invalidValue');
    expect(groupSchema.parse((await tv.scim('GET', `/Groups/${group.id}`)).body)).toMatchObject({
      displayName: 'Sales',
      members: [],
    });
    expectScimError(await tv.scim('PATCH', `/Groups/${group.id}`, patch({ op: 'remove' })), 400, 'noTarget');
    const move = patch({ op: 'move', path: 'members' });
    expectScimError(await tv.scim('PATCH', `/Groups/${group.id}`, move), 400, 'invalidSyntax');
  });

  it('answers every /Groups request with 404 when the tenant has no groups', async () => {
    const tv = await launch({ groups: false });
    expectScimError(await tv.scim('GET', '/Groups?count=1'), 404);
    expectScimError(await tv.scim('POST', '/Groups', { schemas: [SCIM_GROUP_SCHEMA], displayName: 'X' }), 404);
    expect((await tv.scim('GET', '/Users')).status).toBe(200);
  });
});

describe('web API and auth', () => {
  it('returns the token owner, who is a company user from the start', async () => {
    const tv = await launch({ owner: { email: 'Owner@Example.test', name: 'Olive Owner' } });
    const account = await tv.web('/account');
    expect(account.status).toBe(200);
    expect(account.body).toEqual({ userid: 'u1000001', email: 'Owner@Example.test', name: 'Olive Owner' });
    expect(await listIds(tv, filterQuery('userName eq "Owner@Example.test"'))).toEqual(['u1000001']);
    expectScimError(await tv.scim('POST', '/Users', newUser('owner@example.test', 'Again')), 409, 'uniqueness');

    tv.emulator.configure({ owner: undefined });
    expect(await tv.web('/account')).toMatchObject({ status: 404, body: { error: 'not_found', error_code: 404 } });
  });

  it('answers 401 with a Web API body for missing or unknown tokens', async () => {
    const tv = await launch();
    const answers = [await tv.scim('GET', '/Users', undefined, null), await tv.scim('GET', '/Users', undefined, 'nope'), await tv.web('/account', 'nope')];
    for (const answer of answers) {
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ error: 'invalid_token', error_code: 401 });
    }
    expect(tv.emulator.stats).toMatchObject({ requests: 3, writes: 0 });
  });
});

describe('request bodies', () => {
  it('accepts application/json, refuses other media types and oversized bodies', async () => {
    const tv = await launch();
    const asJson = await fetch(`${tv.address.baseUrl}/Users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify(newUser('json@example.test', 'Jay Son')),
    });
    expect(asJson.status).toBe(201);
    const asText = await fetch(`${tv.address.baseUrl}/Users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' },
      body: JSON.stringify(newUser('text@example.test', 'Tex T')),
    });
    expect(asText.status).toBe(415);
    const huge = newUser('huge@example.test', 'Huge', { padding: 'x'.repeat(6 * 1024 * 1024) });
    expectScimError(await tv.scim('POST', '/Users', huge), 413);
    const broken = await fetch(`${tv.address.baseUrl}/Users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/scim+json' },
      body: '{"userName": ',
    });
    expect(broken.status).toBe(400);
    expect(tv.emulator.dump().users.map((user) => user.userName)).toEqual(['json@example.test']);
  });
});

describe('switches', () => {
  it('rate-limits with 429 and Retry-After, changes nothing meanwhile, and recovers after the window', async () => {
    const tv = await launch({ rateLimit: { max: 2, windowMs: 800 } });
    expect((await tv.scim('GET', '/Users')).status).toBe(200);
    expect((await tv.scim('GET', '/Users')).status).toBe(200);
    const limited = await tv.scim('POST', '/Users', newUser('late@example.test', 'Too Soon'));
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.body).toMatchObject({ error: 'rate_limit_reached', error_code: 429 });
    expect(tv.emulator.dump().users).toEqual([]);
    expect(tv.emulator.stats.rateLimited).toBe(1);

    await sleep(850);
    expect((await tv.scim('POST', '/Users', newUser('late@example.test', 'In Time'))).status).toBe(201);
  });

  it("applies the write before an injected 5xx in mode 'after', and not in mode 'before'", async () => {
    const tv = await launch({ failureRate: 1, failureMode: 'after' });
    const maybeCreated = await tv.scim('POST', '/Users', newUser('maybe@example.test', 'Maybe Created'));
    expect([500, 502, 503]).toContain(maybeCreated.status);
    expectScimError(maybeCreated, maybeCreated.status);

    tv.emulator.configure({ failureMode: 'before' });
    const notCreated = await tv.scim('POST', '/Users', newUser('never@example.test', 'Never Created'));
    expect([500, 502, 503]).toContain(notCreated.status);

    tv.emulator.configure({ failureRate: 0 });
    expect(await listIds(tv, filterQuery('userName eq "maybe@example.test"'))).toEqual(['u1000001']);
    expect(await listIds(tv, filterQuery('userName eq "never@example.test"'))).toEqual([]);
    expect(tv.emulator.stats).toMatchObject({ injectedFailures: 2, writes: 1 });
  });

  it('injects the same failures for the same seed', async () => {
    const statuses = async (seed: number) => {
      const tv = await launch({ failureRate: 0.4, seed });
      const seen: number[] = [];
      for (let i = 0; i < 40; i++) seen.push((await tv.scim('GET', '/Users')).status);
      expect(tv.emulator.stats.injectedFailures).toBe(seen.filter((status) => status >= 500).length);
      return seen;
    };
    const first = await statuses(42);
    expect(await statuses(42)).toEqual(first);
    expect(first).toContain(200);
    expect(first.some((status) => [500, 502, 503].includes(status))).toBe(true);
    expect(await statuses(7)).not.toEqual(first);
  });

  it('delays answers by the configured latency', async () => {
    const tv = await launch({ latencyMs: 120 });
    const started = performance.now();
    await tv.scim('GET', '/Users');
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });
});

describe('state and admin routes', () => {
  it('round-trips users, groups, outside addresses and id counters through dump and load', async () => {
    const tv = await launch({ outsideEmails: ['out@elsewhere.test'] });
    const user = await createUser(tv, 'kept@example.test', 'Kept User');
    const group = { schemas: [SCIM_GROUP_SCHEMA], displayName: 'Kept', members: [{ value: user.id }] };
    expect((await tv.scim('POST', '/Groups', group)).status).toBe(201);
    const dump = JSON.parse(JSON.stringify(tv.emulator.dump())) as unknown;

    const copy = await launch();
    copy.emulator.load(emulatorStateSchema.parse(dump));
    expect(copy.emulator.dump()).toEqual(dump);
    const original = await tv.scim('GET', `/Users/${user.id}`);
    expect((await copy.scim('GET', `/Users/${user.id}`)).body).toEqual(original.body);
    expect((await createUser(copy, 'next@example.test')).id).toBe('u1000002');
    expectScimError(await copy.scim('POST', '/Users', newUser('out@elsewhere.test', 'Out')), 409);

    expect(() => copy.emulator.load({ users: [], groups: [{ id: '1', displayName: 'G', memberIds: ['u1'] }], outsideEmails: [] })).toThrow(/unknown member/);
    expect(copy.emulator.dump().users).toHaveLength(2);
  });

  it('serves state, stats and config over the admin routes', async () => {
    const tv = await launch();
    await createUser(tv, 'admin@example.test');
    expect((await tv.admin('GET', '/state')).body).toEqual(tv.emulator.dump());
    const stats = await tv.admin('GET', '/stats');
    expect(stats.body).toMatchObject({ requests: 1, writes: 1, byRoute: { 'POST /Users': 1 } });

    expect((await tv.admin('POST', '/config', { groups: false, latencyMs: null })).status).toBe(204);
    expectScimError(await tv.scim('GET', '/Groups'), 404);
    const invalid = await tv.admin('POST', '/config', { failureRate: 2 });
    expect(invalid.status).toBe(400);
    expect((await tv.admin('POST', '/config', { tokens: ['x'] })).status).toBe(400);

    expect((await tv.admin('POST', '/reset-stats')).status).toBe(204);
    expect(tv.emulator.stats).toMatchObject({ requests: 0, writes: 0, byRoute: { 'POST /Users': 0 } });
    expect((await tv.admin('GET', '/nothing')).status).toBe(404);
  });

  it('runs from a state file and writes its state on SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'emulator-'));
    try {
      const stateFile = join(dir, 'in.json');
      const dumpOnExit = join(dir, 'out.json');
      const state = {
        users: [{ id: 'u2000000', userName: 'seeded@example.test', displayName: 'Seeded User', active: true }],
        groups: [],
      };
      await writeFile(stateFile, JSON.stringify(state));
      const lines: string[] = [];
      const options = { tokens: [TOKEN], port: 0, host: '127.0.0.1', stateFile, dumpOnExit };
      const emulator = await runEmulator(options, (line) => lines.push(line));
      running.push(emulator);
      expect(lines.some((line) => line.includes('/scim/v2'))).toBe(true);
      expect(emulator.dump().counters.nextUserNumber).toBe(2_000_001);

      process.emit('SIGTERM', 'SIGTERM');
      await expect.poll(() => readFile(dumpOnExit, 'utf8').catch(() => ''), { timeout: 5000 }).not.toBe('');
      const written = emulatorStateSchema.parse(JSON.parse(await readFile(dumpOnExit, 'utf8')));
      expect(written.users).toEqual(state.users);
      expect(process.listenerCount('SIGTERM')).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('scale', () => {
  it('creates 20,000 users and lists them in pages of 1000', async () => {
    const tv = await launch();
    const total = 20_000;
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const n = next++;
        const answer = await tv.scim('POST', '/Users', newUser(`bulk${n}@example.test`, `Bulk User ${n}`));
        expect(answer.status).toBe(201);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));

    const seen: string[] = [];
    for (let start = 1; start <= total; start += 1000) {
      const page = listSchema.parse((await tv.scim('GET', `/Users?startIndex=${start}&count=1000`)).body);
      expect(page).toMatchObject({ totalResults: total, itemsPerPage: 1000, startIndex: 0 });
      seen.push(...page.Resources.map((user) => user.id));
    }
    expect(new Set(seen).size).toBe(total);
    expect(seen[0]).toBe('u1000001');
    expect(seen.at(-1)).toBe(`u${1_000_000 + total}`);
    expect(await listIds(tv, filterQuery('userName eq "bulk19999@example.test"'))).toHaveLength(1);
  });
});
