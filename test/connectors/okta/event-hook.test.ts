import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { HookReceiver, HookRequest } from '../../../src/connectors/changes.js';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import { oktaSourceConfigSchema } from '../../../src/connectors/okta/config.js';
import { createOktaSource } from '../../../src/connectors/okta/source.js';
import { SECRET_KEYS, scrubSecrets } from '../../../src/net/secrets.js';
import { MemoryStateStore } from '../../../src/store/memory-state.js';

/** The okta event hook receiver: Okta's one-time verification, the shared secret header, events to hints. */

const SECRET = 'okta-hook-secret-7Hq2Zx9Lp4Wv';
const APP = '0oa1tvsynchook001';
const log = pino({ level: 'silent' });

function sourceFor(eventHook: Record<string, unknown>) {
  const config = oktaSourceConfigSchema.parse({
    type: 'okta',
    orgUrl: 'https://tvsync-hook.okta.com',
    auth: { method: 'apiToken', apiToken: '00aHookApiToken_Rt5' },
    scope: { mode: 'app', appId: APP },
    changes: { eventHook },
  });
  return createOktaSource(config, { state: new MemoryStateStore(), log });
}

async function receiver(eventHook: Record<string, unknown> = { enabled: true, hookSecret: SECRET }): Promise<HookReceiver> {
  const made = await sourceFor(eventHook).hookReceiver?.();
  if (!made) throw new Error('no receiver');
  return made;
}

function request(over: Partial<HookRequest> = {}): HookRequest {
  return { method: 'POST', headers: { authorization: SECRET, 'content-type': 'application/json' }, query: {}, body: '', ...over };
}

/** An event hook delivery as Okta POSTs it (one or more System Log events under data.events). */
function delivery(events: unknown[]): string {
  return JSON.stringify({
    eventType: 'com.okta.event_hook',
    eventTypeVersion: '1.0',
    cloudEventsVersion: '0.1',
    source: 'https://tvsync-hook.okta.com/api/v1/eventHooks/who1abc',
    eventId: 'b0a5f3a2-0000-4c8e-9f3a-000000000001',
    data: { events },
    eventTime: '2026-11-30T10:00:01.000Z',
    contentType: 'application/json',
  });
}

function event(uuid: string, eventType: string, target: unknown[]) {
  return {
    uuid,
    published: '2026-11-30T10:00:00.250Z',
    eventType,
    version: '0',
    displayMessage: eventType,
    severity: 'INFO',
    actor: { id: '00uadmin', type: 'User', alternateId: 'admin@example.com', displayName: 'Admin' },
    outcome: { result: 'SUCCESS', reason: null },
    target,
  };
}
const userT = (id: string) => ({ id, type: 'User', alternateId: `${id}@example.com`, displayName: id });

