import { strict as assert } from 'node:assert';
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateToken } from '../../../agent/main.js';

/**
 * The agent (root) and berth-compute (the `berth` user) share the state folder: the token the
 * agent generates belongs to the folder's owner, mode 0600, so the driver can read it.
 */
describe('agent token file and the state folder owner', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is owned by the state folder owner, 0600, and stays the same token across restarts', () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-token-'));
    const root = process.getuid?.() === 0;
    // As root, a folder owned by another user (65534, nobody) stands for /var/lib/berth owned by berth.
    if (root) chownSync(dir, 65534, 65534);
    const token = loadOrCreateToken(dir);
    const st = statSync(join(dir, 'agent.token'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, root ? 65534 : process.getuid?.());
    if (root) {
      // A token an older version left owned by root is handed over at the next start.
      chownSync(join(dir, 'agent.token'), 0, 0);
      assert.equal(loadOrCreateToken(dir), token);
      assert.equal(statSync(join(dir, 'agent.token')).uid, 65534);
    } else {
      assert.equal(loadOrCreateToken(dir), token);
    }
  });
});
