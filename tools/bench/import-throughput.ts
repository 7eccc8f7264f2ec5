/**
 * Import benchmark (issue 5): a locally built image of ~400 MB in 8 incompressible layers, pushed
 * to the loopback registry, imported by Berth's importer (its own process, a fresh store each
 * round, with and without the layer scanner) against `skopeo copy docker://… oci:…` and against
 * `docker pull` (after `docker rmi`), alternating within each round. Then a second image sharing
 * 7 of the 8 layers (bytes the registry client receives vs. the new layer), and the importer's
 * peak RSS while importing a ~1 GB image. Last, the lower bound this machine sets: the CPU time of
 * what every import must compute and of a plain download of the same blobs, over its cores
 * (lib/import-floor.ts), against which Berth's time to active is judged (issue 20). With the test
 * cloud, also the way into Glance: Berth's import and `--to-glance` export against `skopeo copy …
 * docker-archive:` then `openstack image create --file`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KeystoneCredentials } from '../../common/keystone/index.js';
import { loadTestCloud, openstack } from '../lib/cloud.js';
import { projectRoot, SERVICE_ENV } from '../lib/paths.js';
import { compiledCommand, type NodeCommand } from './lib/compiled.js';
import { childrenCpuMs, downloadCpu, processCpuMs, type RequiredCpu } from './lib/import-floor.js';
import { buildAndPush, DOCKER_CLI, dockerRmi, fetchManifest, removeFromRegistry, timed, writeContext } from './lib/bench-images.js';
import { percentile, printResult, printTable } from './lib/report.js';
import { runBench } from './lib/run.js';

const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';
const LAYER_MB = Number(process.env.BENCH_LAYER_MB ?? 50);
const BIG_LAYER_MB = Number(process.env.BENCH_BIG_LAYER_MB ?? 128);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DEV_DIR = process.env.BERTH_DEV_DIR ?? '/var/lib/berth-dev';
const REGISTRY_STORAGE = join(DEV_DIR, 'registry');
const SKOPEO = '/usr/bin/skopeo';
// Issue 20: time to active against the floor measured in the same run, and against what a user
// runs today without Berth to get the image into Glance (skopeo to a docker-archive, then
// `openstack image create --file`).
const TARGETS = { vsFloor: 1.25, vsSkopeoGlance: 0.5, sharedFetch: 1.05, rssMb: 200 };
const run = promisify(execFile);
const ROOT = projectRoot();

interface ChildLine {
  ref?: string;
  ms?: number;
  cpuMs?: number;
  /** Until Glance's hashes were recorded. */
  hashesMs?: number;
  exportMs?: number;
  bytesFetched?: number;
  hwmKb?: number;
  idleHwmKb?: number;
  required?: RequiredCpu;
}

let command: Promise<NodeCommand> | undefined;
/** The importer child, compiled once per run, as installed services run (compiled.ts). */
const importerCommand = (): Promise<NodeCommand> => (command ??= compiledCommand('tools/bench/lib/import-child', 'berth-bench-import-dist'));

