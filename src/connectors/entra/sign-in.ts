import { rootCertificates } from 'node:tls';
import { ClientCertificateCredential, ClientSecretCredential, type ClientSecretCredentialOptions, type TokenCredential } from '@azure/identity';
import { SyncError } from '../../model/failure.js';
import { parseRetryAfter } from '../../net/retry.js';
import { describeWait, isRedirect, redirectRefusal, waitRefusal } from '../../net/request-limits.js';
import { outsideText, registerSecret } from '../../net/secrets.js';
import { SourceReadError } from '../source.js';
import { guardRefusal, type TokenSource } from './client.js';
import type { EntraSourceConfig } from './config.js';

/**
 * Signing in to Entra as the app registration: the credential built from the config, held to
 * tvsync's limits (a deadline, no redirect, no unbounded wait), its tokens registered with the
 * scrubber, and a refusal explained in terms of the config.
 */

/** Microsoft's own sign-in hosts: MSAL knows their metadata and never asks instance discovery about them. */
const MICROSOFT_AUTHORITY_HOSTS = new Set([
  'login.microsoftonline.com',
  'login.microsoftonline.us',
  'login.chinacloudapi.cn',
  'login.partner.microsoftonline.cn',
  'login.microsoftonline.de',
  'login-us.microsoftonline.com',
  'login.sovcloud-identity.fr',
  'login.sovcloud-identity.de',
  'login.sovcloud-identity.sg',
]);

export function isMicrosoftAuthority(authorityHost: string): boolean {
  return MICROSOFT_AUTHORITY_HOSTS.has(new URL(authorityHost).hostname.toLowerCase());
}

/** What the sign-in pipeline refused or gave up on; MSAL passes only its own message on. */
interface SignInNotes {
  problem?: { failureClass: 'invalid' | 'rate-limited' | 'transient'; message: string; retryAfterMs?: number };
}

type PipelinePolicy = NonNullable<ClientSecretCredentialOptions['additionalPolicies']>[number]['policy'];

type TlsSettings = NonNullable<Parameters<PipelinePolicy['sendRequest']>[0]['tlsSettings']>;

/** Outermost: one deadline per sign-in request, covering the SDK's own retries and the body. */
function signInDeadline(timeoutMs: number, notes: SignInNotes, tls: TlsSettings | undefined): PipelinePolicy {
  return {
    name: 'tvsyncSignInDeadline',
    async sendRequest(request, next) {
      // One settings object for every request: the HTTP client keeps one agent per settings object.
      if (tls) request.tlsSettings = tls;
      const deadline = AbortSignal.timeout(timeoutMs);
      const given = request.abortSignal;
      request.abortSignal = given instanceof AbortSignal ? AbortSignal.any([given, deadline]) : deadline;
      try {
        return await next(request);
      } catch (err) {
        if (deadline.aborted) {
          notes.problem = { failureClass: 'transient', message: `the sign-in endpoint did not answer within ${describeWait(timeoutMs)} (timeout)` };
        }
        throw err;
      }
    },
  };
}

/** Innermost: sees every answer before the SDK's redirect and retry handling does. */
function signInGuard(maxWaitMs: number, notes: SignInNotes): PipelinePolicy {
  return {
    name: 'tvsyncSignInGuard',
    async sendRequest(request, next) {
      const response = await next(request);
      const what = `${request.method} ${new URL(request.url).pathname}`;
      if (isRedirect(response.status)) {
        const message = redirectRefusal('The Entra sign-in endpoint', what, response.status, response.headers.get('location'), request.url);
        notes.problem = { failureClass: 'invalid', message };
        throw guardRefusal(message);
      }
      const retryAfterMs = response.status === 429 || response.status === 503 ? parseRetryAfter(response.headers.get('retry-after') ?? undefined) : undefined;
      if (retryAfterMs !== undefined && retryAfterMs > maxWaitMs) {
        const message = `${what} was throttled (HTTP ${response.status}): ${waitRefusal('The Entra sign-in endpoint', retryAfterMs, maxWaitMs)}`;
        notes.problem = { failureClass: 'rate-limited', message, retryAfterMs };
        throw guardRefusal(message);
      }
      return response;
    },
  };
}

