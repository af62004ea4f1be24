import { z } from 'zod';
import { SyncError } from '../model/failure.js';
import type { WebApiTransport } from './scim-client.js';

/*
 * The company's licence, its users' SSO status and the SSO domains' lists (Web API v1). Every
 * answer is parsed here; paging is checked (a token that repeats, or a page of items already seen,
 * is a failure, never an early end). A 403 comes back as a SyncError of class `forbidden`: the
 * caller turns the feature off with one line.
 */

/** Entries per SSO list write (TeamViewerPS sends at most 100 per call). */
export const SSO_WRITE_BATCH = 100;
/** No company comes near this; reaching it means the paging is broken. */
const MAX_PAGES = 10_000;

const licenceSchema = z.object({
  licenseName: z.string().nullish(),
  displayName: z.string().nullish(),
  licenseId: z.string().nullish(),
  type: z.union([z.string(), z.number()]).nullish(),
  isActive: z.boolean().nullish(),
  assignedUsers: z.number().int().nonnegative().nullish(),
  maxAssignments: z.number().int().nonnegative().nullish(),
});

const licenceAnswerSchema = z.object({ available_licenses: z.array(licenceSchema) });

const webUserSchema = z.object({
  id: z.union([z.string().min(1), z.number()]).transform(String),
  email: z.string().min(1),
  name: z.string().nullish(),
  active: z.boolean(),
  sso_status: z.number().int().nonnegative().nullish(),
});

const usersPageSchema = z.object({ users: z.array(webUserSchema), continuation_token: z.string().nullish() });
const domainsSchema = z.object({
  domains: z.array(z.object({ DomainId: z.union([z.string().min(1), z.number()]).transform(String), DomainName: z.string().nullish() })),
});
const emailsPageSchema = z.object({ emails: z.array(z.string()).nullish(), continuation_token: z.string().nullish() });
const anyBody = z.unknown();

export interface Licence {
  name: string;
  active: boolean;
  assignedUsers: number;
  /** Absent when the licence states no user limit (add-ons, channels). */
  maxAssignments?: number;
}

export interface WebUser {
  id: string;
  email: string;
  name?: string;
  active: boolean;
  /** 0-6 (plan/sso.ts names them); absent when TeamViewer gives none. */
  ssoStatus?: number;
}

export interface SsoDomain {
  id: string;
  name?: string;
}

export class CompanyClient {
  constructor(private readonly web: WebApiTransport) {}

  async licences(signal?: AbortSignal): Promise<Licence[]> {
    const answer = await this.web.webApi(
      { method: 'GET', path: '/company/license', route: '/company/license', ...(signal ? { signal } : {}) },
      { ok: [200], schema: licenceAnswerSchema, what: 'the company licence' },
    );
    return (answer?.available_licenses ?? []).map((l) => ({
      name: l.displayName ?? l.licenseName ?? l.licenseId ?? 'licence',
      active: l.isActive !== false,
      assignedUsers: l.assignedUsers ?? 0,
      ...(l.maxAssignments != null ? { maxAssignments: l.maxAssignments } : {}),
    }));
  }

  /** Every company user as the Web API lists them (with the SSO status SCIM does not carry). */
  async users(signal?: AbortSignal): Promise<WebUser[]> {
    const users: WebUser[] = [];
    const seen = new Set<string>();
    await this.pages('/users', 'continuationToken', usersPageSchema, 'a Web API user list', signal, (page) => {
      let fresh = 0;
      for (const u of page.users) {
        if (seen.has(u.id)) continue;
        seen.add(u.id);
        fresh++;
        users.push({
          id: u.id,
          email: u.email,
          active: u.active,
          ...(u.name ? { name: u.name } : {}),
          ...(u.sso_status != null ? { ssoStatus: u.sso_status } : {}),
        });
      }
      return { items: page.users.length, fresh, token: page.continuation_token ?? undefined };
    });
    return users;
  }

  /** One page of the user list, read and dropped: whether the token may list users, without reading the whole company. */
  async canListUsers(signal?: AbortSignal): Promise<void> {
    await this.web.webApi(
      { method: 'GET', path: '/users', route: '/users', ...(signal ? { signal } : {}) },
      { ok: [200], schema: usersPageSchema, what: 'a Web API user list' },
    );
  }

  async ssoDomains(signal?: AbortSignal): Promise<SsoDomain[]> {
    const answer = await this.web.webApi(
      { method: 'GET', path: '/ssoDomain', route: '/ssoDomain', ...(signal ? { signal } : {}) },
      { ok: [200], schema: domainsSchema, what: 'a list of SSO domains' },
    );
    return (answer?.domains ?? []).map((d) => ({ id: d.DomainId, ...(d.DomainName ? { name: d.DomainName } : {}) }));
  }

  /** The whole inclusion or exclusion list of one SSO domain (e-mails; user groups are kept as TeamViewer gives them). */
  async ssoList(domainId: string, list: 'inclusion' | 'exclusion', signal?: AbortSignal): Promise<string[]> {
    const emails: string[] = [];
    const path = `/ssoDomain/${encodeURIComponent(domainId)}/${list}`;
    await this.pages(path, 'ct', emailsPageSchema, `an SSO ${list} list`, signal, (page) => {
      const got = page.emails ?? [];
      emails.push(...got);
      return { items: got.length, fresh: got.length, token: page.continuation_token ?? undefined };
    });
    return emails;
  }

  /** Adds addresses to the domain's exclusion list, at most 100 per call. Nothing is ever removed here. */
  async addExclusions(domainId: string, emails: readonly string[]): Promise<void> {
    for (let i = 0; i < emails.length; i += SSO_WRITE_BATCH) {
      const batch = emails.slice(i, i + SSO_WRITE_BATCH);
      await this.web.webApi(
        { method: 'POST', path: `/ssoDomain/${encodeURIComponent(domainId)}/exclusion`, route: '/ssoDomain/{id}/exclusion', body: { emails: batch } },
        { ok: [200, 201, 204], schema: anyBody, what: 'an accepted SSO exclusion' },
      );
    }
  }

  /**
   * Reads pages until no continuation token comes back. A token seen before, or a page that brings
   * nothing new while it says more follow, is a failure (transient: the read is tried again).
   */
  private async pages<S extends z.ZodType>(
    path: string,
    tokenParam: string,
    schema: S,
    what: string,
    signal: AbortSignal | undefined,
    take: (page: z.output<S>) => { items: number; fresh: number; token: string | undefined },
  ): Promise<void> {
    const route = path.replace(/^\/ssoDomain\/[^/]+/, '/ssoDomain/{id}');
    const tokens = new Set<string>();
    let token: string | undefined;
    for (let n = 0; n < MAX_PAGES; n++) {
      const query = token !== undefined ? { [tokenParam]: token } : undefined;
      const page = await this.web.webApi(
        { method: 'GET', path, route, ...(query ? { query } : {}), ...(signal ? { signal } : {}) },
        { ok: [200], schema, what },
      );
      if (page === undefined) return;
      const got = take(page);
      if (got.token === undefined || got.token === '') return;
      const doubtful = (why: string) =>
        new SyncError('transient', `GET ${path} → 200 but ${why}; nothing is taken from this list, it is read again.`, { status: 200 });
      if (tokens.has(got.token)) throw doubtful('the continuation token repeats one already followed');
      if (got.fresh === 0) throw doubtful('a page brought nothing new while a continuation token says more follow');
      tokens.add(got.token);
      token = got.token;
    }
    throw new SyncError('invalid', `GET ${path} → more than ${MAX_PAGES} pages without an end; the paging looks broken, reading stopped.`, { status: 200 });
  }
}
