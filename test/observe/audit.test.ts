import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, renameSync, existsSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { AuditStream, FileAuditSink, SyslogAuditSink, auditRecord, syslogMessage, type AuditRecord } from '../../src/observe/audit.js';
import type { ProvisioningLogEntry } from '../../src/observe/provisioning-log.js';
import { registerSecret } from '../../src/net/secrets.js';
import { expectNoLeak, capturedLogger } from '../support/leaks.js';
import { waitFor } from '../support/wait.js';

const AT = '2026-01-01T12:00:00.000Z';
const ctx = { sync: 'corp', sourceSystem: 'Microsoft Entra ID', id: 'id-1' };

const create: ProvisioningLogEntry = {
  at: AT,
  cycleId: 'cyc-1',
  kind: 'createUser',
  outcome: 'applied',
  email: 'ann@corp.example',
  sourceId: 'idp-ann',
  tvUserId: 'u1',
  after: { displayName: 'Ann', active: true },
  attempts: 1,
  message: 'created',
};

describe('audit records', () => {
  it('shape an applied create like an Entra provisioning log entry', () => {
    expect(auditRecord(create, ctx)).toEqual({
      stream: 'audit',
      id: 'id-1',
      activityDateTime: AT,
      jobId: 'corp',
      cycleId: 'cyc-1',
      changeId: 'cyc-1:createUser:u1',
      provisioningAction: 'create',
      provisioningStatusInfo: { status: 'success' },
      sourceIdentity: { id: 'idp-ann', displayName: 'ann@corp.example', identityType: 'User' },
      targetIdentity: { id: 'u1', displayName: 'ann@corp.example', identityType: 'User' },
      sourceSystem: { displayName: 'Microsoft Entra ID' },
      targetSystem: { displayName: 'TeamViewer' },
      modifiedProperties: [
        { displayName: 'displayName', oldValue: null, newValue: 'Ann' },
        { displayName: 'active', oldValue: null, newValue: 'true' },
      ],
      initiatedBy: { displayName: 'tvsync', initiatorType: 'application' },
      provisioningSteps: [{ name: 'createUser', provisioningStepType: 'export', status: 'success', description: 'created' }],
      tvsync: { kind: 'createUser', outcome: 'applied', attempts: 1, email: 'ann@corp.example' },
    });
  });

  it('a failed deactivation, a skip, a membership change and drift each map to their action and status', () => {
    const failed = auditRecord(
      {
        ...create,
        kind: 'deactivateUser',
        outcome: 'failed',
        failureClass: 'transient',
        before: { displayName: 'Ann', active: true },
        after: { active: false },
        message: 'HTTP 503',
      },
      ctx,
    );
    expect(failed).toMatchObject({
      provisioningAction: 'disable',
      provisioningStatusInfo: { status: 'failure', errorInformation: { errorCode: 'transient', reason: 'HTTP 503' } },
      modifiedProperties: [{ displayName: 'active', oldValue: 'true', newValue: 'false' }],
    });
    const skipped = auditRecord(
      { at: AT, cycleId: 'c', kind: 'skipped', outcome: 'skipped', reason: 'no-email', sourceId: 'idp-x', message: 'no address' },
      ctx,
    );
    expect(skipped).toMatchObject({
      provisioningAction: 'other',
      provisioningStatusInfo: { status: 'skipped', errorInformation: { errorCode: 'no-email', reason: 'no address' } },
      sourceIdentity: { id: 'idp-x', identityType: 'User' },
      provisioningSteps: [{ provisioningStepType: 'scoping', status: 'skipped' }],
    });
    const members = auditRecord(
      {
        at: AT,
        cycleId: 'c',
        kind: 'removeGroupMembers',
        outcome: 'applied',
        sourceId: 'g-idp',
        sourceGroupId: 'g-idp',
        tvGroupId: 'g-tv',
        group: 'Sales',
        members: [{ tvUserId: 'u1', email: 'ann@corp.example' }],
        after: {},
        message: 'removed 1',
      },
      ctx,
    );
    expect(members).toMatchObject({
      provisioningAction: 'update',
      sourceIdentity: { id: 'g-idp', displayName: 'Sales', identityType: 'Group' },
      targetIdentity: { id: 'g-tv', identityType: 'Group' },
      modifiedProperties: [{ displayName: 'members', oldValue: 'ann@corp.example', newValue: null }],
    });
    const drift = auditRecord(
      { at: AT, cycleId: 'c', kind: 'drift', outcome: 'reported', reason: 'renamed', tvUserId: 'u1', email: 'a@b.c', message: 'renamed by hand' },
      ctx,
    );
    expect(drift.provisioningStatusInfo).toEqual({ status: 'warning', errorInformation: { errorCode: 'renamed', reason: 'renamed by hand' } });
    const fast = auditRecord({ ...create, via: { lane: 'fast', trigger: 'event', feed: 'delta' } }, ctx);
    expect(fast.initiatedBy.displayName).toBe('tvsync fast lane (event)');
  });

  it('hold no secret an outside message quoted', () => {
    const secret = 'audit-secret-0123456789abcdef';
    registerSecret(secret);
    const record = auditRecord({ ...create, outcome: 'failed', failureClass: 'permanent', message: `TeamViewer said: ${secret}` }, ctx);
    expectNoLeak(secret, JSON.stringify(record));
  });
});

