import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import { parseAllowEntry } from '../common/address-policy.js';
import { loadCredentials } from '../common/registry-credentials.js';
import { brokerChecks, transportUrlProblem } from './broker-checks.js';
import { parseIniLenient } from './ini.js';
import { schema, type Config, type OptionSpec } from './options.js';

/** One problem in a configuration source, formatted `file: [section] key: what is wrong`. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

type RawValues = Map<string, { value: string; origin: string }>;
const ENV_PREFIX = 'BERTH__';

/** Levenshtein distance, for "did you mean". */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** ` (did you mean X?)` when one of `known` is a likely misspelling of `given`, else ''. */
export function didYouMean(given: string, known: string[]): string {
  const g = given.toLowerCase();
  let best = '';
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(g, k.toLowerCase());
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best && bestD <= Math.min(3, Math.max(2, Math.floor(g.length / 3))) ? ` (did you mean ${best}?)` : '';
}

const sections = (): string[] => Object.keys(schema);
const keysOf = (section: string): string[] => Object.keys((schema as Record<string, Record<string, OptionSpec>>)[section] ?? {});

function specOf(section: string, key: string): OptionSpec | undefined {
  const sec = (schema as Record<string, Record<string, OptionSpec>>)[section];
  return sec?.[key];
}

/** Environment overrides: BERTH__<SECTION>__<KEY>=value, e.g. BERTH__DATABASE__CONNECTION. */
function readEnv(env: NodeJS.ProcessEnv, raw: RawValues, problems: string[]): void {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const parts = name.slice(ENV_PREFIX.length).split('__');
    const section = parts[0] === 'DEFAULT' ? 'DEFAULT' : (parts[0] ?? '').toLowerCase();
    const key = (parts[1] ?? '').toLowerCase();
    if (parts.length !== 2 || !specOf(section, key)) {
      const hint =
        parts.length !== 2
          ? ''
          : section in schema
            ? didYouMean(key, keysOf(section)).replace(/did you mean (\S+)\?/, (_m, k: string) => `did you mean ${ENV_PREFIX}${parts[0]}__${k.toUpperCase()}?`)
            : didYouMean(section, sections()).replace(
                /did you mean (\S+)\?/,
                (_m, sec: string) => `did you mean ${ENV_PREFIX}${sec === 'DEFAULT' ? sec : sec.toUpperCase()}__${parts[1]}?`,
              );
      problems.push(`environment: ${name}: no such option${hint}`);
      continue;
    }
    raw.set(`${section}.${key}`, { value, origin: `environment ${name}` });
  }
}

function readFile(file: string, raw: RawValues, problems: string[]): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    return;
  }
  const { entries, errors } = parseIniLenient(text);
  for (const err of errors) problems.push(`${file}: ${err.message}`);
  for (const e of entries) {
    if (!(e.section in schema)) {
      problems.push(`${file}: [${e.section}] ${e.key}: unknown section (line ${e.line})${didYouMean(e.section, sections())}`);
      continue;
    }
    if (!specOf(e.section, e.key)) {
      // An option misplaced in another section is named with its section.
      const elsewhere = sections()
        .filter((sec) => specOf(sec, e.key))
        .map((sec) => `[${sec}] ${e.key}`);
      const hint = didYouMean(e.key, keysOf(e.section)) || (elsewhere.length ? ` (it belongs in ${elsewhere.join(' or ')})` : '');
      problems.push(`${file}: [${e.section}] ${e.key}: unknown option (line ${e.line})${hint}`);
      continue;
    }
    raw.set(`${e.section}.${e.key}`, { value: e.value, origin: file });
  }
}

