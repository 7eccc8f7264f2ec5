import type { Config, OptionSpec } from './options.js';
import { schema } from './options.js';

/** `user:password@` in a URL, also in each host of a multi-host URL (`rabbit://a:p@h1,b:q@h2/`). */
const USERINFO = /(?:\/\/|,)[^:/@,]*:([^@/,]*)@/g;

/**
 * The values of every option marked secret, as they must never be printed: a URL's password
 * (decoded and as written) rather than the whole URL (a database URL without a password is no
 * secret), every other secret whole.
 */
export function secretValues(config: Config): string[] {
  const out = new Set<string>();
  for (const [section, options] of Object.entries(schema as Record<string, Record<string, OptionSpec>>)) {
    for (const [key, spec] of Object.entries(options)) {
      if (!spec.secret) continue;
      const value = (config as unknown as Record<string, Record<string, unknown>>)[section]?.[key];
      for (const v of Array.isArray(value) ? value : [value]) {
        if (typeof v === 'string' && v !== '') for (const secret of secretsIn(v)) out.add(secret);
      }
    }
  }
  return [...out];
}

/** The secret parts of one value. */
export function secretsIn(value: string): string[] {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return [value];
  const passwords: string[] = [];
  for (const m of value.matchAll(USERINFO)) {
    const raw = m[1] ?? '';
    if (raw === '') continue;
    passwords.push(raw);
    try {
      passwords.push(decodeURIComponent(raw));
    } catch {
      /* not percent-encoded */
    }
  }
  return passwords;
}
