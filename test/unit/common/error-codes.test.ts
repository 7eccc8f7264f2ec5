import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { AGENT_ERROR_CODES, AGENT_ERRORS, agentError } from '../../../agent/client/errors.js';
import { renderAgentOpenApi } from '../../../agent/openapi.js';
import { BerthError, COMMON_ERRORS, commonError, type ErrorCatalog } from '../../../common/errors.js';
import { DRIVER_ERROR_CODES, DRIVER_ERRORS, driverError } from '../../../driver/errors.js';
import { NEUTRON_ERRORS } from '../../../driver/neutron/client.js';
import { parseFailure, RemoteFailure } from '../../../driver/rpc/caller.js';
import { serializeFailure, toRpcFailure } from '../../../driver/rpc/failure.js';
import { IMAGE_ERROR_CODES, IMAGE_ERRORS, imageError } from '../../../glance-bridge/client/errors.js';

const root = new URL('../../../', import.meta.url);
const CATALOGS: Record<string, ErrorCatalog<string>> = {
  common: COMMON_ERRORS,
  agent: AGENT_ERRORS,
  image: IMAGE_ERRORS,
  neutron: NEUTRON_ERRORS,
  driver: DRIVER_ERRORS,
};

/** Every status each code is given anywhere: the catalogs, and the raisers that still name a status by hand. */
function statusesByCode(): Map<string, Map<number, string[]>> {
  const seen = new Map<string, Map<number, string[]>>();
  const add = (code: string, status: number, where: string): void => {
    const byStatus = seen.get(code) ?? new Map<number, string[]>();
    byStatus.set(status, [...(byStatus.get(status) ?? []), where]);
    seen.set(code, byStatus);
  };
  for (const [name, catalog] of Object.entries(CATALOGS)) {
    for (const [code, spec] of Object.entries(catalog)) add(code, spec.status, `${name} catalog`);
  }
  const files = execFileSync('git', ['ls-files', '*.ts'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f !== '' && (!f.startsWith('test/') || f.startsWith('test/fakes/')));
  for (const file of files) {
    const text = readFileSync(new URL(file, root), 'utf8');
    for (const m of text.matchAll(/new BerthError\(\s*'([A-Z_]+)'((?:(?!new BerthError)[\s\S]){0,400}?)status:\s*(\d{3})/g)) {
      add(m[1]!, Number(m[3]), `${file}:${text.slice(0, m.index).split('\n').length}`);
    }
  }
  return seen;
}

describe('error codes: one status per code', () => {
  it('no code is given two statuses, in any catalog or raiser', () => {
    const conflicts = [...statusesByCode()]
      .filter(([, byStatus]) => byStatus.size > 1)
      .map(([code, byStatus]) => `${code}: ${[...byStatus].map(([s, where]) => `${s} (${where.join(', ')})`).join(' vs ')}`);
    assert.deepEqual(conflicts, []);
  });

  it('the scan sees the raisers and catalogs it checks', () => {
    const seen = statusesByCode();
    assert.deepEqual([...seen.get('IMAGE_STATE_FORBIDDEN')!.keys()], [403]);
    assert.deepEqual([...seen.get('IMAGE_INVALID_STATE')!.keys()], [409]);
    assert.ok(
      [...seen.get('INVALID_INPUT')!.values()].flat().some((where) => where.startsWith('common/errors.ts:')),
      'raisers outside the catalogs are scanned too',
    );
    assert.deepEqual([...seen.get('PLACEMENT_CONFLICT')!.keys()], [409]);
  });

  it('every code the agent API documents for a response is a known code with that status', () => {
    const doc = JSON.parse(renderAgentOpenApi()) as { paths: Record<string, Record<string, { responses?: Record<string, { description?: string }> }>> };
    const known: Record<string, number> = {};
    for (const catalog of [COMMON_ERRORS, AGENT_ERRORS] as ErrorCatalog<string>[]) {
      for (const [code, spec] of Object.entries(catalog)) known[code] = spec.status;
    }
    const wrong: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, res] of Object.entries(op.responses ?? {})) {
          for (const code of res.description?.match(/\b[A-Z][A-Z_]{3,}\b/g) ?? []) {
            if (known[code] !== Number(status)) wrong.push(`${method.toUpperCase()} ${path} ${status}: ${code} is ${known[code] ?? 'unknown'}`);
          }
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('the agent API document lists the agent codes with their statuses', () => {
    const doc = JSON.parse(renderAgentOpenApi()) as { components: { schemas: { Error: { 'x-error-codes': Record<string, { status: number }> } } } };
    const listed = doc.components.schemas.Error['x-error-codes'];
    assert.deepEqual(Object.keys(listed), [...AGENT_ERROR_CODES]);
    for (const code of AGENT_ERROR_CODES) assert.equal(listed[code]!.status, AGENT_ERRORS[code].status);
  });

  it('the table of docs/agent-api.md gives every agent code its status and retryability', () => {
    const text = readFileSync(new URL('docs/agent-api.md', root), 'utf8');
    const rows = [...text.matchAll(/^\| (\d{3}) \| `([A-Z_]+)` \|.*\| (yes|no) \|$/gm)];
    const catalog: Record<string, { status: number; retryable?: boolean }> = { ...COMMON_ERRORS, ...AGENT_ERRORS };
    const wrong = rows
      .filter(([, status, code, retry]) => catalog[code!]?.status !== Number(status) || (catalog[code!]?.retryable ?? false) !== (retry === 'yes'))
      .map(([row]) => row);
    assert.deepEqual(wrong, []);
    const documented = new Set(rows.map((r) => r[2]));
    assert.deepEqual(
      AGENT_ERROR_CODES.filter((c) => !documented.has(c)),
      [],
    );
  });

  it('the code lists and their catalogs name the same codes', () => {
    assert.deepEqual(Object.keys(AGENT_ERRORS).sort(), [...AGENT_ERROR_CODES].sort());
    assert.deepEqual(Object.keys(IMAGE_ERRORS).sort(), [...IMAGE_ERROR_CODES].sort());
    assert.deepEqual(Object.keys(DRIVER_ERRORS).sort(), [...DRIVER_ERROR_CODES].sort());
  });

  it('no product file or fake raises a catalogued driver code by hand: they go through driverError', () => {
    const files = execFileSync('git', ['ls-files', '*.ts'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f !== '' && (!f.startsWith('test/') || f.startsWith('test/fakes/')));
    const codes = new Set<string>(DRIVER_ERROR_CODES);
    const byHand: string[] = [];
    for (const file of files) {
      const text = readFileSync(new URL(file, root), 'utf8');
      for (const m of text.matchAll(/new BerthError\(\s*'([A-Z_]+)'/g)) if (codes.has(m[1]!)) byHand.push(`${file}: ${m[1]}`);
    }
    assert.deepEqual(byHand, []);
  });
});

describe('error factories', () => {
  it('take status and retryability from the catalog', () => {
    const e = agentError('RUNTIME_UNAVAILABLE', 'dockerd is down', { host: 'h' });
    assert.ok(e instanceof BerthError);
    assert.deepEqual([e.code, e.status, e.retryable, e.details], ['RUNTIME_UNAVAILABLE', 503, true, { host: 'h' }]);
    assert.equal(imageError('IMAGE_INVALID_STATE', 'x').status, 409);
    assert.equal(commonError('BODY_TOO_LARGE', 'x').status, 413);
  });

  it('expose 4xx and retryable errors by default, other 5xx only when the catalog says so', () => {
    assert.equal(commonError('INVALID_INPUT', 'x').expose, true);
    assert.equal(commonError('SERVICE_UNREACHABLE', 'x').expose, true);
    assert.equal(commonError('UPSTREAM_ERROR', 'x').expose, false);
    assert.equal(new BerthError('SOMETHING', 'x').expose, false);
    assert.equal(agentError('RUNTIME_ERROR', 'x').expose, true);
  });

  it('type the code, so a switch narrows it', () => {
    const e = agentError('INSTANCE_NOT_FOUND', 'gone');
    const label = (code: typeof e.code): string => {
      switch (code) {
        case 'INSTANCE_NOT_FOUND':
          return 'missing';
        default:
          return 'other';
      }
    };
    assert.equal(label(e.code), 'missing');
  });
});

describe('driver error codes over RPC', () => {
  it("each crosses in oslo's failure format and comes back with its code, status and retryability", () => {
    for (const code of DRIVER_ERROR_CODES) {
      const sent = driverError(code, `something about ${code}`, { uuid: 'u-1' });
      const wire = JSON.parse(serializeFailure(toRpcFailure(sent))) as Record<string, unknown>;
      assert.equal(wire.class, 'NovaException', code);
      assert.equal(wire.module, 'nova.exception', code);
      assert.equal(wire.message, sent.message, code);
      assert.deepEqual(wire.kwargs, { code: DRIVER_ERRORS[code].status, berth_code: code }, code);
      const got = parseFailure(JSON.stringify(wire));
      assert.ok(got instanceof RemoteFailure, code);
      assert.deepEqual([got.code, got.status, got.retryable, got.message], [code, sent.status, sent.retryable, sent.message]);
    }
  });

  it("another peer's failure keeps its class as the code, and is not taken for a Berth code", () => {
    const nova = parseFailure(JSON.stringify({ class: 'InstanceNotFound', module: 'nova.exception', message: 'gone', kwargs: { code: 404 } }));
    assert.deepEqual([nova.code, nova.status, nova.retryable], ['REMOTE_INSTANCE_NOT_FOUND', 404, false]);
    const odd = parseFailure(
      JSON.stringify({ class: 'NovaException', module: 'nova.exception', message: 'x', kwargs: { code: 500, berth_code: 'not a code' } }),
    );
    assert.equal(odd.code, 'REMOTE_NOVA_EXCEPTION');
  });
});
