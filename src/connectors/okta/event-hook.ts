import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { payloadReason } from '../../net/payload.js';
import type { ChangeHint, HookAnswer, HookReceiver, HookRequest } from '../changes.js';
import { hintOf, type EventScope } from './events.js';
import { oktaEventHookSchema, oktaLogEventSchema } from './wire.js';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

function answer(status: number, body?: unknown): HookAnswer {
  return body === undefined ? { status } : { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/**
 * Okta event hooks: Okta sends the header named in the hook's set-up with the secret on every
 * request (the one-time verification included), then POSTs batches of System Log events.
 */
export function createOktaHookReceiver(settings: { authHeader: string; hookSecret: string }, rule: EventScope, log: Logger): HookReceiver {
  const expected = digest(settings.hookSecret);
  const authentic = (req: HookRequest): boolean => {
    const given = req.headers[settings.authHeader];
    // Equal-length digests, so the comparison takes as long whatever was sent.
    return given !== undefined && timingSafeEqual(digest(given), expected);
  };

  return {
    name: 'okta',
    async receive(req: HookRequest): Promise<{ answer: HookAnswer; hints: ChangeHint[] }> {
      if (!authentic(req)) return { answer: answer(401, { error: 'not authorised' }), hints: [] };
      const method = req.method.toUpperCase();
      if (method === 'GET') {
        const challenge = req.headers['x-okta-verification-challenge'];
        if (!challenge) return { answer: answer(400, { error: 'missing x-okta-verification-challenge' }), hints: [] };
        log.info('Okta event hook verified');
        return { answer: answer(200, { verification: challenge }), hints: [] };
      }
      if (method !== 'POST') return { answer: { status: 405, headers: { allow: 'GET, POST' } }, hints: [] };
      let body: unknown;
      try {
        body = JSON.parse(req.body);
      } catch {
        return { answer: answer(400, { error: 'body is not JSON' }), hints: [] };
      }
      const payload = oktaEventHookSchema.safeParse(body);
      if (!payload.success) {
        log.warn({ reason: payloadReason(payload.error) }, 'Okta event hook delivery refused: not an event hook payload');
        return { answer: answer(400, { error: 'not an Okta event hook payload' }), hints: [] };
      }
      const hints = new Map<string, ChangeHint>();
      let malformed = 0;
      for (const raw of payload.data.data.events) {
        const event = oktaLogEventSchema.safeParse(raw);
        if (!event.success) {
          malformed++;
          continue;
        }
        const hint = hints.has(event.data.uuid) ? undefined : hintOf(event.data, rule);
        if (hint) hints.set(event.data.uuid, hint);
      }
      // The System Log feed (or the next full cycle) still sees what could not be read here.
      if (malformed > 0) log.warn({ malformed }, 'Okta event hook events skipped as unreadable');
      return { answer: { status: 200 }, hints: [...hints.values()] };
    },
  };
}
