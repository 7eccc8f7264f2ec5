/**
 * Option declarations, oslo.config style: each option is declared once, in its section's file
 * under options/, with its type, default and help. Everything else (parsing, the sample file, the
 * reference doc) is derived from the schema assembled here.
 */
import { agentSections } from './options/agent.js';
import { consoleSections } from './options/console.js';
import { imagesSections } from './options/images.js';
import { messagingSections } from './options/messaging.js';
import { serviceSections } from './options/service.js';
import { volumesSections } from './options/volumes.js';
import type { OptionSpec } from './options/spec.js';

export type { OptionSpec, OptionType } from './options/spec.js';

/** Every section, in the order the sample file and the reference doc list them. */
export const schema = {
  ...serviceSections,
  ...agentSections,
  ...consoleSections,
  ...volumesSections,
  ...imagesSections,
  ...messagingSections,
} as const satisfies Record<string, Record<string, OptionSpec>>;

export type Schema = typeof schema;
type ValueOf<S> = S extends OptionSpec<infer T> ? T : never;
export type Config = {
  readonly [Sec in keyof Schema]: { readonly [K in keyof Schema[Sec]]: ValueOf<Schema[Sec][K]> };
};
