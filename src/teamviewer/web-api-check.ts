import type { ConnectionCheck } from '../connectors/source.js';
import { SyncError } from '../model/failure.js';
import { seatsOf } from '../plan/seats.js';
import { CompanyClient } from './company-client.js';
import { WARNING } from './connection-check.js';
import type { WebApiTransport } from './scim-client.js';

/*
 * The Web API side of `tvsync validate`: the licence's seats, and which Web API areas the token may
 * use, found by trying one read of each (403: no permission): the licence, one page of users, the
 * SSO domains. It only reads.
 */

type Check = ConnectionCheck['checks'][number];

export interface WebApiFeatures {
  seats: boolean;
  ssoReport: boolean;
  breakGlass: boolean;
}

type Access = { ok: true; detail?: string } | { ok: false; denied: boolean; detail: string };

async function tryRead(read: () => Promise<string | undefined>): Promise<Access> {
  try {
    const detail = await read();
    return detail === undefined ? { ok: true } : { ok: true, detail };
  } catch (err) {
    const denied = err instanceof SyncError && err.failureClass === 'forbidden';
    return { ok: false, denied, detail: denied ? 'no permission' : err instanceof Error ? err.message : String(err) };
  }
}

/** Never throws for a failed check. */
export async function checkWebApiAccess(transport: WebApiTransport, features: WebApiFeatures): Promise<Check[]> {
  const client = new CompanyClient(transport);
  const [licence, users, sso] = await Promise.all([
    tryRead(async () => {
      const seats = seatsOf(await client.licences());
      return seats ? `${seats.used} of ${seats.total} seats used, ${seats.free} free` : 'no licence states a user limit';
    }),
    tryRead(async () => {
      await client.canListUsers();
      return undefined;
    }),
    tryRead(async () => {
      const domains = await client.ssoDomains();
      return `${domains.length} SSO domain${domains.length === 1 ? '' : 's'}`;
    }),
  ]);
  const word = (a: Access) => (a.ok ? 'yes' : a.denied ? 'no permission' : `could not be read (${a.detail})`);
  const permissions: Check = {
    name: 'Web API permissions',
    ok: true,
    detail: `company licence: ${word(licence)}; users: ${word(users)}; SSO domains: ${word(sso)}`,
  };
  const seatsLine = licence.ok ? (licence.detail ?? '') : licence.denied ? 'no permission to read the company licence' : licence.detail;
  const seats: Check = {
    name: 'seats',
    ok: true,
    detail: features.seats
      ? licence.ok
        ? `${seatsLine}; creates beyond the free seats wait`
        : `${WARNING}${seatsLine}: seats.enabled is on, but cycles will create without a seat check`
      : `${seatsLine} (not checked before creates: seats.enabled is off)`,
  };
  const checks = [seats, permissions];
  if (features.ssoReport && !users.ok) checks.push({ name: 'SSO report', ok: true, detail: `${WARNING}sso.report is on, but the user list ${word(users)}` });
  if (features.breakGlass && !sso.ok)
    checks.push({ name: 'SSO break-glass', ok: true, detail: `${WARNING}sso.breakGlass is set, but SSO domains: ${word(sso)}` });
  return checks;
}
