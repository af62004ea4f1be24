import { randomUUID } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { closeSync, fstatSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { connect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { scrubSecrets } from '../net/secrets.js';
import type { OperationKind } from '../plan/report.js';
import type { ProvisioningLogEntry } from './provisioning-log.js';

/*
 * The provisioning log as an audit stream: one JSON line per operation or skip, shaped after
 * Microsoft Entra's provisioning logs (Graph's provisioningObjectSummary), so a SIEM that already
 * parses those reads these: activityDateTime, jobId, cycleId, changeId, provisioningAction,
 * provisioningStatusInfo, sourceIdentity, targetIdentity, sourceSystem, targetSystem,
 * modifiedProperties, initiatedBy, provisioningSteps. What is tvsync's own sits under `tvsync`.
 */

export type ProvisioningAction = 'create' | 'update' | 'delete' | 'disable' | 'other';
export type AuditStatus = 'success' | 'failure' | 'skipped' | 'warning';

export interface AuditRecord {
  /** Marks the line among the process's log lines when both go to stdout. */
  stream: 'audit';
  id: string;
  activityDateTime: string;
  /** The sync: tvsync's provisioning job. */
  jobId: string;
  cycleId: string;
  changeId: string;
  provisioningAction: ProvisioningAction;
  provisioningStatusInfo: { status: AuditStatus; errorInformation?: { errorCode: string; reason: string } };
  sourceIdentity: { id: string; displayName?: string; identityType: 'User' | 'Group' };
  targetIdentity: { id: string; displayName?: string; identityType: 'User' | 'Group' };
  sourceSystem: { displayName: string };
  targetSystem: { displayName: 'TeamViewer' };
  modifiedProperties: { displayName: string; oldValue: string | null; newValue: string | null }[];
  initiatedBy: { displayName: string; initiatorType: 'application' };
  provisioningSteps: { name: string; provisioningStepType: 'scoping' | 'matching' | 'export'; status: AuditStatus; description: string }[];
  tvsync: Record<string, unknown>;
}

const ACTIONS: Record<OperationKind, ProvisioningAction> = {
  createUser: 'create',
  updateUser: 'update',
  reactivateUser: 'update',
  deactivateUser: 'disable',
  createGroup: 'create',
  renameGroup: 'update',
  addGroupMembers: 'update',
  removeGroupMembers: 'update',
  deleteGroup: 'delete',
  assignRole: 'update',
  unassignRole: 'update',
};

const GROUP_KINDS: ReadonlySet<string> = new Set(['createGroup', 'renameGroup', 'addGroupMembers', 'removeGroupMembers', 'deleteGroup']);

function statusOf(entry: ProvisioningLogEntry): AuditStatus {
  if (entry.outcome === 'applied') return 'success';
  if (entry.outcome === 'failed') return 'failure';
  if (entry.outcome === 'reported') return 'warning';
  return 'skipped';
}

function isGroupEntry(entry: ProvisioningLogEntry): boolean {
  return entry.group !== undefined || entry.sourceGroupId !== undefined || entry.tvGroupId !== undefined;
}

function value(v: string | boolean | undefined): string | null {
  return v === undefined ? null : String(v);
}

/** Pure: the audit line of one provisioning-log entry. */
export function auditRecord(entry: ProvisioningLogEntry, ctx: { sync: string; sourceSystem: string; id: string }): AuditRecord {
  const group = GROUP_KINDS.has(entry.kind) || (entry.email === undefined && isGroupEntry(entry));
  const identityType = group ? 'Group' : 'User';
  const status = statusOf(entry);
  const action: ProvisioningAction = entry.kind in ACTIONS ? ACTIONS[entry.kind as OperationKind] : 'other';
  const sourceId = (group ? (entry.sourceGroupId ?? entry.sourceId) : entry.sourceId) ?? '';
  const targetId = (group ? entry.tvGroupId : entry.tvUserId) ?? '';
  const displayName = group ? entry.group : entry.email;
  const message = scrubSecrets(entry.message);
  const modifiedProperties: AuditRecord['modifiedProperties'] = [];
  if (entry.after?.displayName !== undefined && entry.after.displayName !== entry.before?.displayName)
    modifiedProperties.push({ displayName: 'displayName', oldValue: value(entry.before?.displayName), newValue: entry.after.displayName });
  if (entry.after?.active !== undefined && entry.after.active !== entry.before?.active)
    modifiedProperties.push({ displayName: 'active', oldValue: value(entry.before?.active), newValue: String(entry.after.active) });
  if (entry.members?.length)
    modifiedProperties.push({
      displayName: 'members',
      oldValue: entry.kind === 'removeGroupMembers' ? entry.members.map((m) => m.email ?? m.tvUserId).join(',') : null,
      newValue: entry.kind === 'removeGroupMembers' ? null : entry.members.map((m) => m.email ?? m.tvUserId).join(','),
    });
  if (entry.role !== undefined)
    modifiedProperties.push({
      displayName: 'role',
      oldValue: entry.kind === 'unassignRole' ? entry.role : null,
      newValue: entry.kind === 'unassignRole' ? null : entry.role,
    });
  const errorCode = entry.failureClass ?? entry.reason ?? (entry.outcome === 'cancelled' ? 'cancelled' : undefined);
  const statusInfo: AuditRecord['provisioningStatusInfo'] = { status };
  if (status !== 'success' && errorCode !== undefined) statusInfo.errorInformation = { errorCode, reason: message };
  const tvsync: Record<string, unknown> = { kind: entry.kind, outcome: entry.outcome };
  if (entry.reason !== undefined) tvsync.reason = entry.reason;
  if (entry.attempts !== undefined) tvsync.attempts = entry.attempts;
  if (entry.adopted) tvsync.adopted = true;
  if (entry.via) tvsync.via = entry.via;
  if (entry.roleId !== undefined) tvsync.roleId = entry.roleId;
  if (entry.email !== undefined) tvsync.email = entry.email;
  if (entry.sourceId !== undefined && group) tvsync.sourceUserId = entry.sourceId;
  const record: AuditRecord = {
    stream: 'audit',
    id: ctx.id,
    activityDateTime: entry.at,
    jobId: ctx.sync,
    cycleId: entry.cycleId,
    changeId: `${entry.cycleId}:${entry.kind}:${targetId || sourceId}`,
    provisioningAction: action,
    provisioningStatusInfo: statusInfo,
    sourceIdentity: { id: sourceId, ...(displayName !== undefined ? { displayName } : {}), identityType },
    targetIdentity: { id: targetId, ...(displayName !== undefined ? { displayName } : {}), identityType },
    sourceSystem: { displayName: ctx.sourceSystem },
    targetSystem: { displayName: 'TeamViewer' },
    modifiedProperties,
    initiatedBy: { displayName: entry.via ? `tvsync fast lane (${entry.via.trigger})` : 'tvsync', initiatorType: 'application' },
    provisioningSteps: [
      {
        name: entry.kind,
        provisioningStepType: entry.outcome === 'skipped' ? 'scoping' : entry.outcome === 'reported' ? 'matching' : 'export',
        status,
        description: message,
      },
    ],
    tvsync,
  };
  // Only the message quotes outside text (the provisioning log scrubs the same); the rest are ids, addresses and names.
  return record;
}

/** Where audit lines go, a batch at a time. `write` never waits: a sink that cannot keep up drops and says so. */
export interface AuditSink {
  write(lines: readonly AuditLine[]): void;
  /** Opens the file again (after logrotate moved it). */
  reopen?(): void;
  close(): Promise<void>;
}

/** One line and how much it matters (syslog's severity). */
export interface AuditLine {
  text: string;
  severity: number;
}

export class StdoutAuditSink implements AuditSink {
  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}
  write(lines: readonly AuditLine[]): void {
    if (lines.length) this.out.write(lines.map((l) => `${l.text}\n`).join(''));
  }
  async close(): Promise<void> {}
}

/** How often the file sink looks whether its file was moved away. */
const FILE_CHECK_MS = 5000;

/**
 * Appends lines to a file. It reopens the path on `reopen` (SIGHUP), when the file it writes was
 * moved or removed (logrotate without copytruncate), and, with `maxBytes`, rotates it itself to
 * `<path>.1`. Writes are synchronous appends of whole lines, so a line is never torn.
 */
export class FileAuditSink implements AuditSink {
  private fd?: number;
  private size = 0;
  private checkedAt = 0;

  constructor(
    private readonly path: string,
    private readonly log: Logger,
    private readonly maxBytes?: number,
  ) {
    this.open();
  }

  private open(): void {
    try {
      this.fd = openSync(this.path, 'a', 0o640);
      this.size = fstatSync(this.fd).size;
    } catch (err) {
      this.fd = undefined;
      this.log.error(
        { path: this.path, err: (err as NodeJS.ErrnoException).code ?? String(err) },
        'cannot open the audit file; audit lines are dropped until it opens',
      );
    }
  }

  reopen(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.open();
  }

  /** The path no longer names the file we write (moved or deleted). */
  private moved(): boolean {
    if (this.fd === undefined) return true;
    try {
      const onDisk = statSync(this.path);
      const open = fstatSync(this.fd);
      return onDisk.ino !== open.ino || onDisk.dev !== open.dev;
    } catch {
      return true;
    }
  }

  write(lines: readonly AuditLine[]): void {
    if (lines.length === 0) return;
    const now = Date.now();
    if (now - this.checkedAt >= FILE_CHECK_MS || this.fd === undefined) {
      this.checkedAt = now;
      if (this.moved()) this.reopen();
    }
    // One append per batch: a cycle's 100k skips are one write, not 100k.
    const data = Buffer.from(lines.map((l) => `${l.text}\n`).join(''));
    if (this.maxBytes !== undefined && this.size > 0 && this.size + data.length > this.maxBytes) {
      try {
        renameSync(this.path, `${this.path}.1`);
      } catch (err) {
        this.log.warn({ path: this.path, err: (err as NodeJS.ErrnoException).code ?? String(err) }, 'cannot rotate the audit file');
      }
      this.reopen();
    }
    if (this.fd === undefined) return;
    try {
      writeSync(this.fd, data);
      this.size += data.length;
    } catch (err) {
      this.log.error({ path: this.path, err: (err as NodeJS.ErrnoException).code ?? String(err) }, 'cannot write the audit file');
    }
  }

  async close(): Promise<void> {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

export interface SyslogOptions {
  host: string;
  port: number;
  protocol: 'udp' | 'tcp';
  /** 0–23; 13 is "log audit". */
  facility: number;
  appName: string;
}

const SEVERITY = { info: 6, warning: 4 } as const;
/** Lines kept while the TCP connection is down; older ones are dropped beyond. */
const TCP_BACKLOG = 10_000;
/** Bytes waiting on a connected TCP socket beyond which new lines are dropped. */
const TCP_MAX_BUFFERED = 8 * 1024 * 1024;
/** How long close() waits for the TCP connection to take what is written. */
const TCP_CLOSE_GRACE_MS = 2000;
/** A UDP datagram this big still crosses most networks whole. */
const UDP_MAX = 8192;

/** An RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`. */
export function syslogMessage(line: string, opts: { facility: number; appName: string; severity: number; host?: string; now?: Date }): string {
  const pri = opts.facility * 8 + opts.severity;
  const host = (opts.host ?? hostname()).replace(/[^!-~]/g, '').slice(0, 255) || '-';
  return `<${pri}>1 ${(opts.now ?? new Date()).toISOString()} ${host} ${opts.appName} ${process.pid} audit - ${line}`;
}

/** Sends lines to a syslog server as RFC 5424 messages, over UDP (a datagram each) or TCP (octet-counted, RFC 6587). */
export class SyslogAuditSink implements AuditSink {
  private udp?: UdpSocket;
  private tcp?: Socket;
  private connected = false;
  private readonly backlog: string[] = [];
  private dropped = 0;
  private closed = false;
  private retry?: NodeJS.Timeout;

  constructor(
    private readonly opts: SyslogOptions,
    private readonly log: Logger,
  ) {
    if (opts.protocol === 'udp') {
      this.udp = createSocket(opts.host.includes(':') ? 'udp6' : 'udp4');
      this.udp.on('error', (err) => this.log.warn({ err: err.message }, 'syslog (UDP) error'));
      this.udp.unref();
    } else {
      this.connect();
    }
  }

  private connect(): void {
    if (this.closed) return;
    const socket = connect({ host: this.opts.host, port: this.opts.port });
    socket.setKeepAlive(true);
    socket.unref();
    socket.on('connect', () => {
      this.connected = true;
      if (this.dropped) this.log.warn({ dropped: this.dropped }, 'audit lines dropped while syslog was unreachable');
      this.dropped = 0;
      for (const frame of this.backlog.splice(0)) socket.write(frame);
    });
    socket.on('error', (err) => this.log.warn({ err: err.message }, 'syslog (TCP) connection failed'));
    socket.on('close', () => {
      this.connected = false;
      if (this.closed) return;
      this.retry = setTimeout(() => this.connect(), 1000);
      this.retry.unref();
    });
    this.tcp = socket;
  }

  write(lines: readonly AuditLine[]): void {
    for (const line of lines) this.send(line);
  }

  private send(line: AuditLine): void {
    const message = syslogMessage(line.text, { facility: this.opts.facility, appName: this.opts.appName, severity: line.severity });
    if (this.udp) {
      const data = Buffer.from(message);
      this.udp.send(data.subarray(0, UDP_MAX), this.opts.port, this.opts.host);
      return;
    }
    const frame = `${Buffer.byteLength(message)} ${message}`;
    if (this.connected && this.tcp) {
      // A server that reads slower than lines come would otherwise have them buffered here without bound.
      if (this.tcp.writableLength > TCP_MAX_BUFFERED) {
        if (this.dropped++ === 0) this.log.warn('syslog (TCP) takes audit lines slower than they come: dropping them until it catches up');
        return;
      }
      if (this.dropped) this.log.warn({ dropped: this.dropped }, 'audit lines dropped while syslog was slow');
      this.dropped = 0;
      this.tcp.write(frame);
      return;
    }
    this.backlog.push(frame);
    if (this.backlog.length > TCP_BACKLOG) {
      this.backlog.shift();
      this.dropped++;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    if (this.udp) await new Promise<void>((resolve) => this.udp?.close(() => resolve()));
    const tcp = this.tcp;
    if (tcp)
      await new Promise<void>((resolve) => {
        // A server that stopped reading (or a connect that hangs) must not hold the process: what it has not taken by then is dropped.
        const cut = setTimeout(() => {
          tcp.destroy();
          resolve();
        }, TCP_CLOSE_GRACE_MS);
        tcp.end(() => {
          clearTimeout(cut);
          resolve();
        });
      });
  }
}

/** Severity a syslog server sees: failures and drift as warnings, the rest as information. */
export function syslogSeverity(record: AuditRecord): number {
  return record.provisioningStatusInfo.status === 'failure' || record.provisioningStatusInfo.status === 'warning' ? SEVERITY.warning : SEVERITY.info;
}

/** Entries turned into lines per turn of the event loop: a cycle's 100k skips never block it for long. */
const RECORD_CHUNK = 1000;

/**
 * Turns provisioning-log entries into audit lines on one sink, in the order they were written,
 * RECORD_CHUNK at a time so that a burst of entries does not hold up the event loop (and the job
 * locks it renews).
 */
export class AuditStream {
  private readonly queue: { sync: string; sourceSystem: string; entries: readonly ProvisioningLogEntry[] }[] = [];
  private scheduled?: NodeJS.Immediate;

  constructor(
    private readonly sink: AuditSink,
    private readonly log?: Logger,
  ) {}

  /** Never throws and never waits: an audit line that cannot be written must not fail the write it records. */
  record(sync: string, sourceSystem: string, entries: readonly ProvisioningLogEntry[]): void {
    if (entries.length === 0) return;
    this.queue.push({ sync, sourceSystem, entries });
    this.scheduled ??= setImmediate(() => this.drain(RECORD_CHUNK));
  }

  /** Writes everything recorded so far, now. */
  flush(): void {
    this.drain(Number.POSITIVE_INFINITY);
  }

  private drain(budget: number): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    let left = budget;
    while (left > 0 && this.queue.length) {
      const batch = this.queue[0] as (typeof this.queue)[number];
      const take = batch.entries.slice(0, left);
      if (take.length === batch.entries.length) this.queue.shift();
      else this.queue[0] = { ...batch, entries: batch.entries.slice(take.length) };
      left -= take.length;
      this.write(batch.sync, batch.sourceSystem, take);
    }
    if (this.queue.length) this.scheduled = setImmediate(() => this.drain(RECORD_CHUNK));
  }

  private write(sync: string, sourceSystem: string, entries: readonly ProvisioningLogEntry[]): void {
    try {
      const lines = entries.map((entry) => {
        const record = auditRecord(entry, { sync, sourceSystem, id: randomUUID() });
        return { text: JSON.stringify(record), severity: syslogSeverity(record) };
      });
      this.sink.write(lines);
    } catch (err) {
      this.log?.error({ sync, entries: entries.length, err: err instanceof Error ? err.message : String(err) }, 'audit lines not written');
    }
  }

  /** Whether the sink has a file to open again (SIGHUP). */
  get reopens(): boolean {
    return this.sink.reopen !== undefined;
  }

  /** What was recorded before the signal goes to the file logrotate moved; what comes after, to the new one. */
  reopen(): void {
    this.flush();
    this.sink.reopen?.();
  }

  close(): Promise<void> {
    this.flush();
    return this.sink.close();
  }
}
