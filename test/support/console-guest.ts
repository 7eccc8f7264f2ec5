import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Socket } from 'node:net';
import { waitUntil } from './waits.js';

const run = promisify(execFile);
const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';

/**
 * The test image with a guest that reads its console, as a getty would: its init runs a shell on
 * the container's stdin (kept from before the shell went to the background, where a
 * non-interactive sh gives a job /dev/null), and answers SIGTERM at once. Built from the local
 * test image (no internet) and pushed to the local registry, as `REGISTRY/berth/console-guest:latest`.
 */
export async function consoleGuestImage(): Promise<string> {
  const ref = `${REGISTRY}/berth/console-guest:latest`;
  const ctx = mkdtempSync(join(tmpdir(), 'berth-console-guest-'));
  try {
    writeFileSync(
      join(ctx, 'init'),
      [
        '#!/bin/sh',
        'echo "berth-guest: console ready"',
        "trap 'exit 0' TERM INT",
        'exec 3<&0',
        'sh <&3 3<&- &',
        'exec 3<&-',
        'while :; do sleep 1 & wait $!; done',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${REGISTRY}/berth/busybox:latest\nCOPY init /sbin/console-init\nCMD ["/sbin/console-init"]\n`);
    await run('/usr/bin/docker', ['build', '-q', '-t', ref, ctx], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
    await run('/usr/bin/docker', ['push', '-q', ref]);
    return ref;
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

/** Collects what a console sends, and waits (bounded) for a text to appear in it. */
export function collect(socket: Socket | NodeJS.ReadableStream): { text: () => string; waitFor: (s: string, ms?: number) => Promise<void> } {
  let got = '';
  socket.on('data', (c: Buffer | string) => {
    got += c.toString();
  });
  // connectConsole hands the socket over paused.
  (socket as Socket).resume();
  return {
    text: () => got,
    waitFor: (s, ms = 20_000) =>
      waitUntil(() => got.includes(s), ms, `${JSON.stringify(s)} on the console (got ${JSON.stringify(got.slice(-200))})`).then(() => undefined),
  };
}
