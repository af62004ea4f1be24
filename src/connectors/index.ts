import type { SourceConfig } from '../config/schema.js';
import type { DirectorySource, SourceDeps } from './source.js';
import { createEntraSource } from './entra.js';
import { createFileSource } from './file.js';
import { createJumpcloudSource } from './jumpcloud.js';
import { createOktaSource } from './okta.js';

export function createSource(config: SourceConfig, deps: SourceDeps): DirectorySource {
  switch (config.type) {
    case 'file':
      return createFileSource(config);
    case 'entra':
      return createEntraSource(config, deps);
    case 'okta':
      return createOktaSource(config, deps);
    case 'jumpcloud':
      return createJumpcloudSource(config, deps);
  }
}
