import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../support/fixtures.js';

/** `Key=value` lines of a systemd unit's [Service] section (a key may repeat). */
function service(name: string): Map<string, string[]> {
  const text = readFileSync(join(ROOT, 'tools', 'systemd', name), 'utf8');
  const body = text.slice(text.indexOf('[Service]'), text.indexOf('[Install]'));
  const out = new Map<string, string[]>();
  for (const line of body.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}
const one = (unit: Map<string, string[]>, key: string): string | undefined => unit.get(key)?.at(-1);

describe('systemd units: least privilege', () => {
  for (const name of ['berth-images.service', 'berth-compute.service']) {
    it(`${name} runs as the berth user with no capabilities`, () => {
      const u = service(name);
      assert.equal(one(u, 'User'), 'berth');
      assert.equal(one(u, 'Group'), 'berth');
      assert.equal(one(u, 'CapabilityBoundingSet'), '');
      assert.equal(one(u, 'AmbientCapabilities'), '');
      assert.equal(one(u, 'NoNewPrivileges'), 'yes');
      assert.equal(one(u, 'ProtectSystem'), 'strict');
      assert.equal(one(u, 'StateDirectory'), 'berth');
    });
  }

  it('berth-agent keeps exactly the capabilities docs/security.md lists, and no StateDirectory that would hand the state to root', () => {
    const u = service('berth-agent.service');
    assert.equal(one(u, 'User'), undefined);
    assert.equal(one(u, 'StateDirectory'), undefined);
    const caps = (one(u, 'CapabilityBoundingSet') ?? '').split(/\s+/).filter(Boolean).sort();
    const doc = readFileSync(join(ROOT, 'docs', 'security.md'), 'utf8');
    const table = doc.slice(doc.indexOf('| capability | why |'), doc.indexOf('Everything else'));
    const documented = [...table.matchAll(/`(CAP_[A-Z_]+)`/g)].map((m) => m[1]!).sort();
    assert.ok(caps.length > 0);
    assert.deepEqual(caps, documented);
  });

  it('every unit starts a service the package holds; the berth user and state folder are declared', () => {
    for (const name of ['berth-images.service', 'berth-compute.service', 'berth-agent.service']) {
      const exec = one(service(name), 'ExecStart') ?? '';
      const m = /\/usr\/lib\/berth\/dist\/(\S+)\.js$/.exec(exec);
      assert.ok(m, exec);
      assert.ok(existsSync(join(ROOT, `${m[1]}.ts`)), `${name}: ${m[1]}.ts`);
    }
    assert.match(readFileSync(join(ROOT, 'tools', 'systemd', 'berth.sysusers'), 'utf8'), /^u berth /m);
    assert.match(readFileSync(join(ROOT, 'tools', 'systemd', 'berth.tmpfiles'), 'utf8'), /^d \/var\/lib\/berth 0700 berth berth/m);
  });
});