function convert(spec: OptionSpec, text: string): { value?: unknown; problem?: string } {
  // A secret's value (a password in a malformed URL) is never printed, not even in an error.
  const shown = spec.secret ? '(a secret value, not shown)' : JSON.stringify(text);
  switch (spec.type) {
    case 'string':
      return { value: text };
    case 'url':
      if (text === '') return { value: text };
      try {
        new URL(text);
        return { value: text };
      } catch {
        return { problem: `not a URL: ${shown}` };
      }
    case 'bool': {
      const t = text.toLowerCase();
      if (['true', 'yes', 'on', '1'].includes(t)) return { value: true };
      if (['false', 'no', 'off', '0'].includes(t)) return { value: false };
      return { problem: `expected true or false, got ${shown}` };
    }
    case 'int':
    case 'float': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n) || (spec.type === 'int' && !Number.isInteger(n))) {
        return { problem: `expected ${spec.type === 'int' ? 'an integer' : 'a number'}, got ${shown}` };
      }
      if (spec.min !== undefined && n < spec.min) return { problem: `${n} is below the minimum ${spec.min}` };
      if (spec.max !== undefined && n > spec.max) return { problem: `${n} is above the maximum ${spec.max}` };
      return { value: n };
    }
    case 'enum':
      return spec.choices!.includes(text) ? { value: text } : { problem: `expected one of ${spec.choices!.join(', ')}, got ${shown}` };
    case 'list':
      return {
        value: text
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      };
  }
}

/** `$state_path`-style references to [DEFAULT] options, as oslo.config interpolates them. */
function interpolate(value: unknown, defaults: Record<string, unknown>): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$(\w+)|\$\{(\w+)\}/g, (m, a: string | undefined, b: string | undefined) => {
      const ref = defaults[(a ?? b)!];
      return ref === undefined ? m : String(ref);
    });
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, defaults));
  return value;
}

export interface LoadOptions {
  files?: string[];
  env?: NodeJS.ProcessEnv;
  overrides?: Partial<Record<string, Record<string, unknown>>>;
}

/**
 * Reads the files (later ones win), then the environment, then programmatic overrides; validates
 * every value; returns a deep-frozen Config. Throws ConfigError naming every problem at once.
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const problems: string[] = [];
  const raw: RawValues = new Map();
  for (const f of opts.files ?? []) readFile(f, raw, problems);
  readEnv(opts.env ?? process.env, raw, problems);

  const out: Record<string, Record<string, unknown>> = {};
  for (const [section, options] of Object.entries(schema as Record<string, Record<string, OptionSpec>>)) {
    out[section] = {};
    for (const [key, spec] of Object.entries(options)) {
      const override = opts.overrides?.[section]?.[key];
      const given = raw.get(`${section}.${key}`);
      let value: unknown = spec.default;
      if (override !== undefined) value = override;
      else if (given) {
        const r = convert(spec, given.value);
        const problem = r.problem ?? formatProblem(section, key, spec, r.value);
        if (problem) problems.push(`${given.origin}: [${section}] ${key}: ${problem}`);
        else value = r.value;
      }
      out[section]![key] = value;
    }
  }
  problems.push(...crossChecks(out));
  if (problems.length) throw new ConfigError(problems);
  const defaults = out.DEFAULT!;
  if (defaults.host === '') defaults.host = hostname();
  for (const section of Object.values(out)) {
    for (const key of Object.keys(section)) section[key] = interpolate(section[key], defaults);
  }
  for (const section of Object.values(out)) {
    for (const v of Object.values(section)) if (Array.isArray(v)) Object.freeze(v);
    Object.freeze(section);
  }
  return Object.freeze(out) as unknown as Config;
}

/** The URL schemes each URL-valued option is read with; other URL options take http(s). */
const SCHEMES: Record<string, string[]> = {
  'DEFAULT.transport_url': ['rabbit', 'amqp', 'amqps'],
  'database.connection': ['sqlite', 'postgres', 'postgresql'],
  'image_store.connection': ['sqlite', 'postgres', 'postgresql'],
  'agent.url': ['http', 'https', 'unix'],
  'docker.host_url': ['unix', 'http', 'https'],
};