function lines(path: string): AuditRecord[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);
}

describe('the audit file', () => {
  it('appends one JSON line per entry and reopens when the file is moved away or on reopen (SIGHUP)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tvsync-audit-'));
    const path = join(dir, 'audit.jsonl');
    const sink = new FileAuditSink(path, capturedLogger().log);
    const stream = new AuditStream(sink);
    stream.record('corp', 'File export', [create, { ...create, tvUserId: 'u2' }]);
    stream.flush();
    expect(lines(path).map((r) => r.targetIdentity.id)).toEqual(['u1', 'u2']);
    // logrotate moves the file, then sends SIGHUP.
    renameSync(path, `${path}.old`);
    stream.reopen();
    stream.record('corp', 'File export', [{ ...create, tvUserId: 'u3' }]);
    stream.flush();
    expect(lines(`${path}.old`)).toHaveLength(2);
    expect(lines(path).map((r) => r.targetIdentity.id)).toEqual(['u3']);
    await stream.close();
  });

  it('rotates itself to <path>.1 at maxBytes, never cutting a line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tvsync-audit-'));
    const path = join(dir, 'audit.jsonl');
    const sink = new FileAuditSink(path, capturedLogger().log, 4096);
    const stream = new AuditStream(sink);
    for (let i = 0; i < 20; i++) stream.record('corp', 'File export', [{ ...create, tvUserId: `u${i}` }]);
    await stream.close();
    const older = lines(`${path}.1`);
    const newer = lines(path);
    expect(older.length).toBeGreaterThan(0);
    expect(readFileSync(path).length).toBeLessThanOrEqual(4096);
    // Every line whole and in order across the two files (the oldest rotated out beyond .1 are gone).
    const ids = [...older, ...newer].map((r) => Number(r.targetIdentity.id.slice(1)));
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => 20 - ids.length + i));
  });
});

