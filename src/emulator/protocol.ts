import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { SCIM_ERROR_SCHEMA, SCIM_LIST_SCHEMA, SCIM_PATCH_SCHEMA } from '../model/teamviewer.js';
import { MethodNotAllowed, ScimError } from './errors.js';
import type { EmulatorStore } from './store.js';

/*
 * SCIM as the emulator speaks it, for users and groups alike: replies and error bodies, reading and
 * checking request bodies, attribute paths, list pages and filters.
 */

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * What a resource handler reads and counts. Functions, not values: loading a state swaps the
 * store and resetting the stats swaps the counters, also while a request is being handled.
 */
export interface ResourceContext {
  store(): EmulatorStore;
  pageSizeMax(): number | null | undefined;
  countWrite(): void;
  countFilteredRead(): void;
  /** Which writes are answered with success and not kept (the dropWrites switch). */
  dropWrites(): DropWrites;
}

/** A SCIM server's known failure, to rehearse: a write answered with success that stores nothing. */
export interface DropWrites {
  /** Member changes (PATCH add/remove/replace of members, and the members of a create) are answered and dropped. */
  groupMembers?: boolean;
  /** POST /Groups answers 201 with a new id, and no group is kept. */
  groupCreate?: boolean;
}

export const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
const MAX_BODY_BYTES = 5 * 1024 * 1024;
/** TeamViewer's doc example uses this URN in place of the RFC one; both are accepted. */
const DOC_PATCH_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:PatchOp';

export const patchBodySchema = z.object({
  schemas: z.array(z.string()),
  Operations: z.array(z.object({ op: z.string(), path: z.string().optional(), value: z.unknown().optional() })).min(1),
});
export type PatchOperation = z.infer<typeof patchBodySchema>['Operations'][number];
const attributeObjectSchema = z.record(z.string(), z.unknown());

export function send(res: ServerResponse, reply: Reply, contentType: string): void {
  if (reply.body === undefined) {
    res.writeHead(reply.status, reply.headers);
    res.end();
    return;
  }
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    ...reply.headers,
    'Content-Type': contentType,
    'Content-Length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

export function scimErrorReply(err: ScimError): Reply {
  return {
    status: err.status,
    body: {
      schemas: [SCIM_ERROR_SCHEMA],
      status: String(err.status),
      ...(err.scimType !== undefined && { scimType: err.scimType }),
      detail: err.message,
    },
    ...(err instanceof MethodNotAllowed && { headers: { Allow: err.allow } }),
  };
}

/** The Web API's error body, also what TeamViewer answers for bad tokens and throttling. */
export function webError(status: number, error: string, description: string): Reply {
  return { status, body: { error, error_description: description, error_code: status } };
}

export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const mediaType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json' && mediaType !== 'application/scim+json') {
    throw new ScimError(415, 'Send the body as application/scim+json or application/json');
  }
  const tooLarge = new ScimError(413, `The body is larger than ${MAX_BODY_BYTES} bytes`);
  if (Number(req.headers['content-length']) > MAX_BODY_BYTES) throw tooLarge;
  const chunks: Buffer[] = [];
  let size = 0;
  // Keep draining past the limit so the connection stays usable for the 413.
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) throw tooLarge;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ScimError(400, 'The body is not valid JSON', 'invalidSyntax');
  }
}

export function parseBody<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input);
  if (!result.success) throw new ScimError(400, `Malformed body: ${z.prettifyError(result.error)}`, 'invalidSyntax');
  return result.data;
}

export function parseValue<T>(schema: z.ZodType<T>, input: unknown, path: string): T {
  const result = schema.safeParse(input);
  if (!result.success) throw invalidValue(`Bad value for ${path}: ${z.prettifyError(result.error)}`);
  return result.data;
}

export function decodeId(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ScimError(404, `No resource ${segment}`);
  }
}

const sameUrn = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

