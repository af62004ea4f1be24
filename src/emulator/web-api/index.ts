import { accountRoute } from './account.js';
import { companyRoute } from './company.js';
import { rolesRoute } from './roles.js';
import type { WebApiRoute } from './route.js';

/** The Web API v1 routes the emulator serves, one module per feature; the first that answers wins. */
export const WEB_API_ROUTES: readonly WebApiRoute[] = [accountRoute, rolesRoute, companyRoute];
