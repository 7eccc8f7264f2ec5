import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root folder. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The shared wire fixtures (captured real oslo.messaging / nova messages). They live in the
 * `shared/` folder beside the repository; BERTH_SHARED overrides where that is.
 */
export const SHARED = process.env.BERTH_SHARED ?? resolve(ROOT, '..', 'shared');

export interface Fixture {
  exchange: string;
  routing_key: string;
  properties: Record<string, unknown>;
  body: string;
  message: Record<string, unknown>;
  failure_parsed?: Record<string, unknown>;
}

export function fixture(name: string): Fixture {
  const path = join(SHARED, 'fixtures', name);
  if (!existsSync(path)) throw new Error(`fixture ${name} not found under ${SHARED}/fixtures (set BERTH_SHARED)`);
  return JSON.parse(readFileSync(path, 'utf8')) as Fixture;
}