/** Runs the importer process over a fresh store; one result line per reference. */
async function importInChild(
  work: string,
  scan: boolean,
  refs: string[],
  costs = false,
  glance: GlanceTarget | null = null,
  hashFirst = false,
): Promise<ChildLine[]> {
  const state = mkdtempSync(join(work, 'store-'));
  try {
    const mode = `${scan ? 'scan' : 'noscan'}${costs ? '+costs' : ''}${glance ? '+glance' : ''}${hashFirst ? '+hashfirst' : ''}`;
    // The environment the image service runs in (berth-images.service, berth up).
    const { stdout } = await run(process.execPath, [...(await importerCommand()).args, state, REGISTRY, mode, ...refs], {
      cwd: ROOT,
      timeout: 15 * 60_000,
      maxBuffer: 1024 * 1024,
      env: { ...process.env, ...SERVICE_ENV, ...(glance ? { BENCH_GLANCE: JSON.stringify(glance) } : {}) },
    });
    return stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ChildLine);
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => percentile(xs, 50);

/** The test cloud's Glance (tools/dev/cloud.sh) and its admin's credentials; null when there is no cloud. */
interface GlanceTarget {
  url: string;
  keystone: KeystoneCredentials;
}
function glanceTarget(): GlanceTarget | null {
  try {
    const c = loadTestCloud();
    const keystone = {
      auth_url: c.keystoneUrl,
      username: c.admin.username,
      password: c.admin.password,
      project_name: c.admin.projectName,
      user_domain_name: 'Default',
      project_domain_name: 'Default',
      region_name: '',
    };
    return { url: c.glanceUrl, keystone };
  } catch {
    return null;
  }
}

/**
 * What a user runs today without Berth to get a registry image into Glance: skopeo writes a
 * docker-archive (the format Berth's docker images have in Glance), then `openstack image create
 * --file` uploads it (it returns once Glance has the data, hashed, and the image is active). The
 * image is deleted from Glance afterwards (not timed).
 */
async function skopeoToGlance(work: string, source: string, round: number): Promise<{ copyMs: number; uploadMs: number }> {
  const archive = join(work, `archive-${round}.tar`);
  try {
    const copyMs = await timed(() =>
      run(SKOPEO, ['copy', '-q', '--src-tls-verify=false', `docker://${source}`, `docker-archive:${archive}:${source}`], { timeout: 15 * 60_000 }),
    );
    let id = '';
    const uploadMs = await timed(async () => {
      const created = await openstack<{ id: string }>(
        ['image', 'create', '--file', archive, '--container-format', 'docker', '--disk-format', 'raw', '--private', `berth-bench-skopeo-${round}`],
        { json: true, timeoutMs: 15 * 60_000 },
      );
      id = created.id;
    });
    await openstack(['image', 'delete', id]).catch(() => undefined);
    return { copyMs, uploadMs };
  } finally {
    rmSync(archive, { force: true });
  }
}

/** The local registry's pid (tools/dev/services.sh writes it), to count its CPU; null if unknown. */
function registryPid(): number | null {
  try {
    const pid = Number(readFileSync(join(DEV_DIR, 'registry.pid'), 'utf8').trim());
    return Number.isInteger(pid) && Number.isFinite(processCpuMs(pid)) ? pid : null;
  } catch {
    return null;
  }
}

runBench('import-throughput', 60 * 60_000, async (b) => {
  const hasSkopeo = existsSync(SKOPEO);
  if (!hasSkopeo) process.stdout.write('NOTE: skopeo is not installed (apt-get install -y skopeo); only docker pull is compared.\n');
  const glance = hasSkopeo ? glanceTarget() : null;
  if (hasSkopeo && !glance) process.stdout.write('NOTE: no test cloud (tools/dev/cloud.sh start): the Glance pipelines are not measured.\n');
  const repo = `berth/bench-import-${randomBytes(4).toString('hex')}`;
  const ref = (tag: string) => `${REGISTRY}/${repo}:${tag}`;
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-import-'));
  b.cleanup(async () => rmSync(work, { recursive: true, force: true }));
  b.cleanup(() => removeFromRegistry(REGISTRY, repo, ['a', 'b', 'big'], existsSync(REGISTRY_STORAGE) ? REGISTRY_STORAGE : null));
  b.cleanup(async () => {
    for (const tag of ['a', 'b', 'big']) await dockerRmi(ref(tag));
  });

  b.log(`importer runs as: ${(await importerCommand()).runtime}`);
  b.log(`building and pushing ${repo}: a (8 × ${LAYER_MB} MB), b (7 layers of a + 1 new), big (8 × ${BIG_LAYER_MB} MB)`);
  const shared = await writeContext(
    join(work, 'a'),
    Array.from({ length: 8 }, () => ({ mb: LAYER_MB })),
  );
  await writeContext(join(work, 'b'), [...shared.slice(0, 7).map((p) => ({ shared: p })), { mb: LAYER_MB }]);
  await writeContext(
    join(work, 'big'),
    Array.from({ length: 8 }, () => ({ mb: BIG_LAYER_MB })),
  );
  for (const tag of ['a', 'b', 'big']) {
    await buildAndPush(join(work, tag), ref(tag));
    rmSync(join(work, tag), { recursive: true, force: true });
  }
  // dockerd must not hold the layers when docker pull is measured.
  for (const tag of ['a', 'b', 'big']) await dockerRmi(ref(tag));
  const a = await fetchManifest(REGISTRY, repo, 'a');
  const second = await fetchManifest(REGISTRY, repo, 'b');
  const imageMb = (a.manifest.config.size + a.manifest.layers.reduce((s, l) => s + l.size, 0)) / 1024 / 1024;

  const regPid = registryPid();
  const cpu: Record<string, number[]> = { sha256: [], md5: [], sha512: [], gunzip: [], curl: [], registry: [], skopeo: [] };
  const times: Record<string, number[]> = {
    berth: [],
    'berth, until hashes known': [],
    'berth, active only with hashes': [],
    'berth, no scanner': [],
    ...(hasSkopeo ? { 'skopeo copy': [] } : {}),
    ...(glance ? { 'berth --to-glance': [], 'skopeo docker-archive + openstack image create': [], '  of which skopeo': [], '  of which openstack': [] } : {}),
    'docker pull': [],
  };
  const loads: number[] = [];
  const berthCpu: number[] = [];
  // Page cache: one untimed import first, so every contender reads the registry's files warm.
  await importInChild(work, true, [`docker://${ref('a')}`]);
  for (let round = 1; round <= ROUNDS; round++) {
    b.log(`round ${round}/${ROUNDS}`);
    loads.push(Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]));
    const regBefore = regPid === null ? NaN : processCpuMs(regPid);
    const berth = (await importInChild(work, true, [`docker://${ref('a')}`], true))[1]!;
    times.berth!.push(berth.ms!);
    times['berth, until hashes known']!.push(berth.hashesMs!);
    // What the import cost in CPU, itself and the registry serving it (the latter read after the
    // child's floor measurements, which read no blob from the registry).
    berthCpu.push(berth.cpuMs! + (regPid === null ? 0 : processCpuMs(regPid) - regBefore));
    for (const [k, v] of Object.entries(berth.required!)) cpu[k]!.push(v);
    times['berth, no scanner']!.push((await importInChild(work, false, [`docker://${ref('a')}`]))[1]!.ms!);
    times['berth, active only with hashes']!.push((await importInChild(work, true, [`docker://${ref('a')}`], false, null, true))[1]!.ms!);
    if (hasSkopeo) {
      const dest = join(work, `oci-${round}`);
      const skopeoBefore = childrenCpuMs();
      times['skopeo copy']!.push(
        await timed(() => run(SKOPEO, ['copy', '-q', '--src-tls-verify=false', `docker://${ref('a')}`, `oci:${dest}:a`], { timeout: 15 * 60_000 })),
      );
      cpu.skopeo!.push(childrenCpuMs() - skopeoBefore);
      rmSync(dest, { recursive: true, force: true });
    }
    if (glance) {
      const exported = (await importInChild(work, true, [`docker://${ref('a')}`], false, glance))[1]!;
      times['berth --to-glance']!.push(exported.ms! + exported.exportMs!);
      const user = await skopeoToGlance(work, ref('a'), round);
      times['skopeo docker-archive + openstack image create']!.push(user.copyMs + user.uploadMs);
      times['  of which skopeo']!.push(user.copyMs);
      times['  of which openstack']!.push(user.uploadMs);
    }
    const downloads = join(work, `curl-${round}`);
    mkdirSync(downloads);
    const fetched = await downloadCpu(REGISTRY, repo, [a.manifest.config.digest, ...a.manifest.layers.map((l) => l.digest)], downloads, regPid);
    rmSync(downloads, { recursive: true, force: true });
    cpu.curl!.push(fetched.curl);
    cpu.registry!.push(fetched.registry);
    times['docker pull']!.push(await timed(() => run(DOCKER_CLI, ['pull', '-q', ref('a')], { timeout: 15 * 60_000 })));
    await dockerRmi(ref('a'));
  }

  b.log('shared layers: a, then b into the same store');
  const sharedRun = await importInChild(work, true, [`docker://${ref('a')}`, `docker://${ref('b')}`]);
  const newLayer = second.manifest.layers[7]!.size;
  const fetchedForB = sharedRun[2]!.bytesFetched!;

  b.log('memory: the ~1 GB image');
  const bigRun = await importInChild(work, true, [`docker://${ref('big')}`]);
  const rssMb = bigRun[1]!.hwmKb! / 1024;

  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  printTable(
    `import of ${imageMb.toFixed(0)} MB in 8 layers, ${ROUNDS} rounds (median)`,
    Object.entries(times).map(([who, v]) => ({
      who,
      median_s: median(v) / 1000,
      min_s: Math.min(...v) / 1000,
      max_s: Math.max(...v) / 1000,
      'MB/s': imageMb / (median(v) / 1000),
    })),
  );
  printTable('second image sharing 7 of 8 layers, and memory', [
    { figure: 'bytes fetched for the second image', value: fetchedForB },
    { figure: 'its new layer (compressed)', value: newLayer },
    { figure: 'importer idle peak RSS, MB', value: bigRun[0]!.idleHwmKb! / 1024 },
    { figure: `importer peak RSS importing ${(bigRun[1]!.bytesFetched! / 1024 / 1024).toFixed(0)} MB, MB`, value: rssMb },
  ]);
  const scannerCost = med.berth! / med['berth, no scanner']!;
  process.stdout.write(`\nlayer scanner: import time with/without = ${scannerCost.toFixed(2)}×\n`);
  // The lower bound: on `cores` cores, no import can take less wall time than the CPU time it
  // cannot avoid (plus what the registry spends serving it) spread perfectly over all of them.
  const cores = availableParallelism();
  const must = (
    [
      ['sha256', 'sha256 of every blob (digest check)'],
      ['md5', 'md5 of the blobs (Glance checksum)'],
      ['sha512', 'sha512 of the blobs (os_hash_value)'],
      ['gunzip', 'gunzip of the layers (scanner)'],
      ['curl', 'curl downloading the blobs to files'],
      ['registry', 'registry serving them'],
    ] as const
  ).map(([key, work]) => ({ key, work, ms: median(cpu[key]!) }));
  // The registry's CPU is unknown (NaN) when its pid is: counted as none, so the bound stays one.
  const floor = must.reduce((sum, m) => sum + (Number.isFinite(m.ms) ? m.ms : 0), 0) / cores;
  printTable(`CPU every import of this image must spend here (s, median of ${ROUNDS})`, [
    ...must.map((m) => ({ work: m.work, cpu_s: m.ms / 1000 })),
    { work: `sum over ${cores} cores: lower bound`, cpu_s: floor / 1000 },
    ...(hasSkopeo ? [{ work: 'for comparison: skopeo copy, its own CPU', cpu_s: median(cpu.skopeo!) / 1000 }] : []),
  ]);
  // Per round, Berth against the floor measured right after it, so that both see the same load.
  const floorOf = (r: number) => must.reduce((sum, m) => sum + (Number.isFinite(cpu[m.key]![r]!) ? cpu[m.key]![r]! : 0), 0) / cores;
  const vsFloor = median(times.berth!.map((t, r) => t / floorOf(r)));
  process.stdout.write(
    `\nlower bound on this machine: ${(floor / 1000).toFixed(2)} s; Berth's time to active ${vsFloor.toFixed(2)}× it (median of the rounds' ratios; ` +
      `${(med.berth! / floor).toFixed(2)}× at the medians)` +
      (hasSkopeo
        ? `; the bound is ${(floor / med['skopeo copy']!).toFixed(2)}× skopeo's time, ${(floor / med['docker pull']!).toFixed(2)}× docker pull's`
        : '') +
      `\nload average (1 min) at each round's start: ${loads.map((l) => l.toFixed(2)).join(', ')}\n`,
  );
  // On a loaded machine wall times stretch and the floor (CPU time) much less: the CPU Berth's
  // import and the registry spent, over the floor's sum, is the time ratio it would reach on an
  // otherwise idle machine with both cores perfectly overlapped. Shown, not judged.
  const cpuVsFloor = median(berthCpu.map((c, r) => c / cores / floorOf(r)));
  process.stdout.write(
    `CPU: Berth's import and the registry spent ${(median(berthCpu) / 1000).toFixed(2)} s (median), ` +
      `${cpuVsFloor.toFixed(2)}× the floor's CPU: the best time ratio these ${cores} cores allow it\n`,
  );
  process.stdout.write(
    `Glance's hashes known ${((med['berth, until hashes known']! - med.berth!) / 1000).toFixed(2)} s after active (median); ` +
      `active only with them (active_before_hashes = false): ${(med['berth, active only with hashes']! / med.berth!).toFixed(2)}× the time to active\n`,
  );
  const user = med['skopeo docker-archive + openstack image create'];
  if (user !== undefined)
    process.stdout.write(
      `into Glance: berth --to-glance (which waits for the hashes) ${(med['berth --to-glance']! / user).toFixed(2)}× the skopeo + openstack pipeline\n`,
    );
  return printResult('import-throughput', [
    { metric: 'time_vs_floor', value: vsFloor, target: TARGETS.vsFloor },
    ...(user !== undefined ? [{ metric: 'time_vs_skopeo_glance', value: med.berth! / user, target: TARGETS.vsSkopeoGlance }] : []),
    { metric: 'shared_fetch_vs_new_layer', value: fetchedForB / newLayer, target: TARGETS.sharedFetch },
    { metric: 'rss_mb', value: rssMb, target: TARGETS.rssMb },
  ]);
});