/**
 * HOST:PORT with a port of 1-65535, or 0 where a service listens (the system picks a free port,
 * as tests and one-off stacks ask); IPv6 hosts in brackets. '' when it is one, else the problem.
 */
function hostPortProblem(text: string, listening: boolean): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d+)$/.exec(text);
  if (!m) return `expected HOST:PORT, got ${JSON.stringify(text)}`;
  const host = m[1]!;
  if (host.startsWith('[') ? !isIPv6(host.slice(1, -1)) : /^[\d.]+$/.test(host) && !isIPv4(host))
    return `${host} is not an IP address, in ${JSON.stringify(text)}`;
  const port = Number(m[2]);
  const lowest = listening ? 0 : 1;
  if (port < lowest || port > 65535) return `port ${port} is out of range ${lowest}-65535, in ${JSON.stringify(text)}`;
  return '';
}

/**
 * What start-up would trip on beyond the type: listen addresses (HOST:PORT, or a unix socket
 * path where the option takes one), URL schemes and ports, database URLs.
 */
function formatProblem(section: string, key: string, spec: OptionSpec, value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  if (key.endsWith('listen') || key === 'image_registry') {
    if (value.startsWith('/') && /unix socket/.test(spec.help)) return undefined;
    if (value.startsWith('/')) return `a unix socket path is not accepted here: expected HOST:PORT, got ${JSON.stringify(value)}`;
    return hostPortProblem(value, key.endsWith('listen')) || undefined;
  }
  const schemes = SCHEMES[`${section}.${key}`] ?? (spec.type === 'url' || key === 'auth_url' ? ['http', 'https'] : undefined);
  if (!schemes) return undefined;
  const shown = spec.secret ? '(a secret value, not shown)' : JSON.stringify(value);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (!scheme) return `expected a URL (${schemes.map((x) => `${x}://`).join(', ')}), got ${shown}`;
  // SQLAlchemy-style dialects: postgresql+psycopg2:// is postgresql.
  const base = scheme.replace(/\+.*$/, '');
  if (!schemes.includes(base)) return `the scheme ${scheme}:// is not one of ${schemes.map((x) => `${x}://`).join(', ')}`;
  if (base === 'sqlite' || base === 'unix') return undefined;
  if (key === 'transport_url') return transportUrlProblem(value) || undefined;
  let u: URL;
  try {
    u = new URL(value.replace(/^[^:]+:/, 'http:'));
  } catch {
    return `not a URL: ${shown}`;
  }
  if (!u.hostname) return `no host in ${shown}`;
  if (u.port !== '' && (Number(u.port) < 1 || Number(u.port) > 65535)) return `port ${u.port} is out of range 1-65535`;
  return undefined;
}

/** Rules that tie options together; each problem names every option involved. */
function crossChecks(c: Record<string, Record<string, unknown>>): string[] {
  const problems: string[] = [];
  if (c.nova!.control_plane === 'nova') {
    const missing = ['auth_url', 'username', 'password'].filter((k) => !c.placement![k]);
    if (missing.length)
      problems.push(`[nova] control_plane = nova needs [placement] ${missing.join(', ')} (the service user that manages this node's resource provider)`);
  }
  // Services validating incoming tokens do it as the [keystone_authtoken] service user.
  for (const section of ['image_store', 'agent'] as const) {
    const strategy = c[section]!.auth_strategy;
    if (strategy !== 'keystone' && strategy !== 'token+keystone') continue;
    const missing = ['auth_url', 'username', 'password'].filter((k) => !c.keystone_authtoken![k]);
    if (missing.length) problems.push(`[${section}] auth_strategy = ${strategy} needs [keystone_authtoken] ${missing.join(', ')}`);
  }
  if (c.agent!.auth_strategy !== 'token' && !(c.agent!.keystone_roles as string[]).length) {
    problems.push(`[agent] auth_strategy = ${String(c.agent!.auth_strategy)} needs at least one role in [agent] keystone_roles`);
  }
  for (const section of ['placement', 'keystone_authtoken', 'glance'] as const) {
    const auth = c[section]!;
    if (auth.auth_url && !(auth.username && auth.password)) problems.push(`[${section}] auth_url is set but username or password is not`);
  }
  problems.push(...brokerChecks(c.DEFAULT!.transport_url as string, c.oslo_messaging_rabbit as unknown as Parameters<typeof brokerChecks>[1]));
  problems.push(...registryChecks(c.registry!));
  problems.push(...noauthChecks(c.image_store!));
  return problems;
}

