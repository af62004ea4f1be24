import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/runtime/daemon.js';
import { Observability } from '../../src/runtime/observability.js';
import { waitForCycleReport } from '../../src/runtime/trigger.js';
import { runCycle } from '../support/cycle.js';
import { TOKEN, people, silentLog, startEmulator, writeConfig, writeExport } from '../support/fixtures.js';
import { REDIS_URL, dropPrefix, testPrefix } from '../support/redis.js';
import { freePort } from '../support/redis-server.js';
import { FAST } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

/** Debian's chromium package (or TVSYNC_CHROMIUM): the test drives a real browser, never a downloaded one. */
const CHROMIUM = [process.env.TVSYNC_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => path && existsSync(path));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/status-page/', import.meta.url));
const TRIGGER = 'status-page-browser-trigger-0123456789';

if (!CHROMIUM) console.warn('status page browser test skipped: no Chromium at /usr/bin/chromium (apt-get install chromium, or set TVSYNC_CHROMIUM)');

describe.skipIf(!CHROMIUM)('status page in a real browser (skipped when no Chromium is installed: apt-get install chromium)', () => {
  const users = people(10, 76_000);
  const prefix = testPrefix('page-browser');
  let tv: Awaited<ReturnType<typeof startEmulator>>;
  let redis: Redis;
  let daemon: Daemon;
  let observability: Observability;
  let context: BrowserContext;
  let page: Page;
  let base: string;
  let exportDir: string;
  let profile: string;

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const emulatorActive = (pattern: RegExp) =>
    tv.emulator
      .dump()
      .users.filter((u) => pattern.test(u.userName))
      .map((u) => u.active);

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    tv = await startEmulator();
    redis = new Redis(REDIS_URL);
    const port = await freePort();
    exportDir = writeExport(users);
    const configPath = writeConfig({
      exportDir,
      baseUrl: tv.baseUrl,
      prefix,
      // No fast lane: its feed would see the new export and run a cycle of its own, whose holds the
      // page would then offer instead of those of the cycle the test ran.
      extra:
        '    schedule: { every: 1h }\n    fastLane: { enabled: false }\n    policy: { deactivationThreshold: { maxCount: 3, maxPercent: 100, minCountForPercent: 0 } }\n',
    });
    const yaml = `${readFileSync(configPath, 'utf8')}http: { host: 127.0.0.1, port: ${port}, triggerToken: "\${TRIGGER}" }\n`;
    const config = parseConfig(yaml, { env: { TVSYNC_TEST_TOKEN: TOKEN, TRIGGER } });
    // Wired as `tvsync run` wires it: hooks for the provisioning log, then the HTTP endpoint.
    observability = new Observability(config, redis, silentLog);
    daemon = await Daemon.start(config, silentLog, { scheduler: true, worker: true, runtime: FAST, ...observability.hooks() });
    await observability.serve(daemon);
    base = `http://127.0.0.1:${port}`;
    await runCycle(daemon);
    await waitFor('no cycle running or waiting', async () => {
      const counts = await daemon.runtime('corp').queues.cycles.getJobCounts('active', 'waiting');
      return (counts.active ?? 0) + (counts.waiting ?? 0) === 0 || undefined;
    });
    profile = mkdtempSync(join(tmpdir(), 'tvsync-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
      // The page must work without script: plain forms, a redirect after each POST.
      javaScriptEnabled: false,
    });
    page = context.pages()[0] ?? (await context.newPage());
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await observability?.close();
    await daemon?.stop();
    await tv?.emulator.stop();
    await dropPrefix(prefix);
    redis?.disconnect();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  /**
   * Presses a form's button and waits for the page it leads to: the POST's answer, then the page
   * loaded. A form that answered otherwise fails with what the page said, not a bare timeout.
   */
  async function press(name: string, landing: string): Promise<void> {
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST', { timeout: 50_000 }),
      page.getByRole('button', { name }).click(),
    ]);
    await page.waitForLoadState('load', { timeout: 50_000 });
    const at = new URL(page.url());
    expect(`${at.pathname}${at.hash}`, `"${name}" answered ${answer.status()}: ${(await page.locator('body').textContent())?.slice(0, 300)}`).toBe(landing);
  }

  it('logs in with the token, approves a held deactivation and starts a sync; the page never shows a secret', async () => {
    // Five leave: more than the threshold of three, so the cycle holds them.
    writeExport(users.slice(0, 5), [], exportDir);
    const held = await runCycle(daemon);
    expect(held.held).toMatchObject({ count: 5, pendingApproval: true });
    expect(emulatorActive(/^person7600[5-9]@/).every(Boolean)).toBe(true);

    // Read-only without a login: what is held is shown, no button acts.
    await page.goto(`${base}/status`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('tvsync status');
    expect(await page.locator(`#held-corp`).textContent()).toContain('person76005@corp.example');
    expect(await page.getByRole('button', { name: /Approve/ }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Sync now' }).count()).toBe(0);
    await shot('1-read-only');

    await page.locator('input[name="token"]').fill(TRIGGER);
    await Promise.all([page.waitForURL(`${base}/status`), page.getByRole('button', { name: 'Log in' }).click()]);
    expect(await page.locator('.bar').textContent()).toContain('Logged in');
    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name === 'tvsync_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(session?.value).not.toContain(TRIGGER);
    await shot('2-logged-in');

    const beforeApprove = Date.now();
    await press(`Approve what cycle ${held.cycleId} held`, '/status#sync-corp');
    expect(await page.locator('.notice').textContent()).toContain(
      `Approved 5 deactivations, 0 group deletions and 0 member removals in 0 group(s) held by cycle ${held.cycleId}`,
    );
    await shot('3-approved');
    // The approval requested the cycle that runs them, through the same gates as `tvsync approve`.
    const released = await waitForCycleReport(daemon.runtime('corp').store, beforeApprove, { timeoutMs: 60_000, pollMs: 50 });
    expect(released?.operations.deactivateUser.applied).toBe(5);
    expect(emulatorActive(/^person7600[5-9]@/).some(Boolean)).toBe(false);
    expect(emulatorActive(/^person7600[0-4]@/).every(Boolean)).toBe(true);

    await page.reload();
    expect(await page.locator('#sync-corp').textContent()).toContain('Nothing is held for approval.');

    const beforeSync = Date.now();
    await press('Sync now', '/status#sync-corp');
    expect(await page.locator('.notice').textContent()).toContain('A cycle of sync corp was requested at');
    const manual = await waitForCycleReport(daemon.runtime('corp').store, beforeSync, { timeoutMs: 60_000, pollMs: 50 });
    expect(manual).toMatchObject({ trigger: 'manual', outcome: 'succeeded' });
    await page.reload();
    expect(await page.locator('#sync-corp table').textContent()).toContain(manual?.cycleId ?? '?');
    await shot('4-synced');

    // The provisioning log, searched by address: the deactivation the approval let through.
    await page.locator('input[name="email"]').fill('person76007@corp.example');
    await Promise.all([page.waitForURL(/email=person76007/), page.getByRole('button', { name: 'Search' }).click()]);
    const results = await page.locator('#search table').textContent();
    expect(results).toContain('deactivateUser');
    expect(results).toContain('applied');
    await shot('5-search');

    const html = await page.content();
    expect(html).not.toContain(TOKEN);
    expect(html).not.toContain(TRIGGER);
  }, 180_000);
});
