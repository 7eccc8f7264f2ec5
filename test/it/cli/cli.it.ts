import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containersOf, REGISTRY, startStack, type Stack } from '../../../tools/lib/stack.js';
import { type CliResult, jsonOf, runBerth, stackCliEnv } from '../../support/berth-cli.js';

type Result = CliResult;

/** The berth CLI as a user runs it, against a node started by the test. */
describe('berth CLI against a running node', function () {
  this.timeout(120_000);
  let stack: Stack;
  let env: NodeJS.ProcessEnv;
  let scratch: string;
  let uuid = '';
  let waitKeys: string[] = [];
  let imageId = '';

  const berth = (...args: string[]): Promise<Result> => runBerth(args, env, { timeoutMs: 90_000 });
  const json = jsonOf;

  before(async () => {
    stack = await startStack();
    scratch = mkdtempSync(join(tmpdir(), 'berth-cli-'));
    env = stackCliEnv(stack, scratch, { BERTH_CONFIG: '/nonexistent-so-defaults-apply', BERTH__DEFAULT__FLAVORS: 'm1.cli:1:96:1, m1.other:2:128' });
    env.BERTH_CONFIG = '';
  });
  after(async () => {
    await stack?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('image import and image list/show', async () => {
    const img = json<{ id: string; status: string; docker_digest: string }>(
      await berth('-f', 'json', 'image', 'import', `docker://${REGISTRY}/berth/busybox:latest`),
    );
    assert.equal(img.status, 'active');
    imageId = img.id;
    const list = json<{ id: string }[]>(await berth('-f', 'json', 'image', 'list'));
    assert.ok(list.some((i) => i.id === img.id));
    const shown = json<{ docker_digest: string }>(await berth('-f', 'json', 'image', 'show', img.id));
    assert.equal(shown.docker_digest, img.docker_digest);
    const table = await berth('image', 'list');
    assert.match(table.stdout, /\| Id +\| Name/);
  });

  it('server create --wait boots a real container; list, show, console-log, host show', async () => {
    const created = json<{ uuid: string; vm_state: string; power_state: string }>(
      await berth('-f', 'json', 'server', 'create', '--image', 'berth/busybox:latest', '--flavor', 'm1.cli', '--name', 'cli-vm', '--wait'),
    );
    uuid = created.uuid;
    stack.track(uuid);
    waitKeys = Object.keys(created).sort();
    assert.deepEqual([created.vm_state, created.power_state], ['active', 'running']);
    assert.equal((await containersOf(uuid))[0]?.State, 'running');
    const list = json<{ uuid: string }[]>(await berth('-f', 'json', 'server', 'list'));
    assert.deepEqual(
      list.map((s) => s.uuid),
      [uuid],
    );
    const shown = json<{ actions: { action: string }[] }>(await berth('-f', 'json', 'server', 'show', uuid));
    assert.equal(shown.actions[0]?.action, 'create');
    let log = '';
    for (let i = 0; i < 20 && !log.includes('booted'); i++) {
      log = (await berth('server', 'console-log', uuid, '--lines', '5')).stdout;
      if (!log.includes('booted')) await new Promise((r) => setTimeout(r, 250));
    }
    assert.match(log, /berth-guest: booted cli-vm/);
    const host = json<{ instances: number; resources: { MEMORY_MB: { used: number } } }>(await berth('-f', 'json', 'host', 'show'));
    // The table draws usage against capacity as a bar per resource.
    const drawn = await berth('host', 'show');
    assert.equal(drawn.code, 0, drawn.stderr);
    assert.match(drawn.stdout, /MEMORY_MB .*\[#*\.*\] +\d+%/);
    assert.equal(host.instances, 1);
    assert.equal(host.resources.MEMORY_MB.used, 96);
  });

  it('server stop/start/pause/unpause/reboot --wait change the state', async () => {
    assert.equal(json<{ vm_state: string }>(await berth('-f', 'json', 'server', 'stop', uuid, '--wait')).vm_state, 'stopped');
    assert.equal(json<{ vm_state: string }>(await berth('-f', 'json', 'server', 'start', uuid, '--wait')).vm_state, 'active');
    assert.equal(json<{ vm_state: string }>(await berth('-f', 'json', 'server', 'pause', uuid, '--wait')).vm_state, 'paused');
    assert.equal(json<{ vm_state: string }>(await berth('-f', 'json', 'server', 'unpause', uuid, '--wait')).vm_state, 'active');
    assert.equal(json<{ vm_state: string }>(await berth('-f', 'json', 'server', 'reboot', uuid, '--hard', '--wait')).vm_state, 'active');
  });

  it('server resize --wait to VERIFY_RESIZE, resize-revert and resize-confirm --wait (the container stays the same); soft-delete and restore --wait', async () => {
    type Shown = { status: string; vm_state: string; flavor: { memory_mb: number }; migration: { status: string } | null };
    const before = (await containersOf(uuid))[0]?.Id;
    const resize = () => berth('-f', 'json', 'server', 'resize', uuid, '--flavor', 'm1.other', '--wait');
    let shown = json<Shown>(await resize());
    assert.deepEqual([shown.status, shown.flavor.memory_mb, shown.migration?.status], ['VERIFY_RESIZE', 128, 'finished']);
    shown = json<Shown>(await berth('-f', 'json', 'server', 'resize-revert', uuid, '--wait'));
    assert.deepEqual([shown.status, shown.flavor.memory_mb, shown.migration?.status], ['ACTIVE', 96, 'reverted']);
    const again = await berth('server', 'resize-confirm', uuid);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no finished resize/);
    json<Shown>(await resize());
    shown = json<Shown>(await berth('-f', 'json', 'server', 'resize-confirm', uuid, '--wait'));
    assert.deepEqual([shown.status, shown.flavor.memory_mb, shown.migration?.status], ['ACTIVE', 128, 'confirmed']);
    assert.equal((await containersOf(uuid))[0]?.Id, before);
    assert.equal((await containersOf(uuid))[0]?.State, 'running');
    shown = json<Shown>(await berth('-f', 'json', 'server', 'soft-delete', uuid, '--wait'));
    assert.equal(shown.status, 'SOFT_DELETED');
    assert.equal((await containersOf(uuid))[0]?.State, 'exited');
    shown = json<Shown>(await berth('-f', 'json', 'server', 'restore', uuid, '--wait'));
    assert.equal(shown.status, 'ACTIVE');
    assert.equal((await containersOf(uuid))[0]?.State, 'running');
  });

  it('server snapshot --wait makes an active image that boots; rebuild --wait moves the instance onto it', async () => {
    const snap = json<{ id: string; status: string; docker_image_id: string; instance_uuid: string }>(
      await berth('-f', 'json', 'server', 'snapshot', uuid, '--name', 'cli-snap', '--wait'),
    );
    assert.equal(snap.status, 'active');
    assert.equal(snap.instance_uuid, uuid);
    assert.match(snap.docker_image_id, /^sha256:[0-9a-f]{64}$/);
    assert.equal(json<{ vm_state: string }>(await berth('-f', 'json', 'server', 'show', uuid)).vm_state, 'active');
    const rebuilt = json<{ vm_state: string; image: string }>(await berth('-f', 'json', 'server', 'rebuild', uuid, '--image', snap.id, '--wait'));
    assert.deepEqual([rebuilt.vm_state, rebuilt.image], ['active', snap.id]);
    assert.equal((await containersOf(uuid))[0]?.State, 'running');
  });

  it('a state the action does not allow gives one clear line and exit code 1', async () => {
    const r = await berth('server', 'unpause', uuid, '--wait');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot unpause instance .*: it is active/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  it('server delete --wait removes the container', async () => {
    const r = await berth('server', 'delete', uuid, '--wait');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await containersOf(uuid), []);
    assert.deepEqual(json<unknown[]>(await berth('-f', 'json', 'server', 'list')), []);
  });

  it('bad flags and bad values: exit 2 with one line', async () => {
    for (const args of [
      ['server', 'create', '--image', 'x', '--flavor-vcpus', 'zero', '--flavor-ram', '64'],
      ['server', 'create', '--image', 'x'],
      ['server', 'create', '--image', 'x', '--flavor', 'm1.clj'],
      ['server', 'create', '--image', 'x', '--flavor', 'm1.cli', '--flavor-ram', '64'],
      ['server', 'show', 'not-a-uuid'],
      ['server', 'show'],
      ['server', 'frobnicate'],
      ['--format', 'xml', 'server', 'list'],
    ]) {
      const r = await berth(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stderr.trim().length > 0);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    const unknown = await berth('server', 'create', '--image', 'x', '--flavor', 'm1.clj');
    assert.match(unknown.stderr, /unknown flavor "m1.clj" \(did you mean m1.cli\?\); \[DEFAULT\] flavors names m1.cli, m1.other/);
  });

  it('an instance or image named by name; an unknown name is bad usage, one line', async () => {
    const r = await berth('server', 'show', 'not-a-uuid');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /no instance with a name or id of "not-a-uuid"/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    const img = json<{ id: string; name: string }>(await berth('-f', 'json', 'image', 'show', imageId));
    assert.equal(json<{ id: string }>(await berth('-f', 'json', 'image', 'show', img.name)).id, img.id);
    assert.equal((await berth('image', 'show', 'no-such-image')).code, 2);
  });

  it('server create gives the same keys with or without --wait; names work for show, actions and delete', async () => {
    const created = json<Record<string, unknown>>(
      await berth('-f', 'json', 'server', 'create', '--image', 'berth/busybox:latest', '--flavor-vcpus', '1', '--flavor-ram', '64', '--name', 'cli-nowait'),
    );
    const id = created.id as string;
    stack.track(id);
    assert.deepEqual(Object.keys(created).sort(), waitKeys);
    assert.deepEqual([created.status, created.uuid, created.name], ['BUILD', id, 'cli-nowait']);
    let shown: Result = { code: -1, stdout: '', stderr: '' };
    for (let i = 0; i < 30; i++) {
      shown = await berth('-f', 'value', '-c', 'status', 'server', 'show', 'cli-nowait');
      if (shown.code === 0 && shown.stdout.trim() !== 'BUILD') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(shown.stdout.trim(), 'ACTIVE', `${shown.stderr}\n${(await berth('server', 'show', id)).stdout}`);
    assert.deepEqual(Object.keys(json<Record<string, unknown>>(await berth('-f', 'json', 'server', 'show', id))).sort(), waitKeys);
    assert.equal((await berth('-f', 'value', '-c', 'vm_state', 'server', 'stop', 'cli-nowait', '--wait')).stdout, 'stopped\n');
    const csv = (await berth('-f', 'csv', 'server', 'list', '--long')).stdout.split('\n');
    assert.match(
      csv[0]!,
      /^"Uuid","Name","Vm State","Task State","Power State","Ip Address","Image","Status","Project Id","Flavor Name","Created At","Launched At"$/,
    );
    assert.match(csv[1]!, new RegExp(`^"${id}","cli-nowait","stopped",.*"SHUTOFF","berth"`));
    const yaml = (await berth('-f', 'yaml', '-c', 'uuid', 'server', 'list')).stdout;
    assert.equal(yaml, `- uuid: ${id}\n`);
    // Several at once: each reported; one unknown name makes the exit code 1, the others are still done.
    const r = await berth('server', 'delete', 'cli-nowait', 'no-such-server', '--wait');
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, `deleted ${id}\n`);
    assert.match(r.stderr, /^berth: no-such-server: no instance with a name or id of "no-such-server"/m);
    assert.deepEqual(await containersOf(id), []);
  });

  it('a --wait that runs out of time exits 1 (not 2) and says what it last saw', async () => {
    const saved = env;
    // A node nobody serves: the build request goes nowhere, so nothing ever finishes.
    env = { ...saved, BERTH__DEFAULT__RPC_RESPONSE_TIMEOUT: '2' };
    const r = await berth(
      '--host',
      'nosuch-node',
      'server',
      'create',
      '--image',
      imageId,
      '--flavor-vcpus',
      '1',
      '--flavor-ram',
      '64',
      '--wait',
      '--timeout',
      '2',
    );
    env = saved;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^berth: timed out after 2s waiting for instance\.create\.end of [0-9a-f-]{36}; no notification seen$/m);
  });

  it('a broker refusing the password says so at once (exit 1), not after the connect time', async () => {
    const saved = env;
    env = { ...saved, BERTH__DEFAULT__TRANSPORT_URL: 'rabbit://guest:wrong-password@127.0.0.1:5672/' };
    const t0 = Date.now();
    const r = await berth('server', 'list');
    env = saved;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /the broker at rabbit:\/\/127\.0\.0\.1:5672\/ refused the user name or password \(ACCESS_REFUSED\)/);
    assert.doesNotMatch(r.stderr, /wrong-password/);
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  });

  it('conf check names every problem (exit 2); conf sample prints every section', async () => {
    const bad = join(scratch, 'bad.conf');
    writeFileSync(bad, '[DEFAULT]\nmax_concurrent_builds = lots\nbogus = 1\n[nosuch]\nx = 1\n');
    const r = await berth('conf', 'check', bad);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\[DEFAULT\] max_concurrent_builds: expected an integer/);
    assert.match(r.stderr, /\[DEFAULT\] bogus: unknown option/);
    assert.match(r.stderr, /\[nosuch\] x: unknown section/);
    const good = join(scratch, 'good.conf');
    writeFileSync(good, '[DEFAULT]\nmax_concurrent_builds = 4\n');
    assert.equal((await berth('conf', 'check', good)).code, 0);
    const sample = await berth('conf', 'sample');
    for (const section of ['[DEFAULT]', '[database]', '[agent]', '[oslo_messaging_rabbit]', '[compute]']) assert.ok(sample.stdout.includes(section), section);
  });

  it('an unreachable broker or image service: one line, exit 3', async () => {
    const saved = env;
    env = { ...saved, BERTH__DEFAULT__TRANSPORT_URL: 'rabbit://guest:guest@127.0.0.1:9/' };
    const r = await berth('server', 'list');
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /broker/);
    env = { ...saved, BERTH__GLANCE__API_URL: 'http://127.0.0.1:9' };
    const r2 = await berth('image', 'list');
    assert.equal(r2.code, 3, r2.stderr);
    assert.doesNotMatch(r2.stderr, /\n\s+at /);
    env = saved;
  });

  it('status probes each service: up when it answers, exit 3 when one does not', async () => {
    const r = await berth('-f', 'json', 'status');
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(
      (JSON.parse(r.stdout) as { status: string }[]).map((s) => s.status),
      ['up', 'up', 'up'],
    );
    const saved = env;
    env = { ...saved, BERTH__AGENT__URL: 'http://127.0.0.1:9' };
    const down = await berth('status');
    env = saved;
    assert.equal(down.code, 3);
    assert.match(down.stdout, /berth-agent +\| - +\| down/);
  });
});
