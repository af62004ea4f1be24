import { z } from 'zod';
import { durationBetween } from '../units/duration.js';
import { ALERT_KINDS } from '../observe/alerts.js';

export const webhookSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'use letters, digits, "-" and "_"')
    .describe('names the webhook in logs and metrics (its URL never appears there)'),
  url: z
    .url()
    .refine((url) => /^https?:\/\//i.test(url), 'expected http:// or https://')
    .describe('the webhook URL; a secret (Slack and Teams URLs carry their token): ${ENV_VAR} or urlFile'),
  format: z.enum(['generic', 'slack', 'teams']).default('generic'),
  conditions: z.array(z.enum(ALERT_KINDS)).min(1).optional().describe('only these conditions (default: all)'),
});

export const alertsSchema = z.strictObject({
  webhooks: z.array(webhookSchema).max(20).default([]),
  backlog: z
    .strictObject({
      waiting: z.number().int().min(1).default(5000).describe('operations and user syncs waiting in the queue of one sync'),
      age: durationBetween(10_000, 7 * 86_400_000)
        .default(15 * 60_000)
        .describe('how long the oldest of them has waited'),
    })
    .default({ waiting: 5000, age: 15 * 60_000 }),
  rateLimitPerMinute: z.number().int().min(1).max(600).default(20).describe('per webhook; what goes over it is sent as one summary'),
  checkEvery: durationBetween(1000, 3_600_000).default(30_000).describe('how often the conditions are looked at besides after each cycle'),
  timeout: durationBetween(500, 120_000).default(10_000).describe('per webhook request'),
  attempts: z.number().int().min(1).max(20).default(6).describe('attempts per alert, with exponential back-off and jitter'),
});

export const auditSchema = z
  .strictObject({
    to: z.enum(['off', 'stdout', 'file', 'syslog']).default('off'),
    path: z.string().min(1).optional().describe('the file (to: file); reopened on SIGHUP, and when it was moved away'),
    maxBytes: z
      .number()
      .int()
      .min(4096)
      .optional()
      .describe('to: file: once the file is this big it is renamed to <path>.1 (replacing an older one) and a new one begun'),
    syslog: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(1).max(65535).default(514),
        protocol: z.enum(['udp', 'tcp']).default('udp'),
        facility: z.number().int().min(0).max(23).default(13).describe('13: log audit; 16–23: local0–local7'),
        appName: z
          .string()
          .regex(/^[!-~]{1,48}$/)
          .default('tvsync'),
      })
      .optional(),
  })
  .superRefine((audit, ctx) => {
    if (audit.to === 'file' && !audit.path) ctx.addIssue({ code: 'custom', path: ['path'], message: 'to: file needs a path' });
  });

export type AlertsConfig = z.output<typeof alertsSchema>;
export type WebhookConfig = z.output<typeof webhookSchema>;
export type AuditConfig = z.output<typeof auditSchema>;
