import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../support/fixtures.js';

const UNITS = join(ROOT, 'tools', 'systemd');

/** `Key=value` lines of a unit's [Service] section. */
function serviceSection(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let inService = false;
  for (const line of text.split('\n')) {
    if (/^\[.*\]$/.test(line)) inService = line === '[Service]';
    const m = inService ? /^(\w+)=(.*)$/.exec(line) : null;
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

describe('systemd units', () => {
  const units = readdirSync(UNITS).filter((f) => f.endsWith('.service'));

  it('there is one per service', () => {
    assert.deepEqual(units.sort(), ['berth-agent.service', 'berth-compute.service', 'berth-images.service']);
  });

  it('every service keeps its state private: a 0700 state directory and a 0077 umask', () => {
    // The agent runs as root without StateDirectory= (which would hand the folder to root): the
    // folder is then the berth user's, made 0700 by the tmpfiles entry.
    const tmpfiles = readFileSync(join(UNITS, 'berth.tmpfiles'), 'utf8');
    assert.match(tmpfiles, /^d \/var\/lib\/berth 0700 berth berth -$/m);
    for (const unit of units) {
      const service = serviceSection(readFileSync(join(UNITS, unit), 'utf8'));
      if (unit !== 'berth-agent.service') {
        assert.deepEqual(service.get('StateDirectory'), ['berth'], unit);
        assert.deepEqual(service.get('StateDirectoryMode'), ['0700'], unit);
      }
      assert.deepEqual(service.get('UMask'), ['0077'], unit);
    }
  });
});
