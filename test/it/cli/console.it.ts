import { strict as assert } from 'node:assert';
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../support/fixtures.js';
import { collect, consoleGuestImage } from '../../support/console-guest.js';
import { REGISTRY, startStack, type Stack } from '../../../tools/lib/stack.js';
import { stackCliEnv } from '../../support/berth-cli.js';

const exec = promisify(execFile);

/** `berth server console` as a user runs it (from a pipe, as a script would), against a standalone node. */
describe('berth server console', function () {
  this.timeout(180_000);
  let stack: Stack;
  let env: NodeJS.ProcessEnv;
  let scratch: string;
  let uuid = '';

  const berth = async (...args: string[]) => (await exec(join(ROOT, 'tools', 'berth'), args, { env, timeout: 120_000 })).stdout;
  const consoleOf = (
    ref: string,
  ): { child: ChildProcessWithoutNullStreams; out: ReturnType<typeof collect>; exit: Promise<{ code: number | null; stderr: string }> } => {
    const child = spawn(join(ROOT, 'tools', 'berth'), ['server', 'console', ref], { env });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exit = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
    return { child, out: collect(child.stdout), exit };
  };
  const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
    Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms))]);

  before(async () => {
    const ref = await consoleGuestImage();
    stack = await startStack({ overrides: { serial_console: { port_range: '44330:44340', proxyclient_address: '127.0.0.1' } } });
    scratch = mkdtempSync(join(tmpdir(), 'berth-console-cli-'));
    env = stackCliEnv(stack, scratch);
    await berth('image', 'import', `docker://${ref}`);
    const created = JSON.parse(
      await berth(
        '-f',
        'json',
        'server',
        'create',
        '--image',
        ref.slice(REGISTRY.length + 1),
        '--flavor-vcpus',
        '1',
        '--flavor-ram',
        '64',
        '--name',
        'console-vm',
        '--wait',
      ),
    ) as { uuid: string; vm_state: string };
    uuid = created.uuid;
    stack.track(uuid);
    assert.equal(created.vm_state, 'active');
  });
  after(async () => {
    await stack?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("round trip: a line piped in runs in the guest's shell, its output comes out; EOF ends the session with status 0", async () => {
    const c = consoleOf('console-vm');
    c.child.stdin.write('echo "cli-$((20+1)) on $(hostname)"\n');
    await c.out.waitFor('cli-21 on console-vm', 60_000);
    c.child.stdin.end();
    const { code, stderr } = await within(c.exit, 30_000, 'exit after EOF');
    assert.equal(code, 0, stderr);
  });

  it('~. at the start of a line ends the session at once, and nothing after it reaches the guest', async () => {
    const c = consoleOf(uuid);
    c.child.stdin.write('echo before-$((1+1))\n');
    await c.out.waitFor('before-2', 60_000);
    c.child.stdin.write('~.\necho after-escape\n');
    const { code, stderr } = await within(c.exit, 30_000, 'exit after ~.');
    assert.equal(code, 0, stderr);
    c.child.stdin.destroy();
    assert.doesNotMatch(await berth('server', 'console-log', uuid), /after-escape/);
  });

  it('a second console while one is open fails with a message; the first keeps the console', async () => {
    const first = consoleOf(uuid);
    first.child.stdin.write('echo first-$((3+4))\n');
    await first.out.waitFor('first-7', 60_000);
    const second = consoleOf(uuid);
    const refused = await within(second.exit, 60_000, 'the second console refused');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /in use/);
    first.child.stdin.write('echo still-first\n');
    await first.out.waitFor('still-first', 30_000);
    first.child.stdin.end();
    assert.equal((await within(first.exit, 30_000, 'exit')).code, 0);
  });

  it('a stopped server has no console: a clear error, status 1', async () => {
    await berth('server', 'stop', uuid, '--wait');
    const c = consoleOf(uuid);
    const { code, stderr } = await within(c.exit, 60_000, 'refusal');
    assert.equal(code, 1);
    assert.match(stderr, /not ready/i);
  });
});
