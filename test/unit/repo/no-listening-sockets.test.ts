import { strict as assert } from 'node:assert';
import net from 'node:net';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from '../../support/fixtures.js';

/**
 * Unit tests open no listening sockets: an app is tested through its request listener
 * (`app.callback()`) with test/support/in-process.ts. Loaded with the other unit files, this
 * file wraps `net.Server.prototype.listen` (http, https and net servers all come through it),
 * records which test file asked for a port, and fails the run in a root `after` hook when a
 * file not listed below did.
 *
 * HTTP clients under test are given the in-process connection pool (`inProcessAgent`; pkgcloud's
 * Keystone session goes through Node's global agent, `routeGlobalAgentInProcess`). Tests whose
 * subject is a real socket, the registry importer's and web-download's destination guards (which
 * decide by the address a connection really goes to: 127.0.0.1 allowed, 127.0.0.2 not, names
 * resolved at connect time, `localhost`, `::ffff:127.0.0.1`, ports, TLS), are integration tests
 * (test/it/glance-bridge/registry-destinations.it.ts, web-download.it.ts). The list below must
 * stay empty unless a unit test has no other way.
 */
export const ALLOWED: Record<string, string> = {};

const SELF = 'test/unit/repo/no-listening-sockets.test.ts';

/** The innermost unit test file named in a stack, relative to the repository root. */
export function testFileOf(stack: string): string | undefined {
  for (const m of stack.matchAll(/(?:file:\/\/)?(\/[^\s():]+\.test\.ts)/g)) {
    const path = m[1]!.startsWith('/') && m[0].startsWith('file://') ? fileURLToPath(`file://${m[1]}`) : m[1]!;
    const file = relative(ROOT, path);
    if (file.startsWith('test/unit/') && file !== SELF) return file;
  }
  return undefined;
}

const listened = new Map<string, number>();
const ran = new Set<string>();
let current: string | undefined;
const original = net.Server.prototype.listen;

net.Server.prototype.listen = function listen(this: net.Server, ...args: unknown[]) {
  const stack = new Error().stack ?? '';
  // Integration tests (run in the same mocha process by npm test) listen by design; their
  // `before` hooks run before any beforeEach of theirs, while `current` still names the last
  // unit file.
  if (!/[/\\]test[/\\]it[/\\]/.test(stack)) {
    const file = testFileOf(stack) ?? current;
    if (file?.startsWith('test/unit/')) listened.set(file, (listened.get(file) ?? 0) + 1);
  }
  return (original as (...a: unknown[]) => net.Server).apply(this, args);
} as typeof net.Server.prototype.listen;

// Root hooks: outside any describe, so they apply to every unit test file.
beforeEach(function noteTheTestFile() {
  current = this.currentTest?.file ? relative(ROOT, this.currentTest.file) : undefined;
  if (current?.startsWith('test/unit/')) ran.add(current);
});

after(function unitTestsOpenNoListeningSocketsOutsideTheAllowedList() {
  net.Server.prototype.listen = original;
  const offenders = [...listened.keys()].filter((f) => !(f in ALLOWED)).map((f) => `${f} (${listened.get(f)} listen calls)`);
  assert.deepEqual(
    offenders,
    [],
    'these unit test files open listening sockets: test the app through app.callback() with test/support/in-process.ts, or list the file with the reason a socket is needed',
  );
  // A file that ran and no longer listens leaves the list.
  const stale = Object.keys(ALLOWED).filter((f) => ran.has(f) && !listened.has(f));
  assert.deepEqual(stale, [], 'these files no longer open sockets: remove them from ALLOWED');
});

describe('unit tests open no listening sockets', () => {
  it('names the unit test file that asked for a port, whether the stack gives paths or file URLs', () => {
    const inner = `${ROOT}/test/unit/glance-bridge/x.test.ts`;
    assert.equal(
      testFileOf(
        `Error\n    at listen (${ROOT}/${SELF}:1:1)\n    at serveOnLoopback (${ROOT}/test/support/loopback.ts:7:3)\n    at Context.<anonymous> (${inner}:3:9)`,
      ),
      'test/unit/glance-bridge/x.test.ts',
    );
    assert.equal(testFileOf(`Error\n    at async Context.<anonymous> (file://${inner}:3:9)`), 'test/unit/glance-bridge/x.test.ts');
    assert.equal(testFileOf(`Error\n    at Server.listen (node:net:1:1)`), undefined);
  });

  it('lists each allowed file with its reason, and only files that exist', async () => {
    const { existsSync } = await import('node:fs');
    for (const [file, why] of Object.entries(ALLOWED)) {
      assert.ok(existsSync(`${ROOT}/${file}`), file);
      assert.ok(why.length > 10, file);
    }
  });
});