/**
 * noauth believes the X-Project-Id and X-Roles headers: on an address others reach, any caller
 * would act as any project or as admin. It is refused there unless the operator says every
 * client is trusted.
 */
function noauthChecks(store: Record<string, unknown>): string[] {
  if (store.auth_strategy !== 'noauth' || store.noauth_beyond_loopback) return [];
  return (['listen', 'registry_listen'] as const)
    .filter((key) => typeof store[key] === 'string' && store[key] !== '' && !isLoopbackListen(store[key] as string))
    .map(
      (key) =>
        `[image_store] ${key} = ${String(store[key])} is not a loopback address, and auth_strategy = noauth lets any caller act as any project or as admin: use auth_strategy = keystone, listen on loopback, or set noauth_beyond_loopback = true on a network where every client is trusted`,
    );
}

/** HOST:PORT whose host is loopback (127.0.0.0/8, ::1, localhost). */
function isLoopbackListen(listen: string): boolean {
  const host = (/^\[(.*)\]:\d*$/.exec(listen)?.[1] ?? listen.replace(/:\d*$/, '')).toLowerCase();
  return host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
}

/**
 * [registry] credentials and allowlist. Before credentials_file, username/password went to any
 * registry that asked (and to any token realm it named); they are refused without the
 * credentials_host they belong to, saying how to upgrade, rather than silently sent nowhere.
 */
function registryChecks(r: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const username = String(r.username ?? '');
  const host = String(r.credentials_host ?? '');
  if ((username || r.password) && !host) {
    problems.push(
      '[registry] username/password are sent only to the registry named in [registry] credentials_host, which is not set. ' +
        'Set credentials_host = HOST[:PORT] of the registry they belong to (docker.io for Docker Hub), ' +
        'or better, move them to a Docker config.json ({"auths": {"HOST[:PORT]": {"auth": "BASE64(USER:PASSWORD)"}}}) named by [registry] credentials_file and remove username/password',
    );
  } else if (host && !username) {
    problems.push(`[registry] credentials_host = ${host} needs [registry] username and password`);
  } else if (host && !/^[a-zA-Z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:.]+\](:\d{1,5})?$/.test(host)) {
    problems.push(`[registry] credentials_host: expected HOST[:PORT], got ${JSON.stringify(host)}`);
  }
  for (const entry of (r.allowed_internal as string[] | undefined) ?? []) {
    const parsed = parseAllowEntry(entry);
    if (typeof parsed === 'string') problems.push(`[registry] allowed_internal: ${parsed}`);
  }
  // A file named through $state_path is read once interpolated, when the image service starts.
  if ((r.credentials_file && !String(r.credentials_file).includes('$')) || (username && host)) {
    try {
      loadCredentials({
        file: String(r.credentials_file ?? '').includes('$') ? '' : String(r.credentials_file ?? ''),
        legacy: { host, username, password: String(r.password ?? '') },
      });
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}

/** The config file named by --config-file / BERTH_CONFIG, or the system one if it exists. */
export function defaultConfigFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.BERTH_CONFIG) return env.BERTH_CONFIG.split(':').filter(Boolean);
  try {
    readFileSync('/etc/berth/berth.conf');
    return ['/etc/berth/berth.conf'];
  } catch {
    return [];
  }
}
