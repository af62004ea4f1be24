import { z } from 'zod';
import { readJsonBody, webError, type Reply } from '../protocol.js';
import type { EmulatorStore } from '../store.js';
import type { WebApiContext, WebApiRoute } from './route.js';

/*
 * The company's licence, the Web API user list with each user's SSO status, and the SSO domains
 * with their inclusion and exclusion lists (TeamViewerPS: Get-TeamViewerLicense,
 * Get-TeamViewerUser, Get-TeamViewerSsoDomain, Get/Add/Remove-TeamViewerSsoExclusion).
 */

/** Seats of the emulated licence when the `seats` switch is off. */
export const DEFAULT_SEATS = 10_000;
/** Entries per page of an SSO list, and at most per write (TeamViewerPS sends 100 per call). */
export const SSO_LIST_BATCH = 100;
/** Users per page of GET /users when the `pageSizeMax` switch is off. */
const USERS_PAGE = 1000;

/** The `ssoDomains` switch: the company's SSO domains and the lists they start with. */
export const emulatorSsoDomainSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  inclusion: z.array(z.string()).optional(),
  exclusion: z.array(z.string()).optional(),
});
export type EmulatorSsoDomain = z.infer<typeof emulatorSsoDomainSchema>;

interface SsoLists {
  /** The switch value the lists were seeded from: configuring it again starts them afresh. */
  seed: readonly EmulatorSsoDomain[] | null | undefined;
  domains: Map<string, { name: string; inclusion: string[]; exclusion: string[] }>;
}

/** Per store, so loading a state (a new store) resets the lists with the users. */
const ssoListsByStore = new WeakMap<EmulatorStore, SsoLists>();

function ssoLists(ctx: WebApiContext): SsoLists {
  const store = ctx.store();
  const seed = ctx.switches().ssoDomains;
  const existing = ssoListsByStore.get(store);
  if (existing && existing.seed === seed) return existing;
  const domains = new Map((seed ?? []).map((d) => [d.id, { name: d.name, inclusion: [...(d.inclusion ?? [])], exclusion: [...(d.exclusion ?? [])] }]));
  const lists: SsoLists = { seed, domains };
  ssoListsByStore.set(store, lists);
  return lists;
}

const key = (email: string) => email.trim().toLowerCase();

/** An opaque token: the offset of the next page. */
function continuation(next: number, total: number): { continuation_token?: string } {
  return next < total ? { continuation_token: Buffer.from(`o:${next}`).toString('base64url') } : {};
}

function offsetOf(token: string | null): number | Reply {
  if (token === null || token === '') return 0;
  const match = /^o:(\d+)$/.exec(Buffer.from(token, 'base64url').toString());
  return match ? Number(match[1]) : webError(400, 'invalid_request', 'The continuation token is not valid');
}

/** The Web API's numeric SSO status of a user (0 Unknown … 6 NotIncluded); 1 Active unless a switch says otherwise. */
function ssoStatusOf(ctx: WebApiContext, email: string): number {
  const set = ctx.switches().ssoStatus ?? {};
  for (const [address, status] of Object.entries(set)) if (key(address) === key(email)) return status;
  return 1;
}

const emailsBody = z.object({ emails: z.array(z.string()).min(1) });

export const companyRoute: WebApiRoute = async ({ method, segments, query, req }, ctx) => {
  const [area, id, list, ...rest] = segments;

  if (area === 'company' && id === 'license' && segments.length === 2) {
    if (method !== 'GET') return webError(405, 'method_not_allowed', 'Use GET');
    const assignedUsers = ctx.store().userList.filter((u) => u.active).length;
    const maxAssignments = ctx.switches().seats ?? DEFAULT_SEATS;
    return {
      status: 200,
      body: {
        companyId: 1,
        companyName: 'Emulated company',
        available_licenses: [
          {
            licenseName: 'Tensor',
            licenseId: '00000000-0000-4000-8000-000000000001',
            type: 'Tensor',
            isActive: true,
            displayName: 'TeamViewer Tensor (emulated)',
            assignedUsers,
            maxAssignments,
          },
        ],
      },
    };
  }

  if (area === 'users' && segments.length === 1) {
    if (method !== 'GET') return webError(405, 'method_not_allowed', 'The emulator serves only GET /users');
    const users = ctx.store().userList;
    const offset = offsetOf(query.get('continuationToken'));
    if (typeof offset !== 'number') return offset;
    const size = ctx.pageSize() ?? USERS_PAGE;
    const page = users.slice(offset, offset + size).map((u) => ({
      id: u.id,
      name: u.displayName,
      email: u.userName,
      active: u.active,
      sso_status: ssoStatusOf(ctx, u.userName),
    }));
    return { status: 200, body: { users: page, ...continuation(offset + size, users.length) } };
  }

  if (area !== 'ssoDomain') return undefined;
  const lists = ssoLists(ctx);
  if (segments.length === 1) {
    if (method !== 'GET') return webError(405, 'method_not_allowed', 'Use GET');
    return { status: 200, body: { domains: [...lists.domains].map(([domainId, d]) => ({ DomainId: domainId, DomainName: d.name })) } };
  }
  if (segments.length !== 3 || (list !== 'exclusion' && list !== 'inclusion') || rest.length > 0) return webError(404, 'not_found', 'No such SSO route');
  const domain = id === undefined ? undefined : lists.domains.get(id);
  if (!domain) return webError(404, 'not_found', `No SSO domain ${id ?? ''}`);
  const entries = list === 'exclusion' ? domain.exclusion : domain.inclusion;

  if (method === 'GET') {
    const offset = offsetOf(query.get('ct'));
    if (typeof offset !== 'number') return offset;
    return { status: 200, body: { emails: entries.slice(offset, offset + SSO_LIST_BATCH), ...continuation(offset + SSO_LIST_BATCH, entries.length) } };
  }
  // The inclusion list is only read here; the emulator does not change it.
  if (list === 'inclusion' || (method !== 'POST' && method !== 'DELETE')) return webError(405, 'method_not_allowed', 'Not served by the emulator');
  const parsed = emailsBody.safeParse(await readJsonBody(req));
  if (!parsed.success) return webError(400, 'invalid_request', 'The body must be { "emails": [ … ] } with at least one address');
  const emails = parsed.data.emails;
  if (emails.length > SSO_LIST_BATCH) return webError(400, 'invalid_request', `At most ${SSO_LIST_BATCH} e-mails per call`);
  if (method === 'POST') {
    const included = new Set(domain.inclusion.map(key));
    const both = emails.filter((e) => included.has(key(e)));
    if (both.length > 0) return webError(400, 'invalid_request', `On the inclusion list already, cannot be excluded too: ${both.join(', ')}`);
    const present = new Set(domain.exclusion.map(key));
    for (const email of emails) {
      if (present.has(key(email))) continue;
      present.add(key(email));
      domain.exclusion.push(email);
    }
  } else {
    const gone = new Set(emails.map(key));
    domain.exclusion = domain.exclusion.filter((e) => !gone.has(key(e)));
  }
  ctx.countWrite();
  return { status: 204 };
};
