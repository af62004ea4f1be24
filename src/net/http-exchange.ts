import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import { registerSecret } from './secrets.js';

/**
 * One HTTP request and its whole answer as text, on Node's own keep-alive agents: the lean path
 * for a client that sends thousands of small requests to one host and judges every status and body
 * itself. It follows no redirect, reads at most `maxBytes` of an answer, and ends an exchange at its
 * deadline (answer body included), on the caller's signal, or when the socket stays silent for `idleMs`.
 * A failure is an ExchangeError that carries a code and nothing of the request (whose headers hold
 * credentials).
 */

export interface ExchangeAgents {
  http: HttpAgent;
  /** An https.Agent, or a proxy's agent (an http.Agent that tunnels with CONNECT). */
  https: HttpAgent;
  /** A proxy's agents rewrite a request's headers (Proxy-Authorization, the absolute path). */
  proxied: boolean;
}

/**
 * Keep-alive agents for requests to `baseUrl`: direct, or through the proxy HTTPS_PROXY / HTTP_PROXY
 * / ALL_PROXY name for it (NO_PROXY honoured), as the HTTP library of the other clients does. A
 * proxy's user and password are credentials: registered with the scrubber, never shown.
 */
export function keepAliveAgents(baseUrl?: string): ExchangeAgents {
  const proxy = baseUrl ? getProxyForUrl(baseUrl) : '';
  if (proxy) {
    registerUrlCredentials(proxy);
    return { http: new HttpProxyAgent(proxy, { keepAlive: true }), https: new HttpsProxyAgent(proxy, { keepAlive: true }), proxied: true };
  }
  return { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }), proxied: false };
}

function registerUrlCredentials(url: string): void {
  try {
    const { username, password } = new URL(url);
    for (const part of [username, password]) if (part) registerSecret(decodeURIComponent(part));
  } catch {
    // An unparseable proxy URL is refused by the agent when it is used, with a code only.
  }
}

export interface ExchangeRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string;
  /** The caller's: ends the exchange early (a shutdown). */
  signal?: AbortSignal;
  /** The whole exchange, answer body included, ends in ETIMEDOUT after this long. */
  deadlineMs: number;
  maxBytes: number;
  /** Longest silence of the socket. */
  idleMs: number;
}

export interface ExchangeAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

export class ExchangeError extends Error {
  constructor(readonly code: string) {
    super(`HTTP exchange failed: ${code}`);
    this.name = 'ExchangeError';
  }
}

function codeOf(err: unknown): string {
  if (err instanceof ExchangeError) return err.code;
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return 'ERR_NETWORK';
}

export function exchange(agents: ExchangeAgents, request: ExchangeRequest): Promise<ExchangeAnswer> {
  return new Promise<ExchangeAnswer>((resolve, reject) => {
    let settled = false;
    // One timer, not an AbortSignal.timeout per request: the deadline is on every request's path.
    const deadline = setTimeout(() => {
      fail(new ExchangeError('ETIMEDOUT'));
      req?.destroy();
    }, request.deadlineMs);
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      reject(new ExchangeError(codeOf(err)));
    };
    const https = request.url.protocol === 'https:';
    const length = request.body === undefined ? undefined : String(Buffer.byteLength(request.body));
    let headers: string[] | Record<string, string>;
    if (agents.proxied) {
      // A proxy's agent sets headers of its own on the request: they must stay editable.
      headers = length === undefined ? request.headers : { ...request.headers, 'Content-Length': length };
    } else {
      // As name/value pairs, Node writes them as given instead of validating and storing each one
      // (and adds no Host of its own): a good part of a small request's cost.
      headers = ['Host', request.url.host];
      for (const name in request.headers) headers.push(name, request.headers[name] as string);
      if (length !== undefined) headers.push('Content-Length', length);
    }
    let req: ClientRequest | undefined;
    const onAnswer = (res: IncomingMessage) => {
      const tooLarge = () => {
        fail(new ExchangeError('ERR_BODY_TOO_LARGE'));
        req?.destroy();
      };
      if (Number(res.headers['content-length']) > request.maxBytes) return tooLarge();
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > request.maxBytes) return tooLarge();
        chunks.push(chunk);
      });
      res.on('error', fail);
      // A connection that closes before the body's end is a failure, never a short answer.
      res.on('close', () => {
        if (!res.complete) fail(new ExchangeError('ECONNRESET'));
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks, size).toString('utf8') });
      });
    };
    try {
      const { url } = request;
      const options = {
        protocol: url.protocol,
        hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        method: request.method,
        headers,
        agent: https ? agents.https : agents.http,
        // The deadline already ends a silence as long as the whole exchange may last.
        ...(request.idleMs < request.deadlineMs ? { timeout: request.idleMs } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
      };
      req = https ? httpsRequest(options, onAnswer) : httpRequest(options, onAnswer);
    } catch (err) {
      fail(err);
      return;
    }
    const sent = req;
    sent.on('timeout', () => {
      fail(new ExchangeError('ETIMEDOUT'));
      sent.destroy();
    });
    sent.on('error', fail);
    sent.end(request.body);
  });
}
