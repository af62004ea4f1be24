import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedCall {
  path: string;
  body: Record<string, unknown>;
  /** The raw body, for leak checks. */
  text: string;
  atMs: number;
}

/** How the receiver answers one request: a status, or never (the socket is left open). */
export type ReceiverAnswer = number | 'hang';

/**
 * A local webhook endpoint that records every request it answers with 2xx in `calls` (what a
 * channel would show) and every request at all in `attempts`. `answer` decides each reply: by
 * default 200; a test scripts 500s, 429s or hangs, per request number.
 */
export async function startWebhookReceiver(answer: (attempt: number, path: string) => ReceiverAnswer = () => 200) {
  const calls: ReceivedCall[] = [];
  const attempts: ReceivedCall[] = [];
  const hanging: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // Recorded as empty: the test then fails on its shape.
      }
      const call = { path: req.url ?? '', body, text, atMs: Date.now() };
      attempts.push(call);
      const reply = answer(attempts.length, call.path);
      if (reply === 'hang') {
        hanging.push(res);
        return;
      }
      if (reply >= 200 && reply < 300) calls.push(call);
      res.writeHead(reply, { 'content-type': 'text/plain', ...(reply === 429 ? { 'retry-after': '0' } : {}) });
      res.end(reply >= 200 && reply < 300 ? 'ok' : 'failure');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    calls,
    attempts,
    /** Delivered calls of one condition and status (generic bodies). */
    of(condition: string, status?: 'firing' | 'resolved'): ReceivedCall[] {
      return calls.filter((c) => c.body.condition === condition && (status === undefined || c.body.status === status));
    },
    async close(): Promise<void> {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type WebhookReceiver = Awaited<ReturnType<typeof startWebhookReceiver>>;
