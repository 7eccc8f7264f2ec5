export { schema, type Config, type OptionSpec } from './options.js';
export { loadConfig, defaultConfigFiles, ConfigError, type LoadOptions } from './load.js';
export { renderSample, renderReference } from './sample.js';
