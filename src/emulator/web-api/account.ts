import { webError } from '../protocol.js';
import type { WebApiRoute } from './route.js';

/** GET /api/v1/account: the account the script token belongs to. */
export const accountRoute: WebApiRoute = async ({ method, segments }, ctx) => {
  if (segments[0] !== 'account' || segments.length !== 1) return undefined;
  if (method !== 'GET') return webError(405, 'method_not_allowed', 'Use GET');
  const owner = ctx.owner();
  const user = owner && ctx.store().userByEmail(owner.email);
  if (!user) return webError(404, 'not_found', 'No token owner is configured');
  return { status: 200, body: { userid: user.id, email: user.userName, name: user.displayName } };
};
