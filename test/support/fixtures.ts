import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root folder. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The captured wire fixtures (real oslo.messaging and nova messages), kept in the repository. */
export const FIXTURES = join(ROOT, 'test', 'fixtures');

export interface Fixture {
  exchange: string;
  routing_key: string;
  properties: Record<string, unknown>;
  body: string;
  message: Record<string, unknown>;
  failure_parsed?: Record<string, unknown>;
}

/** A captured message, by its path below test/fixtures/ (see test/fixtures/README.md). */
export function fixture(name: string): Fixture {
  const path = join(FIXTURES, name);
  if (!existsSync(path)) throw new Error(`fixture ${name} not found in test/fixtures/`);
  return JSON.parse(readFileSync(path, 'utf8')) as Fixture;
}
