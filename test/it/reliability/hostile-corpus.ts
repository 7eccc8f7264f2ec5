import { instancePrimitive } from '../../../tools/lib/nova-requests.js';

/**
 * A deterministic (seeded) stream of malformed and hostile RPC messages, each with what the
 * server must do with it: `malformed` ones are dropped before dispatch, the others fail in
 * dispatch or in the method; a `msgId` means the caller must get exactly one failure reply.
 */
export interface HostileCase {
  label: string;
  body: Buffer;
  contentType: string | null;
  stage: 'malformed' | 'failed';
  /** Set when a failure reply must arrive on the test's reply queue. */
  msgId: string | null;
  /** The reply is addressed to the compute queue itself: it comes back as one more malformed message. */
  loopsBack?: boolean;
}

export interface CorpusTarget {
  replyQueue: string;
  serverQueue: string;
  maxBytes: number;
}

type Rng = () => number;

export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const hex = (rng: Rng, n = 32) => Array.from({ length: n }, () => Math.floor(rng() * 16).toString(16)).join('');
const uuidOf = (rng: Rng) => {
  const h = hex(rng);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

/** Nesting as JSON text, built without recursion: `depth` arrays, or objects `{"a": ...}`. */
const deepArrayJson = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const deepObjectJson = (depth: number) => `${'{"a": '.repeat(depth)}1${'}'.repeat(depth)}`;
const RAW = '\u0000RAW:';
/** A placeholder replaced by raw JSON text after stringify (deep values cannot be stringified). */
const raw = (json: string) => `${RAW}${json.length}:${json}`;

function stringify(v: unknown): string {
  const parts: string[] = [];
  const text = JSON.stringify(v, (_k, val: unknown) => {
    if (typeof val === 'string' && val.startsWith(RAW)) {
      parts.push(val.slice(val.indexOf(':', RAW.length) + 1));
      return `${RAW}${parts.length - 1}`;
    }
    return val;
  });
  return text.replace(new RegExp(`"\\\\u0000RAW:(\\d+)"`, 'g'), (_m, i: string) => parts[Number(i)]!);
}

const envelope = (inner: string) => `{"oslo.version": "2.0", "oslo.message": ${JSON.stringify(inner)}}`;

function validInstance(rng: Rng): Record<string, unknown> {
  return instancePrimitive({ uuid: uuidOf(rng), image_id: 'img-hostile', flavor: { vcpus: 1, memory_mb: 64 } });
}

/** Instances nova could never send; none may decode into something buildable. */
function brokenInstance(rng: Rng): unknown {
  const ok = validInstance(rng);
  const data = ok['nova_object.data'] as Record<string, unknown>;
  const flavor = (data.flavor as Record<string, Record<string, unknown>>)['nova_object.data']!;
  switch (Math.floor(rng() * 14)) {
    case 0:
      return pick(rng, [null, 42, 'instance', [], true, {}]);
    case 1:
      return { ...ok, 'nova_object.name': pick(rng, ['Flavor', 'instance', 7, null]) };
    case 2:
      return { ...ok, 'nova_object.version': pick(rng, ['9.1', 2, '', 'two']) };
    case 3:
      return { ...ok, 'nova_object.data': pick(rng, [[], 'data', null, 5]) };
    case 4:
      delete data.uuid;
      return ok;
    case 5:
      data.uuid = pick(rng, [123, 'not-a-uuid', '', ['a'], { u: 1 }]);
      return ok;
    case 6:
      data.uuid = raw(deepArrayJson(50_000));
      return ok;
    case 7:
      return { ...ok, 'nova_object.name': raw(deepArrayJson(50_000)) };
    case 8:
      delete data.flavor;
      return ok;
    case 9:
      flavor.vcpus = pick(rng, [0, -1, 'lots', 1.5, null]);
      return ok;
    case 10:
      flavor.memory_mb = pick(rng, [0, 'x', {}, 1e400]);
      return ok;
    case 11:
      data.metadata = pick(rng, [{ k: 1 }, ['a'], 'm', { k: { deep: raw(deepObjectJson(20_000)) } }]);
      return ok;
    case 12:
      data.created_at = pick(rng, ['yesterday', 42, '2026-13-45T99:99:99Z']);
      return ok;
    default:
      (data.info_cache as Record<string, Record<string, unknown>>)['nova_object.data']!.network_info = pick(rng, ['{bad', '"str"', '{}']);
      return ok;
  }
}

export class HostileCorpus {
  private n = 0;
  constructor(
    private readonly rng: Rng,
    private readonly t: CorpusTarget,
  ) {}

  private addr(call: boolean): { msgId: string | null; keys: Record<string, unknown> } {
    if (!call) return { msgId: null, keys: { _unique_id: hex(this.rng) } };
    const msgId = `h${String(this.n).padStart(4, '0')}${hex(this.rng, 27)}`;
    return { msgId, keys: { _msg_id: msgId, _reply_q: this.t.replyQueue, _timeout: null, _unique_id: hex(this.rng) } };
  }

  /** A message that reaches dispatch and fails there (or in the method). */
  private failing(label: string, msg: Record<string, unknown>, opts: { envelope?: boolean; call?: boolean } = {}): HostileCase {
    const call = opts.call ?? this.rng() < 0.6;
    const { msgId, keys } = this.addr(call);
    const text = stringify({ version: '6.0', args: {}, _context_request_id: `req-${hex(this.rng, 8)}`, ...msg, ...keys });
    return {
      label: `${label} (${call ? 'call' : 'cast'})`,
      body: Buffer.from(opts.envelope === false ? text : envelope(text)),
      contentType: 'application/json',
      stage: 'failed',
      msgId,
    };
  }

  next(): HostileCase {
    this.n++;
    const r = this.rng;
    const kind = Math.floor(r() * 16);
    const unknownMethod = () =>
      pick(r, ['_private', '__proto__', 'constructor', 'toString', 'hasOwnProperty', `m_${hex(r, 6)}`, 'x'.repeat(10_000), '\u00e9t\u00e9\ud83d\ude80']);
    switch (kind) {
      case 0: {
        // not JSON, or JSON that is not an object, or truncated
        const valid = envelope(JSON.stringify({ method: 'ping', namespace: 'baseapi', args: { arg: 1 }, version: '1.0' }));
        const body = pick(r, [
          Buffer.from(Array.from({ length: 1 + Math.floor(r() * 2000) }, () => Math.floor(r() * 256))),
          Buffer.from(pick(r, ['null', '[]', '42', '"str"', 'true', '[{"method": "ping"}]', '', '{'])),
          Buffer.from(valid.slice(0, 1 + Math.floor(r() * (valid.length - 2)))),
        ]);
        return { label: 'not a JSON object', body, contentType: 'application/json', stage: 'malformed', msgId: null };
      }
      case 1: {
        // broken envelope
        const inner = JSON.stringify({ method: 'ping', args: {}, version: '1.0', ...this.addr(true).keys });
        const body = pick(r, [
          `{"oslo.version": "3.0", "oslo.message": ${JSON.stringify(inner)}}`,
          `{"oslo.version": 2, "oslo.message": ${JSON.stringify(inner)}}`,
          `{"oslo.version": "2.0", "oslo.message": ${inner}}`,
          '{"oslo.version": "2.0", "oslo.message": "not json"}',
          '{"oslo.version": "2.0", "oslo.message": "[1, 2]"}',
          `{"oslo.version": {}, "oslo.message": ${JSON.stringify(inner)}}`,
        ]);
        return { label: 'broken envelope', body: Buffer.from(body), contentType: 'application/json', stage: 'malformed', msgId: null };
      }
      case 2: {
        // wrong content type on a message that would otherwise be answered
        const c = this.failing('wrong content type', { method: unknownMethod() });
        return {
          ...c,
          contentType: pick(r, [null, 'text/plain', 'application/octet-stream', 'application/json; charset=utf-8', 'APPLICATION/JSON']),
          stage: 'malformed',
          msgId: null,
        };
      }
      case 3: {
        // wrong types in the message itself: malformed, but a call still learns why
        const field = pick(r, ['method', 'args', 'namespace', 'version'] as const);
        const bad = {
          method: [42, null, {}, [], '', true],
          args: [[], 'x', 42, true, null],
          namespace: [{}, 42, [], true],
          version: [6.0, {}, [], true, null],
        }[field];
        const c = this.failing(`${field} of the wrong type`, { method: 'ping', namespace: 'baseapi', args: { arg: 1 }, version: '1.0', [field]: pick(r, bad) });
        return { ...c, stage: 'malformed' };
      }
      case 4:
        return this.failing('garbage version', {
          method: 'stop_instance',
          version: pick(r, ['abc', '6', '6.x', '', '99.0', '6.2.3.4', '-1.0', '6.0\n', '\uff16.\uff10']),
        });
      case 5:
        return this.failing('unknown method', { method: unknownMethod(), namespace: pick(r, [undefined, 'baseapi', 'berth', 'nope']) });
      case 6: {
        // known methods, required arguments missing
        const [method, namespace, version] = pick(r, [
          ['build_and_run_instance', undefined, '6.0'],
          ['terminate_instance', undefined, '6.0'],
          ['stop_instance', undefined, '6.0'],
          ['reboot_instance', undefined, '6.0'],
          ['get_console_output', undefined, '6.0'],
          ['ping', 'baseapi', '1.0'],
          ['show_instance', 'berth', '1.0'],
        ] as const);
        return this.failing('missing arguments', { method, namespace, version, args: pick(r, [{}, { unrelated: 1 }]) });
      }
      case 7:
      case 8: {
        // broken instance primitives on instance methods (build included: none may build)
        const method = pick(r, ['stop_instance', 'start_instance', 'pause_instance', 'get_console_output', 'build_and_run_instance', 'live_migration']);
        const args = {
          instance: brokenInstance(r),
          bdms: null,
          tail_length: 10,
          image: { id: 'img-hostile' },
          request_spec: null,
          filter_properties: {},
          accel_uuids: [],
        };
        return this.failing('broken instance', { method, args });
      }
      case 9: {
        // well-formed instance of no instance here, hostile call-monitor timeouts and contexts:
        // context fields of the wrong type make the message malformed, but a call still learns why
        const c = this.failing('hostile context', {
          method: pick(r, ['stop_instance', 'get_console_output', 'rescue_instance']),
          args: { instance: validInstance(r), tail_length: 5 },
          _context___proto__: { request_id: 'polluted' },
          _context_roles: 'admin',
          _context_user_id: pick(r, [42, {}, null]),
        });
        if (c.msgId) {
          const text = c.body
            .toString('utf8')
            .replace('\\"_timeout\\":null', `\\"_timeout\\":${pick(r, ['1e10', '1e300', '3.9', '-5', '\\"60\\"', '{}', 'true'])}`);
          return { ...c, body: Buffer.from(text), stage: 'malformed' };
        }
        return { ...c, stage: 'malformed' };
      }
      case 10: {
        // sizes just under (answered) and just over (dropped) max_message_bytes
        const over = r() < 0.5;
        const c = this.failing(over ? 'over max_message_bytes' : 'at or under max_message_bytes', { method: unknownMethod(), args: { pad: '' } });
        const target = over ? this.t.maxBytes + 1 + Math.floor(r() * 10_000) : this.t.maxBytes - Math.floor(r() * 1000);
        const text = c.body.toString('utf8').replace('\\"pad\\":\\"\\"', `\\"pad\\":\\"${'p'.repeat(Math.max(0, target - c.body.length))}\\"`);
        return { ...c, body: Buffer.from(text), ...(over ? { stage: 'malformed' as const, msgId: null } : {}) };
      }
      case 11: {
        // deep nesting where the server walks or echoes values
        const which = Math.floor(r() * 3);
        // A cast of ping succeeds (nothing is sent back); a call's reply cannot be encoded.
        if (which === 0)
          return this.failing(
            'deep value echoed by ping',
            { method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg: raw(deepArrayJson(100_000)) } },
            { call: true },
          );
        if (which === 1) return this.failing('deep args, unknown method', { method: unknownMethod(), args: { x: raw(deepObjectJson(20_000)) } });
        // A request id that is no string (deeply nested): malformed, and a call learns why.
        return {
          ...this.failing('deep context', {
            method: 'get_console_output',
            args: { instance: validInstance(r), tail_length: 1 },
            _context_request_id: raw(deepArrayJson(100_000)),
          }),
          stage: 'malformed',
        };
      }
      case 12: {
        // bytes that are not UTF-8, inside strings (decoded as U+FFFD) or outside them
        const c = this.failing('non-UTF-8 method name', { method: 'M' }, { envelope: false });
        const at = c.body.indexOf('"M"') + 1;
        const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 8) }, () => 0x80 + Math.floor(r() * 128)));
        if (r() < 0.3)
          return {
            ...c,
            label: 'non-UTF-8 outside strings',
            body: Buffer.concat([c.body.subarray(0, at - 1), bytes, c.body.subarray(at + 2)]),
            stage: 'malformed',
            msgId: null,
          };
        return { ...c, body: Buffer.concat([c.body.subarray(0, at), bytes, c.body.subarray(at + 1)]) };
      }
      case 13: {
        // reply addresses that cannot be answered or that point back at the server
        const variant = Math.floor(r() * 4);
        const base = { method: unknownMethod(), args: {}, version: '6.0', _unique_id: hex(r) };
        if (variant === 0)
          return {
            label: 'broken _msg_id',
            body: Buffer.from(envelope(JSON.stringify({ ...base, _msg_id: pick(r, [42, '', {}, null]), _reply_q: this.t.replyQueue }))),
            contentType: 'application/json',
            stage: 'malformed',
            msgId: null,
          };
        const replyQ = [`reply_${hex(r)}`, `reply_${'q'.repeat(300)}`, this.t.serverQueue][variant - 1]!;
        return {
          label: `unanswerable reply queue ${variant}`,
          body: Buffer.from(envelope(JSON.stringify({ ...base, _msg_id: hex(r), _reply_q: replyQ }))),
          contentType: 'application/json',
          stage: 'failed',
          msgId: null,
          loopsBack: replyQ === this.t.serverQueue,
        };
      }
      case 14:
        return this.failing('bare message, no envelope', { method: unknownMethod() }, { envelope: false });
      default:
        return this.failing('unsupported operation', {
          method: pick(r, ['resize_instance', 'attach_volume', 'rescue_instance']),
          args: { instance: validInstance(r) },
        });
    }
  }
}
