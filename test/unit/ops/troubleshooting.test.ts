import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../support/fixtures.js';

/** Every TypeScript source of the product, read once. */
function productSources(): string {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts')) out.push(readFileSync(path, 'utf8'));
    }
  };
  for (const dir of ['agent', 'common', 'conf', 'driver', 'glance-bridge', 'tools/cli']) walk(join(ROOT, dir));
  return out.join('\n');
}

/** docs/troubleshooting.md covers each service's common failures with the codes Berth really uses. */
describe('troubleshooting guide', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'troubleshooting.md'), 'utf8');

  it('covers the broker, migrations, registry auth and TLS, dockerd, disk full, port taken and nova registration', () => {
    for (const topic of [
      /ACCESS_REFUSED/,
      /connection refused/,
      /DB_SCHEMA_NEWER/,
      /REGISTRY_AUTH_FAILED/,
      /TLS/,
      /dockerd is down/,
      /ENOSPC/,
      /EADDRINUSE/,
      /does not register/,
    ]) {
      assert.match(doc, topic);
    }
  });

  it('names only error codes the product raises', () => {
    const sources = productSources();
    const codes = [...new Set([...doc.matchAll(/`([A-Z][A-Z_]{5,})`/g)].map((m) => m[1]!))];
    assert.ok(codes.length >= 8, codes.join(', '));
    const unknown = codes.filter((c) => !sources.includes(`'${c}'`));
    assert.deepEqual(unknown, []);
  });
});
