import type { IncomingMessage } from 'node:http';
import type { Reply } from '../protocol.js';
import type { EmulatorStore } from '../store.js';
import type { ActiveSwitches } from '../server.js';

/** One Web API v1 request as the emulator's feature modules (account, roles, licences, SSO) see it. */
export interface WebApiRequest {
  method: string;
  /** Path segments below /api/v1, decoded. */
  segments: string[];
  query: URLSearchParams;
  req: IncomingMessage;
}

/** What a Web API feature module may use of the emulator. */
export interface WebApiContext {
  store: () => EmulatorStore;
  owner: () => { email: string; name: string } | undefined;
  countWrite: () => void;
  /** The switches in force (null and undefined both mean off). */
  switches: () => Readonly<ActiveSwitches>;
  /** The `pageSizeMax` switch: the most items a list page may hold. */
  pageSize: () => number | undefined;
}

/** A feature's routes: a reply for a request it serves, undefined for one it does not. */
export type WebApiRoute = (request: WebApiRequest, ctx: WebApiContext) => Promise<Reply | undefined>;
