/**
 * The layer scanner must see the entries dockerd will unpack, or a layer could hide one from it.
 * Each archive here is one a lenient or a different tar reader gets wrong; the real dockerd
 * imports it as a layer (`docker import`), the container's file system is exported, and what it
 * holds is compared with what the tar walker reported.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { extract as tarExtract } from 'tar-stream';
import { readBody, requestRaw } from '../../../common/http-client.js';
import { TarWalker, type TarEntry } from '../../../glance-bridge/import/tar-walk.js';
import { base256, END, file, header, pax } from '../../support/tar-craft.js';
import { DOCKER, dockerRemoveImage } from './helpers.js';

const REPO = 'berth-test/tar-walk';
// What dockerd adds to every container's file system, whatever the image holds.
const ADDED = /^(\.dockerenv|dev(\/.*)?|proc|sys|etc|etc\/(hosts|hostname|resolv\.conf|mtab))$/;

async function docker(method: string, path: string, body?: Buffer | object): Promise<{ status: number; bytes: Buffer }> {
  const raw = Buffer.isBuffer(body);
  const res = await requestRaw(
    DOCKER,
    {
      method,
      path: `/v1.41${path}`,
      timeoutMs: 60_000,
      ...(body === undefined
        ? {}
        : {
            stream: Readable.from([raw ? body : Buffer.from(JSON.stringify(body))]),
            headers: { 'content-type': raw ? 'application/x-tar' : 'application/json' },
          }),
    },
    'docker',
  );
  return { status: res.status, bytes: await readBody(res.body) };
}

/** Name → link target (or '' for anything but a symlink) of every entry of a tar stream. */
async function listTar(bytes: Buffer): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const ex = tarExtract();
  const done = (async () => {
    for await (const entry of ex) {
      out.set(entry.header.name.replace(/\/$/, ''), entry.header.type === 'symlink' ? (entry.header.linkname ?? '') : '');
      entry.resume();
    }
  })();
  ex.end(bytes);
  await done;
  return out;
}

/** What dockerd unpacks from `layer`: the container file system of an image imported from it. */
async function unpackedByDockerd(layer: Buffer, tag: string): Promise<Map<string, string>> {
  const imported = await docker('POST', `/images/create?fromSrc=-&repo=${encodeURIComponent(REPO)}&tag=${tag}`, layer);
  assert.equal(imported.status, 200, imported.bytes.toString());
  const image = `${REPO}:${tag}`;
  try {
    const created = await docker('POST', '/containers/create', { Image: image, Cmd: ['none'], Labels: { 'org.openstack.berth.test': 'tar-walk' } });
    assert.equal(created.status, 201, created.bytes.toString());
    const id = (JSON.parse(created.bytes.toString()) as { Id: string }).Id;
    try {
      const exported = await docker('GET', `/containers/${id}/export`);
      assert.equal(exported.status, 200);
      return await listTar(exported.bytes);
    } finally {
      await docker('DELETE', `/containers/${id}?force=1`);
    }
  } finally {
    await dockerRemoveImage(image);
  }
}

function walked(layer: Buffer): Map<string, string> {
  const entries: TarEntry[] = [];
  const walker = new TarWalker((e) => entries.push(e));
  walker.write(layer);
  walker.end();
  // A PAX global header is an entry to Go's reader, but nothing dockerd writes with its overlay2 import.
  return new Map(entries.filter((e) => e.type !== 'pax-global').map((e) => [e.name.replace(/\/$/, ''), e.type === 'symlink' ? e.linkname : '']));
}

const CASES: Array<[string, Buffer]> = [
  [
    'a directory claiming a body, hiding a file',
    Buffer.concat([header({ name: 'innocent', type: '5', size: 512 }), file({ name: 'hidden' }, Buffer.from('x')), END]),
  ],
  [
    'a symlink claiming a body, hiding a file',
    Buffer.concat([header({ name: 'link', type: '2', linkname: 'target', size: 1024 }), file({ name: 'hidden2' }), Buffer.alloc(512), END]),
  ],
  ["a '\\0' entry with a trailing slash and a size", Buffer.concat([header({ name: 'olddir/', type: '\0', size: 512 }), file({ name: 'after-olddir' }), END])],
  [
    'a PAX size and path over the header',
    Buffer.concat([pax({ path: 'from-pax', size: '1024' }), header({ name: 'short', size: 1 }), Buffer.alloc(1024), file({ name: 'after' }), END]),
  ],
  [
    'two PAX headers and a global one',
    Buffer.concat([
      pax({ path: 'first' }),
      pax({ linkpath: 'second-link' }),
      file({ name: 'plain', type: '2', linkname: 'x' }),
      pax({ path: 'global-name' }, 'g'),
      file({ name: 'not-renamed' }),
      END,
    ]),
  ],
  [
    'a GNU long name over a PAX path, and a USTAR prefix',
    Buffer.concat([
      file({ name: '././@LongLink', type: 'L' }, Buffer.from('gnu-long-name\0')),
      pax({ path: 'pax-name' }),
      file({ name: 'short' }),
      file({ name: 'name', prefix: 'pre' }),
      END,
    ]),
  ],
  ['a base-256 size', Buffer.concat([header({ name: 'big', sizeField: base256(1024) }), Buffer.alloc(1024), file({ name: 'after-big' }), END])],
];

describe('glance-bridge tar walker against dockerd (real Engine)', function () {
  this.timeout(120_000);

  for (const [what, layer] of CASES) {
    it(`sees what dockerd unpacks: ${what}`, async () => {
      const mine = walked(layer);
      const theirs = await unpackedByDockerd(
        layer,
        what
          .replace(/[^a-z0-9]+/gi, '-')
          .toLowerCase()
          .slice(0, 60),
      );
      // dockerd creates the parents of nested names itself; the walker reports entries only.
      const parents = new Set(
        [...mine.keys()].flatMap((n) =>
          n
            .split('/')
            .slice(0, -1)
            .map((_, i, parts) => parts.slice(0, i + 1).join('/')),
        ),
      );
      const unpacked = new Map([...theirs].filter(([name]) => !ADDED.test(name) && !parents.has(name)));
      assert.deepEqual(new Map([...mine].sort()), new Map([...unpacked].sort()));
    });
  }
});
