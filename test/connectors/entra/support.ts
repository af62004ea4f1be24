import nock from 'nock';
import { pino } from 'pino';
import { entraSourceConfigSchema } from '../../../src/connectors/entra/config.js';
import { createEntraSource, type EntraSourceDeps } from '../../../src/connectors/entra/source.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';

/** Shared by the fast-lane tests of the Entra connector: a source on nock'd Graph, and Graph's shapes. */

export const GRAPH = 'https://graph.microsoft.com';
export const SECRET = 'Sup3r~Secret.Value_123';
export const CLIENT_STATE = 'cs-7Qm2xVb9Lk4pZt8R';
const HOUR = 3_600_000;

const credential: NonNullable<EntraSourceDeps['credential']> = {
  getToken: async () => ({ token: 'test-token', expiresOnTimestamp: Date.now() + HOUR }),
};

export function sourceOf(overrides: Record<string, unknown> = {}, deps: Partial<EntraSourceDeps> = {}) {
  const state = deps.state ?? new MemoryStateStore();
  const config = entraSourceConfigSchema.parse({
    type: 'entra',
    tenantId: 'tid',
    clientId: 'cid',
    clientSecret: SECRET,
    scope: { mode: 'groups', groupIds: ['g1'] },
    ...overrides,
  });
  const source = createEntraSource(config, {
    state,
    log: pino({ level: 'silent' }),
    credential,
    backoff: { attempts: 3, baseMs: 1, capMs: 5, maxWaitMs: 2000 },
    ...deps,
  });
  return { source, state };
}

export function user(id: string, over: Record<string, unknown> = {}) {
  return {
    id,
    userPrincipalName: `${id}@contoso.test`,
    mail: `${id}.mail@contoso.test`,
    displayName: `User ${id}`,
    givenName: 'Given',
    surname: `Sur-${id}`,
    accountEnabled: true,
    preferredLanguage: 'en-US',
    ...over,
  };
}

export function page(value: unknown[], links: { next?: string; delta?: string } = {}) {
  return {
    '@odata.context': `${GRAPH}/v1.0/$metadata#directoryObjects`,
    value,
    ...(links.next ? { '@odata.nextLink': links.next } : {}),
    ...(links.delta ? { '@odata.deltaLink': links.delta } : {}),
  };
}

export const graph = () => nock(GRAPH).matchHeader('authorization', 'Bearer test-token');

export const assignment = (principalId: string, principalType: string, principalDisplayName: string | null, resourceId = 'sp1') => ({
  id: `as-${principalId}`,
  appRoleId: '00000000-0000-0000-0000-000000000000',
  principalId,
  principalType,
  principalDisplayName,
  resourceId,
});

export const userLink = (token: string) => `${GRAPH}/v1.0/users/delta?$deltatoken=${token}`;
export const groupLink = (token: string) => `${GRAPH}/v1.0/groups/delta?$deltatoken=${token}`;

/** The "from now" links a feed's first poll (or a fresh start) takes. */
export function mockLatest(scope: nock.Scope, users: string, groups: string): void {
  scope
    .get('/v1.0/users/delta')
    .query((q) => q.$deltaToken === 'latest')
    .reply(200, page([], { delta: userLink(users) }))
    .get('/v1.0/groups/delta')
    .query((q) => q.$deltaToken === 'latest')
    .reply(200, page([], { delta: groupLink(groups) }));
}

/** One delta round from `token`, on one page. */
export function mockRound(scope: nock.Scope, kind: 'users' | 'groups', token: string, value: unknown[], next: string): void {
  scope
    .get(`/v1.0/${kind}/delta`)
    .query({ $deltatoken: token })
    .reply(200, page(value, { delta: kind === 'users' ? userLink(next) : groupLink(next) }));
}