describe('okta event hook receiver', () => {
  it('is off by default, and needs a secret when on', async () => {
    expect(await sourceFor({}).hookReceiver?.()).toBeUndefined();
    expect(() => sourceFor({ enabled: true })).toThrow(/hookSecret is required when the event hook is enabled/);
    expect((await receiver()).name).toBe('okta');
  });

  it("answers Okta's one-time verification with the challenge, as JSON", async () => {
    const hook = await receiver();
    const { answer, hints } = await hook.receive(
      request({ method: 'GET', headers: { authorization: SECRET, 'x-okta-verification-challenge': 'chal-123_abc' } }),
    );
    expect(answer).toEqual({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"verification":"chal-123_abc"}' });
    expect(hints).toEqual([]);
    expect((await hook.receive(request({ method: 'GET' }))).answer.status).toBe(400);
  });

  it('refuses a missing or wrong secret with 401, the verification included, under the configured header name', async () => {
    const hook = await receiver({ enabled: true, authHeader: 'X-Okta-Secret', hookSecret: SECRET });
    const body = delivery([event('e1', 'user.lifecycle.deactivate', [userT('00u1')])]);
    for (const headers of [
      {},
      { authorization: SECRET },
      { 'x-okta-secret': `${SECRET}x` },
      { 'x-okta-secret': SECRET.slice(0, -1) },
      { 'x-okta-secret': '' },
    ]) {
      const { answer, hints } = await hook.receive(request({ headers, body }));
      expect(answer.status).toBe(401);
      expect(answer.body ?? '').not.toContain(SECRET);
      expect(hints).toEqual([]);
    }
    const challenge = await hook.receive(request({ method: 'GET', headers: { 'x-okta-verification-challenge': 'c' } }));
    expect(challenge.answer.status).toBe(401);
    expect((await hook.receive(request({ headers: { 'x-okta-secret': SECRET }, body }))).answer.status).toBe(200);
  });

  it('turns a delivery into hints with the System Log mapping: users, our app only, group changes as full cycles, once per uuid', async () => {
    const hook = await receiver();
    const body = delivery([
      event('e1', 'user.lifecycle.suspend', [userT('00u1')]),
      event('e2', 'application.user_membership.add', [userT('00u2'), { id: '0oaOther', type: 'AppInstance' }]),
      event('e3', 'application.user_membership.remove', [
        userT('00u3'),
        { id: APP, type: 'AppInstance', alternateId: 'TeamViewer', displayName: 'TeamViewer' },
      ]),
      event('e4', 'group.profile.update', [{ id: '00gX', type: 'UserGroup', alternateId: 'unknown', displayName: 'Sales' }]),
      event('e1', 'user.lifecycle.suspend', [userT('00u1')]),
      event('e5', 'user.session.start', [userT('00u5')]),
      { uuid: 'broken' },
    ]);
    const { answer, hints } = await hook.receive(request({ body }));
    expect(answer).toEqual({ status: 200 });
    const at = Date.parse('2026-11-30T10:00:00.250Z');
    expect(hints).toEqual([
      { userId: '00u1', atMs: at, what: 'user.lifecycle.suspend', eventId: 'e1' },
      { userId: '00u3', atMs: at, what: 'application.user_membership.remove', eventId: 'e3' },
      { fullCycle: 'group "Sales" was renamed or changed', atMs: at, what: 'group.profile.update', eventId: 'e4' },
    ]);
  });

  it('answers 400 to what is not an event hook delivery, and 405 to other methods', async () => {
    const hook = await receiver();
    for (const body of ['', '{"data":', '[]', '{"data":{}}', '{"data":{"events":{}}}', 'null']) {
      const { answer, hints } = await hook.receive(request({ body }));
      expect(answer.status, body).toBe(400);
      expect(hints).toEqual([]);
    }
    expect((await hook.receive(request({ method: 'PUT', body: delivery([]) }))).answer.status).toBe(405);
  });

  it('takes hookSecret only from the environment or a file, and scrubs it once loaded', () => {
    expect(SECRET_KEYS.has('hookSecret')).toBe(true);
    const config = (hookSecret: string) => `
syncs:
  - name: corp
    source:
      type: okta
      orgUrl: https://tvsync-hook.okta.com
      auth: { method: apiToken, apiToken: "\${OKTA_TOKEN}" }
      scope: { mode: app, appId: ${APP} }
      changes: { eventHook: { enabled: true, hookSecret: ${hookSecret} } }
    target:
      token: \${TV_TOKEN}
`;
    const env = { OKTA_TOKEN: '00aHookApiToken_Rt5', TV_TOKEN: 'tv-token-123', HOOK_SECRET: 'hook-from-env-Qz81Lm3Nx7' };
    let problems: string[] = [];
    try {
      parseConfig(config('plain-secret-in-file-0123'), { env });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems).toEqual([expect.stringMatching(/hookSecret: secrets must not be written in the config file/)]);
    parseConfig(config('"${HOOK_SECRET}"'), { env });
    expect(scrubSecrets(`echoed ${env.HOOK_SECRET}`)).not.toContain(env.HOOK_SECRET);
  });
});