/** Every token the credential obtains is registered with the scrubber before anyone uses it. */
function registeringTokens(credential: TokenCredential): TokenCredential {
  return {
    async getToken(scopes, options) {
      const token = await credential.getToken(scopes, options);
      if (token) registerSecret(token.token);
      return token;
    },
  };
}

function credentialFrom(config: EntraSourceConfig, notes: SignInNotes, maxWaitMs: number): TokenCredential {
  // Given CAs replace the public ones in Node's TLS: keep both.
  const tls = config.authorityCaCertificate === undefined ? undefined : { ca: [...rootCertificates, config.authorityCaCertificate] };
  const options: ClientSecretCredentialOptions = {
    authorityHost: config.authorityHost,
    disableInstanceDiscovery: config.disableInstanceDiscovery,
    additionalPolicies: [
      { policy: signInDeadline(config.timeout, notes, tls), position: 'perCall' },
      { policy: signInGuard(maxWaitMs, notes), position: 'perRetry' },
    ],
  };
  if (config.clientSecret !== undefined) return new ClientSecretCredential(config.tenantId, config.clientId, config.clientSecret, options);
  // @azure/identity wants key and certificate in one PEM.
  const pem = `${config.privateKey ?? ''}\n${config.certificate ?? ''}`;
  return new ClientCertificateCredential(config.tenantId, config.clientId, { certificate: pem }, options);
}

/** Tokens for Graph, from the configured app registration or a given credential. */
export class EntraSignIn implements TokenSource {
  private readonly credential: TokenCredential;
  private readonly notes: SignInNotes = {};
  private readonly scope: string;

  /** `given` replaces the credential built from the config (managed or workload identity, local fakes). */
  constructor(
    private readonly config: EntraSourceConfig,
    given: TokenCredential | undefined,
    maxWaitMs: number,
  ) {
    this.scope = `${new URL(config.graphBaseUrl).origin}/.default`;
    const credential = given ?? credentialFrom(config, this.notes, maxWaitMs);
    registerSecret(config.clientSecret);
    registerSecret(config.privateKey);
    this.credential = registeringTokens(credential);
  }

  async token(signal?: AbortSignal): Promise<string> {
    try {
      const token = await this.credential.getToken(this.scope, signal ? { abortSignal: signal } : {});
      if (token) return token.token;
    } catch (err) {
      if (signal?.aborted) throw new SourceReadError('signing in to Entra: cancelled');
      throw this.failure(err);
    }
    throw new SyncError('unauthorised', `signing in to Entra tenant ${this.config.tenantId} as app ${this.config.clientId} returned no token`);
  }

  private failure(err: unknown): SyncError {
    const { tenantId, clientId, authorityHost, disableInstanceDiscovery } = this.config;
    const prefix = `signing in to Entra tenant ${tenantId} as app ${clientId} failed`;
    const noted = this.notes.problem;
    this.notes.problem = undefined;
    if (noted) {
      return new SyncError(noted.failureClass, `${prefix}: ${noted.message}`, noted.retryAfterMs !== undefined ? { retryAfterMs: noted.retryAfterMs } : {});
    }
    const reason = outsideText(err instanceof Error ? (err.message.split('\n')[0] ?? err.name) : 'unknown error');
    // MSAL could not learn the authority's endpoints: instance discovery does not know the host, or
    // the host publishes no OpenID configuration. Retrying does not change either.
    if (/endpoints_resolution_error|untrusted_authority|openid_config_error/i.test(reason)) {
      const fix =
        !disableInstanceDiscovery && !isMicrosoftAuthority(authorityHost)
          ? `Microsoft's instance discovery does not know the authority ${authorityHost}: set disableInstanceDiscovery: true for a private, proxied, on-premises or local authority, or fix authorityHost`
          : `the authority ${authorityHost} did not give its OpenID configuration (${authorityHost}/${tenantId}/v2.0/.well-known/openid-configuration): fix authorityHost, or check that it can be reached`;
      return new SyncError('invalid', `${prefix}: ${reason}. ${fix}.`);
    }
    const network = /ECONN|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|socket|network/i.test(reason);
    return new SyncError(
      network ? 'transient' : 'unauthorised',
      `${prefix}: ${reason}. ` +
        (network ? `Check that ${authorityHost} can be reached.` : 'Check tenantId, clientId and the client secret or certificate (it may have expired).'),
    );
  }
}
