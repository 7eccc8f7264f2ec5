import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { crossChecks, formatProblem } from './checks.js';
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