describe('the audit stream', () => {
  it('turns a burst of entries into lines a thousand per turn of the event loop, in order', async () => {
    const written: string[] = [];
    const stream = new AuditStream({ write: (lines) => void written.push(...lines.map((l) => l.text)), close: async () => {} });
    stream.record(
      'corp',
      'Okta',
      Array.from({ length: 2500 }, (_, i) => ({ ...create, tvUserId: `u${i}` })),
    );
    stream.record('corp', 'Okta', [{ ...create, tvUserId: 'last' }]);
    expect(written).toHaveLength(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(written).toHaveLength(1000);
    await stream.close();
    const ids = written.map((l) => (JSON.parse(l) as AuditRecord).targetIdentity.id);
    expect(ids).toEqual([...Array.from({ length: 2500 }, (_, i) => `u${i}`), 'last']);
  });

  it('never throws at the writer of the provisioning log', () => {
    const { lines, log } = capturedLogger();
    const stream = new AuditStream(
      {
        write: () => {
          throw new Error('disk full');
        },
        close: async () => {},
      },
      log,
    );
    stream.record('corp', 'Okta', [create]);
    expect(() => stream.flush()).not.toThrow();
    expect(lines.join('')).toContain('audit lines not written');
  });
});

describe('syslog', () => {
  it('formats RFC 5424 messages', () => {
    const msg = syslogMessage('{"a":1}', { facility: 13, appName: 'tvsync', severity: 6, host: 'node-1', now: new Date(AT) });
    expect(msg).toBe(`<110>1 ${AT} node-1 tvsync ${process.pid} audit - {"a":1}`);
  });

  it('sends one datagram per line over UDP', async () => {
    const server = createSocket('udp4');
    const got: string[] = [];
    server.on('message', (m) => got.push(m.toString('utf8')));
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const stream = new AuditStream(new SyslogAuditSink({ host: '127.0.0.1', port, protocol: 'udp', facility: 13, appName: 'tvsync' }, capturedLogger().log));
    stream.record('corp', 'Okta', [create, { ...create, outcome: 'failed', failureClass: 'transient', message: 'HTTP 503' }]);
    await waitFor('two datagrams', () => got.length === 2, 5000);
    await stream.close();
    server.close();
    // Severity: informational (6) for success, warning (4) for a failure; facility 13.
    expect(got[0]).toMatch(/^<110>1 \S+ \S+ tvsync \d+ audit - \{/);
    expect(got[1]).toMatch(/^<108>1 /);
    const record = JSON.parse(got[0]?.slice(got[0].indexOf(' - ') + 3) ?? '') as AuditRecord;
    expect(record).toMatchObject({ stream: 'audit', jobId: 'corp', sourceSystem: { displayName: 'Okta' }, provisioningAction: 'create' });
  });

  it('sends octet-counted frames over TCP, keeping lines written before it connected', async () => {
    let buffer = '';
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.on('data', (d: Buffer) => {
        buffer += d.toString('utf8');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const stream = new AuditStream(new SyslogAuditSink({ host: '127.0.0.1', port, protocol: 'tcp', facility: 16, appName: 'tvsync' }, capturedLogger().log));
    stream.record('corp', 'JumpCloud', [create, { ...create, tvUserId: 'u2' }, { ...create, tvUserId: 'u3' }]);
    const frames = (): string[] => {
      const out: string[] = [];
      let rest = buffer;
      for (;;) {
        const match = /^(\d+) /.exec(rest);
        if (!match?.[1]) return out;
        const len = Number(match[1]);
        const body = Buffer.from(rest.slice(match[0].length));
        if (body.length < len) return out;
        out.push(body.subarray(0, len).toString('utf8'));
        rest = body.subarray(len).toString('utf8');
      }
    };
    await waitFor('three frames', () => frames().length === 3, 5000);
    expect(frames().map((f) => (JSON.parse(f.slice(f.indexOf(' - ') + 3)) as AuditRecord).targetIdentity.id)).toEqual(['u1', 'u2', 'u3']);
    expect(frames()[0]).toMatch(/^<134>1 /);
    await stream.close();
    for (const s of sockets) s.destroy();
    server.close();
  });

  it('closes when the syslog server has stopped reading, dropping what it did not take', async () => {
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      // Accepts, never reads: the kernel's buffers fill and the sender's writes queue up.
      socket.pause();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const sink = new SyslogAuditSink({ host: '127.0.0.1', port, protocol: 'tcp', facility: 16, appName: 'tvsync' }, capturedLogger().log);
    await waitFor('the connection', () => sockets.length === 1, 5000);
    const line = { text: 'x'.repeat(1024 * 1024), severity: 6 };
    sink.write(Array.from({ length: 64 }, () => line));
    const closed = await Promise.race([sink.close().then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('still open'), 8000))]);
    expect(closed).toBe('closed');
    for (const s of sockets) s.destroy();
    server.close();
  }, 15_000);

  it('drops lines, and says so, while a connected syslog server reads slower than they come, instead of buffering them without bound', async () => {
    const sockets: Socket[] = [];
    let received = 0;
    let ended: () => void = () => {};
    const serverEnded = new Promise<void>((resolve) => {
      ended = resolve;
    });
    const server = createServer((socket) => {
      sockets.push(socket);
      // Reads nothing until the lines are written, then everything.
      socket.pause();
      socket.on('data', (d: Buffer) => {
        received += d.length;
      });
      socket.on('end', () => ended());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const { lines, log } = capturedLogger();
    const sink = new SyslogAuditSink({ host: '127.0.0.1', port, protocol: 'tcp', facility: 16, appName: 'tvsync' }, log);
    await waitFor('the connection', () => sockets.length === 1, 5000);
    const written = 64;
    const line = { text: 'x'.repeat(1024 * 1024), severity: 6 };
    sink.write(Array.from({ length: written }, () => line));
    expect(lines.join('\n')).toMatch(/dropping them until it catches up/);
    sockets[0]?.resume();
    await sink.close();
    await serverEnded;
    server.close();
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan((written * 1024 * 1024) / 2);
  }, 15_000);
});