export function requireSchema(schemas: readonly string[], urn: string): void {
  if (!schemas.some((schema) => sameUrn(schema, urn))) {
    throw new ScimError(400, `schemas must contain ${urn}`, 'invalidSyntax');
  }
}

export function requirePatchSchema(schemas: readonly string[]): void {
  if (!schemas.some((schema) => sameUrn(schema, SCIM_PATCH_SCHEMA) || sameUrn(schema, DOC_PATCH_SCHEMA))) {
    throw new ScimError(400, `schemas must contain ${SCIM_PATCH_SCHEMA}`, 'invalidSyntax');
  }
}

export const invalidValue = (detail: string): ScimError => new ScimError(400, detail, 'invalidValue');

export const nonEmpty = (text: string | undefined): string | undefined => text?.trim() || undefined;

export function requireText(attribute: string, value: unknown): string {
  const text = typeof value === 'string' ? nonEmpty(value) : undefined;
  if (text === undefined) throw invalidValue(`${attribute} must be a non-empty string`);
  return text;
}

/** Strips the resource's schema URN from a fully qualified attribute path. */
export function attributePath(path: string, schemaUrn: string): string {
  const trimmed = path.trim();
  const prefix = `${schemaUrn}:`;
  return trimmed.toLowerCase().startsWith(prefix.toLowerCase()) ? trimmed.slice(prefix.length) : trimmed;
}

export function attributeObject(value: unknown): Record<string, unknown> {
  return parseValue(attributeObjectSchema, value, 'an operation without path (needs an object value)');
}

export function integerParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(value)) throw invalidValue(`${name} must be an integer`);
  return value;
}

export function listReply<T>(items: readonly T[], query: URLSearchParams, pageSizeMax: number | null | undefined, render: (item: T) => unknown): Reply {
  const start = Math.max(1, integerParam(query, 'startIndex') ?? 1) - 1;
  const asked = integerParam(query, 'count');
  const count = Math.min(asked === undefined ? items.length : Math.max(0, asked), pageSizeMax ?? Infinity);
  const page = items.slice(start, start + count);
  return {
    status: 200,
    body: {
      schemas: [SCIM_LIST_SCHEMA],
      totalResults: items.length,
      // TeamViewer's documented example echoes 0 here whatever was asked; clients must not rely on it.
      startIndex: 0,
      itemsPerPage: page.length,
      Resources: page.map(render),
    },
  };
}

const FILTER_OPS = ['eq', 'ne', 'co', 'sw', 'ew'] as const;
type FilterOp = (typeof FILTER_OPS)[number];
/** A double-quoted filter value, backslash escapes allowed; the value is the first group. */
export const QUOTED = String.raw`"((?:[^"\\]|\\.)*)"`;
const FILTER_PATTERN = new RegExp(String.raw`^\s*([A-Za-z][\w.]*)\s+(\w+)\s+${QUOTED}\s*$`);

interface Filter {
  attribute: string;
  op: FilterOp;
  value: string;
}

export const unquote = (escaped: string): string => escaped.replace(/\\(.)/g, '$1');

export function parseFilter(text: string, attributes: ReadonlySet<string>): Filter {
  const match = FILTER_PATTERN.exec(text);
  const attribute = match?.[1]?.toLowerCase();
  const op = FILTER_OPS.find((known) => known === match?.[2]?.toLowerCase());
  const value = match?.[3];
  if (attribute === undefined || !attributes.has(attribute) || op === undefined || value === undefined) {
    throw new ScimError(400, `Unsupported filter: ${text}`, 'invalidFilter');
  }
  return { attribute, op, value: unquote(value) };
}

/** Case-sensitive, as TeamViewer documents for its filters. */
export function compare(op: FilterOp, actual: string, expected: string): boolean {
  switch (op) {
    case 'eq':
      return actual === expected;
    case 'ne':
      return actual !== expected;
    case 'co':
      return actual.includes(expected);
    case 'sw':
      return actual.startsWith(expected);
    case 'ew':
      return actual.endsWith(expected);
  }
}
