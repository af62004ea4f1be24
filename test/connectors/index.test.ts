import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { entraSourceConfigSchema } from '../../src/connectors/entra/config.js';
import { fileSourceConfigSchema } from '../../src/connectors/file/config.js';
import { writeFileExport } from '../../src/connectors/file/manifest.js';
import { createSource } from '../../src/connectors/index.js';
import { SourceReadError } from '../../src/connectors/source.js';
import { MemoryStateStore } from '../../src/store/memory-state.js';

const deps = () => ({ state: new MemoryStateStore(), log: pino({ level: 'silent' }) });
const dir = mkdtempSync(join(tmpdir(), 'tvsync-source-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('createSource', () => {
  it('builds the source on first use and reads through it', async () => {
    writeFileExport(dir, { 'users.json': JSON.stringify([{ id: 'u1', email: 'ann@example.com' }]), 'groups.json': '[]' });
    const source = createSource(fileSourceConfigSchema.parse({ type: 'file', path: dir, settle: 0 }), deps());
    expect(source.kind).toBe('file');
    const read = await source.read();
    expect(read.users).toEqual([{ id: 'u1', email: 'ann@example.com', active: true }]);
    expect(read.complete).toBe(true);
    expect(await source.lookupGroups?.(['g1'])).toEqual(new Map([['g1', 'deleted']]));
    expect((await source.check()).ok).toBe(true);
  });

  it('fails a read as a source read when the source cannot even be set up, naming why', async () => {
    // @azure/identity refuses a tenant id with characters no tenant has, when the credential is built.
    const config = entraSourceConfigSchema.parse({
      type: 'entra',
      tenantId: 'not a tenant!',
      clientId: 'cid',
      clientSecret: 'x',
      scope: { mode: 'groups', groupIds: ['g1'] },
    });
    const source = createSource(config, deps());
    expect(source.kind).toBe('entra');
    const failure = await source.read().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(SourceReadError);
    expect((failure as Error).message).toMatch(/^the entra source could not be set up: .*tenant/i);
  });
});
