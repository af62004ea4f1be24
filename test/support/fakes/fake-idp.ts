/**
 * What every stateful IdP fake offers the fast-lane tests and the latency benchmark: a local HTTP
 * server in the vendor's wire format whose directory can be changed while tvsync watches it. Each
 * change is also written to the IdP's own change feed (Okta System Log, Graph delta, JumpCloud
 * Directory Insights), as the real service would, and pushed to a registered hook where the IdP
 * has hooks. Mutations return the time the change was made, for latency figures.
 */
export interface FakeIdp {
  readonly kind: 'okta' | 'entra' | 'jumpcloud';
  /** Base URL the tvsync source config points at. */
  readonly url: string;
  /**
   * The `source:` block (as a YAML-ready object) for a sync reading this fake, with the given
   * change-detection settings merged into its `changes:` block.
   */
  sourceConfig(changes?: Record<string, unknown>): Record<string, unknown>;
  /** A new person; in scope unless told otherwise. Returns the IdP id. */
  createUser(p: { email: string; givenName: string; familyName: string; active?: boolean; inScope?: boolean }): Promise<{ id: string; atMs: number }>;
  setActive(id: string, active: boolean): Promise<{ atMs: number }>;
  rename(id: string, givenName: string, familyName: string): Promise<{ atMs: number }>;
  /** Takes the person out of scope (unassigned from the app, removed from the scoping group) without touching the account. */
  setInScope(id: string, inScope: boolean): Promise<{ atMs: number }>;
  deleteUser(id: string): Promise<{ atMs: number }>;
  /** A group in scope (assigned to the app / listed in the sync), synced to TeamViewer as a group. */
  createGroup(name: string): Promise<{ id: string; atMs: number }>;
  addMember(groupId: string, userId: string): Promise<{ atMs: number }>;
  removeMember(groupId: string, userId: string): Promise<{ atMs: number }>;
  /** While on, every API request (feed and reads) fails the way this IdP fails (503, throttling); the directory itself is untouched. */
  setOutage(on: boolean): void;
  /** Requests answered so far, by a short label (`logs`, `users`, `delta`, `events`…), for the idle-cost figures. */
  requestCounts(): Record<string, number>;
  close(): Promise<void>;
}

/**
 * A `source:` block as a config file may hold it: tvsync refuses secrets written in the file, so
 * each secret value a fake put there is replaced by an `${ENV}` reference, returned with its value.
 */
export function secretsToEnv(
  source: Record<string, unknown>,
  secretKeys: ReadonlySet<string>,
): { source: Record<string, unknown>; env: Record<string, string> } {
  const env: Record<string, string> = {};
  let n = 0;
  const walk = (value: unknown, key?: string): unknown => {
    if (typeof value === 'string' && key !== undefined && secretKeys.has(key) && !value.startsWith('${')) {
      const name = `FAKE_IDP_SECRET_${n++}`;
      env[name] = value;
      return `\${${name}}`;
    }
    if (Array.isArray(value)) return value.map((v) => walk(v));
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    return value;
  };
  return { source: walk(source) as Record<string, unknown>, env };
}
