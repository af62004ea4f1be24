import { connect, createServer, type Socket } from 'node:net';
import { listenLocally } from './redis-server.js';

interface Link {
  client: Socket;
  upstream: Socket;
  /** The last command bytes the client sent. */
  last: string;
  frozen: boolean;
}

/**
 * A TCP proxy in front of a Redis that can make connections go silent without closing them, as a
 * peer does that vanished in a fail-over: nothing arrives, nothing errors, the socket looks open.
 * `freeze(match)` silences every connection whose traffic matches, now or later, and every
 * connection opened afterwards (a reconnect reaches the same dead host).
 */
export async function startFreezingProxy(
  targetPort: number,
): Promise<{ url: string; freeze(match: (command: string) => boolean): void; close(): Promise<void> }> {
  const links = new Set<Link>();
  let match: ((command: string) => boolean) | undefined;
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const link: Link = { client, upstream, last: '', frozen: match !== undefined };
    links.add(link);
    client.on('data', (chunk: Buffer) => {
      link.last = chunk.toString('latin1');
      if (match?.(link.last)) link.frozen = true;
      if (!link.frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!link.frozen) client.write(chunk);
    });
    const drop = () => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  const port = await listenLocally(server);
  return {
    url: `redis://127.0.0.1:${port}`,
    freeze(predicate) {
      match = predicate;
      for (const link of links) if (predicate(link.last)) link.frozen = true;
    },
    async close() {
      for (const link of links) {
        link.client.destroy();
        link.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
