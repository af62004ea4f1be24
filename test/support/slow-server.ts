import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real local server whose every answer starts at once and then trickles: one byte every 300 ms,
 * never idle long enough for a socket timeout, never done. `requests` records the paths asked for.
 */
export async function tricklingServer(first = '['): Promise<{ origin: string; requests: string[]; close(): void }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json', 'x-total-count': '1' });
    res.write(first);
    const drip = setInterval(() => res.write(' '), 300);
    res.on('close', () => clearInterval(drip));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
