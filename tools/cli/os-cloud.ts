import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import type { KeystoneCredentials } from '../../common/keystone/index.js';
import { UsageError } from './usage-error.js';

/** yaml, loaded when first needed (most commands never print or read YAML: the CLI starts faster). */
const parseYaml = (text: string): unknown => (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text);

/**
 * OpenStack credentials the way python-openstackclient finds them: `--os-cloud NAME` (or
 * OS_CLOUD) names an entry of clouds.yaml; without one, plain OS_* variables; without
 * OS_AUTH_URL either, none (the CLI then talks to the noauth glance-bridge as before).
 */
export interface OsCredentials {
  creds: KeystoneCredentials;
  source: string;
}

export interface ResolveOptions {
  cloud?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  home?: string;
  /** The system-wide directory, /etc/openstack; a seam for tests. */
  systemDir?: string;
}

/** Where clouds.yaml is looked for, in openstacksdk's order (OS_CLIENT_CONFIG_FILE first when set). */
export function cloudsYamlFiles(o: ResolveOptions = {}): string[] {
  const env = o.env ?? process.env;
  return [
    ...(env.OS_CLIENT_CONFIG_FILE ? [resolve(o.cwd ?? process.cwd(), env.OS_CLIENT_CONFIG_FILE)] : []),
    join(o.cwd ?? process.cwd(), 'clouds.yaml'),
    join(o.home ?? homedir(), '.config', 'openstack', 'clouds.yaml'),
    join(o.systemDir ?? '/etc/openstack', 'clouds.yaml'),
  ];
}

export function resolveOsCredentials(o: ResolveOptions = {}): OsCredentials | null {
  const env = o.env ?? process.env;
  const cloud = o.cloud ?? env.OS_CLOUD;
  if (cloud) return fromCloudsYaml(cloud, cloudsYamlFiles(o));
  return env.OS_AUTH_URL ? fromEnv(env) : null;
}

interface CloudEntry {
  auth_type?: unknown;
  auth?: Record<string, unknown>;
  region_name?: unknown;
}

/** The first file that has the cloud wins; a file that does not parse stops the search. */
function fromCloudsYaml(name: string, files: string[]): OsCredentials {
  for (const file of files) {
    if (!existsSync(file)) continue;
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new UsageError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    const entry = (doc as { clouds?: Record<string, CloudEntry> } | null)?.clouds?.[name];
    if (entry && typeof entry === 'object') return { creds: credsOfEntry(name, entry, file), source: `${file} (cloud ${name})` };
  }
  throw new UsageError(`cloud ${JSON.stringify(name)} not found; searched ${files.join(', ')}`);
}

function credsOfEntry(name: string, entry: CloudEntry, file: string): KeystoneCredentials {
  if (entry.auth_type !== undefined && entry.auth_type !== 'password' && entry.auth_type !== 'v3password') {
    throw new UsageError(`${file}: cloud ${name}: auth_type ${String(entry.auth_type)} is not supported (only password)`);
  }
  const auth = entry.auth ?? {};
  const text = (key: string): string => (typeof auth[key] === 'string' || typeof auth[key] === 'number' ? String(auth[key]) : '');
  const missing = ['auth_url', 'username', 'password', 'project_name'].filter((k) => !text(k));
  if (missing.length) throw new UsageError(`${file}: cloud ${name}: auth lacks ${missing.join(', ')}`);
  return {
    auth_url: text('auth_url'),
    username: text('username'),
    password: text('password'),
    project_name: text('project_name'),
    user_domain_name: text('user_domain_name') || text('domain_name') || 'Default',
    project_domain_name: text('project_domain_name') || text('domain_name') || 'Default',
    region_name: typeof entry.region_name === 'string' ? entry.region_name : '',
  };
}

function fromEnv(env: NodeJS.ProcessEnv): OsCredentials {
  const missing = ['OS_USERNAME', 'OS_PASSWORD', 'OS_PROJECT_NAME'].filter((k) => !env[k]);
  if (missing.length) throw new UsageError(`OS_AUTH_URL is set but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not`);
  return {
    creds: {
      auth_url: env.OS_AUTH_URL!,
      username: env.OS_USERNAME!,
      password: env.OS_PASSWORD!,
      project_name: env.OS_PROJECT_NAME!,
      user_domain_name: env.OS_USER_DOMAIN_NAME || 'Default',
      project_domain_name: env.OS_PROJECT_DOMAIN_NAME || 'Default',
      region_name: env.OS_REGION_NAME ?? '',
    },
    source: 'OS_* environment variables',
  };
}
