import assert from 'node:assert/strict';
import sinon from 'sinon';
import { parse as parseYaml } from 'yaml';
import { printList, printObject, selectColumns, type Format } from '../../../tools/cli/output.js';
import { UsageError } from '../../../tools/cli/usage-error.js';

/** What a print function writes to stdout. */
function captured(fn: () => void): string {
  const chunks: string[] = [];
  const stub = sinon.stub(process.stdout, 'write').callsFake((c: string | Uint8Array) => {
    chunks.push(String(c));
    return true;
  });
  try {
    fn();
  } finally {
    stub.restore();
  }
  return chunks.join('');
}

const items = [
  { uuid: 'u1', name: 'vm one', vm_state: 'active', extra: { a: 1 } },
  { uuid: 'u2', name: 'say "hi"', vm_state: 'stopped', extra: null },
];
const columns = ['uuid', 'name', 'vm_state'];
const list = (format: Format) => captured(() => printList(columns, items, format));
const one = (format: Format) => captured(() => printObject(items[0]!, format));

describe('berth CLI output: -f and -c as the openstack client prints them', () => {
  afterEach(() => selectColumns([]));

  it('table: a boxed table with headings; an object as Field/Value', () => {
    assert.match(list('table'), /^\+-+\+/);
    assert.match(list('table'), /\| Uuid \| Name +\| Vm State \|/);
    assert.match(one('table'), /\| Field +\| Value +\|/);
  });

  it('value: the cells of each row separated by spaces, no headings or borders; an object one value a line', () => {
    assert.equal(list('value'), 'u1 vm one active\nu2 say "hi" stopped\n');
    assert.equal(one('value'), 'u1\nvm one\nactive\n{"a":1}\n');
  });

  it('csv: a quoted heading row, then one row per item, quotes doubled', () => {
    assert.equal(list('csv'), '"Uuid","Name","Vm State"\n"u1","vm one","active"\n"u2","say ""hi""","stopped"\n');
  });

  it('json and yaml: the items whole', () => {
    assert.deepEqual(JSON.parse(list('json')), items);
    assert.deepEqual(parseYaml(list('yaml')), items);
    assert.deepEqual(parseYaml(one('yaml')), items[0]);
    assert.equal(
      captured(() => printList(columns, [], 'yaml')),
      '[]\n',
    );
    assert.deepEqual(JSON.parse(captured(() => printList(columns, [], 'json'))), []);
  });

  it('-c picks columns by key or heading, in the order given, in every format', () => {
    selectColumns(['name', 'Uuid']);
    assert.equal(list('value'), 'vm one u1\nsay "hi" u2\n');
    assert.equal(list('csv'), '"Name","Uuid"\n"vm one","u1"\n"say ""hi""","u2"\n');
    assert.deepEqual(JSON.parse(list('json')), [
      { name: 'vm one', uuid: 'u1' },
      { name: 'say "hi"', uuid: 'u2' },
    ]);
    assert.deepEqual(parseYaml(list('yaml')), [
      { name: 'vm one', uuid: 'u1' },
      { name: 'say "hi"', uuid: 'u2' },
    ]);
    assert.match(list('table'), /^\| Name +\| Uuid \|$/m);
    selectColumns(['Vm State']);
    assert.equal(one('value'), 'active\n');
    assert.deepEqual(JSON.parse(one('json')), { vm_state: 'active' });
  });

  it('-c may name a field a list has beyond its default columns', () => {
    selectColumns(['uuid', 'extra']);
    assert.equal(list('value'), 'u1 {"a":1}\nu2 \n');
  });

  it('-c with an unknown column is bad usage naming the columns', () => {
    selectColumns(['nope']);
    assert.throws(
      () => list('table'),
      (err: unknown) => err instanceof UsageError && /-c nope: no such column \(columns: uuid, name, vm_state, extra\)/.test(err.message),
    );
  });
});

describe('host show usage bars', () => {
  it('fills in proportion to usage over capacity, with the percentage', async () => {
    const { usageBar } = await import('../../../tools/cli/commands/host.js');
    assert.equal(usageBar(0, 8, 10), '[..........]   0%');
    assert.equal(usageBar(2, 8, 10), '[###.......]  25%');
    assert.equal(usageBar(8, 8, 10), '[##########] 100%');
    assert.equal(usageBar(12, 8, 10), '[##########] 150%');
    assert.equal(usageBar(0, 0, 10), '[..........]   0%');
  });
});
