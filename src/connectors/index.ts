import { outsideText } from '../net/secrets.js';
import type { EntraSourceConfig } from './entra/config.js';
import type { FileSourceConfig } from './file/config.js';
import type { JumpcloudSourceConfig } from './jumpcloud/config.js';
import type { OktaSourceConfig } from './okta/config.js';
import { SourceReadError, type DirectorySource, type SourceDeps } from './source.js';

export type SourceConfig = FileSourceConfig | EntraSourceConfig | OktaSourceConfig | JumpcloudSourceConfig;

/** The source's own module, loaded here and only here: an IdP's SDK is loaded only when a sync uses that IdP. */
async function load(config: SourceConfig, deps: SourceDeps): Promise<DirectorySource> {
  switch (config.type) {
    case 'file':
      return (await import('./file/source.js')).createFileSource(config, deps);
    case 'entra':
      return (await import('./entra/source.js')).createEntraSource(config, deps);
    case 'okta':
      return (await import('./okta/source.js')).createOktaSource(config, deps);
    case 'jumpcloud':
      return (await import('./jumpcloud/source.js')).createJumpcloudSource(config, deps);
  }
}

/**
 * The source a sync reads from. Its module is loaded, and the source built, on first use, so that
 * commands that never read an IdP (status, healthcheck, …) load none of the SDKs.
 */
export function createSource(config: SourceConfig, deps: SourceDeps): DirectorySource {
  let built: Promise<DirectorySource> | undefined;
  const source = (): Promise<DirectorySource> => (built ??= load(config, deps));
  return {
    kind: config.type,
    async read(opts) {
      let ready: DirectorySource;
      try {
        ready = await source();
      } catch (err) {
        // A source that cannot be set up reads nothing: the cycle fails as a read, deactivating no one.
        throw new SourceReadError(`the ${config.type} source could not be set up: ${outsideText(err instanceof Error ? err.message : String(err))}`, err);
      }
      return ready.read(opts);
    },
    async check() {
      return (await source()).check();
    },
    // Every source can answer; one that could not tell would leave such groups alone.
    async lookupGroups(ids) {
      const ready = await source();
      return ready.lookupGroups ? ready.lookupGroups(ids) : new Map();
    },
    async readUser(ref, opts) {
      let ready: DirectorySource;
      try {
        ready = await source();
      } catch (err) {
        throw new SourceReadError(`the ${config.type} source could not be set up: ${outsideText(err instanceof Error ? err.message : String(err))}`, err);
      }
      if (!ready.readUser) throw new SourceReadError(`the ${config.type} source cannot read one user on its own`);
      return ready.readUser(ref, opts);
    },
    async changeFeed() {
      return (await source()).changeFeed?.();
    },
    async hookReceiver() {
      return (await source()).hookReceiver?.();
    },
  };
}
