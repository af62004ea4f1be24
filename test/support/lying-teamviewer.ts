import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LyingRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  body: string;
  authorization: string;
}

/** An answer of the liar's own, or `trickle`: a 200 whose body comes one byte a second, for ever. */
export type LyingReply = { status: number; body: unknown; headers?: Record<string, string> } | 'trickle';

/**
 * A TeamViewer that lies: a proxy in front of the emulator whose rule may answer a request itself
 * (a 200 carrying an error, an early empty page, an echoed token) instead of passing it on.
 */
export interface LyingTeamViewer {
  baseUrl: string;
  rule: (req: LyingRequest) => LyingReply | undefined;
  /** The most writes (anything but GET) that were open at once. */
  mostWritesInFlight: number;
  close(): Promise<void>;
}

export async function startLyingTeamViewer(upstreamBaseUrl: string): Promise<LyingTeamViewer> {
  const upstream = new URL(upstreamBaseUrl);
  const handle: LyingTeamViewer = { baseUrl: '', rule: () => undefined, mostWritesInFlight: 0, close: async () => undefined };
  let writesInFlight = 0;
  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const out = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    out.end(body);
  };
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET') {
      writesInFlight++;
      handle.mostWritesInFlight = Math.max(handle.mostWritesInFlight, writesInFlight);
      res.on('close', () => writesInFlight--);
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const reply = handle.rule({
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        body: body.toString(),
        authorization: String(req.headers.authorization ?? ''),
      });
      if (!reply) return forward(req, res, body);
      if (reply === 'trickle') {
        res.writeHead(200, { 'content-type': 'application/scim+json' });
        const timer = setInterval(() => res.write(' '), 1000);
        res.on('close', () => clearInterval(timer));
        return;
      }
      res.writeHead(reply.status, { 'content-type': 'application/scim+json', ...reply.headers });
      res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handle.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${upstream.pathname}`;
  handle.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return handle;
}

export const SCIM_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const SCIM_LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
