import assert from 'node:assert/strict';
import vm from 'node:vm';
import { BerthError } from '../../../common/errors.js';
import { isBase64Text, validateInstanceSpec } from '../../../agent/validate.js';

/**
 * user_data is checked in time linear in its length. No clock is compared: each check runs under
 * V8's own execution watchdog (vm's `timeout`), which stops a backtracking pattern mid-match, and
 * the same harness first shows that the crafted input is the pathological case for the pattern
 * the agent used before.
 */

/** The pattern the agent checked user_data with before. */
const OLD_BASE64_RE = /^[A-Za-z0-9+/\r\n]*={0,2}\s*$/;

/** 64 KiB minus one of base64 characters and line breaks, then one character that fails at the end. */
const CRAFTED = `A${'\n'.repeat(65533)}!`;

/** Runs `check(input)` under the watchdog: its result, or 'stopped' when the watchdog had to stop it. */
function underWatchdog<T>(check: (v: string) => T, input: string): T | 'stopped' {
  try {
    return vm.runInNewContext('check(input)', { check, input }, { timeout: 1000 }) as T;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return 'stopped';
    throw err;
  }
}

const spec = (userData: string): Record<string, unknown> => ({
  image_id: '6f1c1a6c-58d1-4c4c-9d49-0c1d2a3b4c5d',
  flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
  name: 'vm',
  hostname: 'vm',
  project_id: 'demo',
  user_id: 'alice',
  metadata: {},
  user_data: userData,
  key_data: null,
  fixed_ip: null,
});

describe('agent user_data validation in linear time', () => {
  it('the crafted input is the pathological case for the old pattern (the watchdog has to stop it)', () => {
    assert.equal(CRAFTED.length, 65535);
    assert.equal(
      underWatchdog((v) => OLD_BASE64_RE.test(v), CRAFTED),
      'stopped',
    );
  });

  it('refuses the crafted input under the same watchdog, through the whole spec validation', () => {
    assert.equal(underWatchdog(isBase64Text, CRAFTED), false);
    const outcome = underWatchdog((v) => {
      try {
        validateInstanceSpec(spec(v));
        return 'accepted';
      } catch (err) {
        return err instanceof BerthError ? `${err.code} ${String(err.details?.field)}` : 'other';
      }
    }, CRAFTED);
    assert.equal(outcome, 'INVALID_INPUT user_data');
  });

  it('accepts the largest valid user_data under the same watchdog', () => {
    const valid = `${'QUFB\n'.repeat(13106)}QQ==\n`;
    assert.ok(valid.length <= 65535);
    assert.equal(underWatchdog(isBase64Text, valid), true);
    assert.equal(
      underWatchdog((v) => validateInstanceSpec(spec(v)).user_data === v, valid),
      true,
    );
  });

  it('accepts and refuses exactly what the old pattern did, on short inputs where it is fast', () => {
    const alphabet = ['A', 'z', '0', '+', '/', '\r', '\n', '=', ' ', '\t', '\u00a0', '\u2028', '!', '-', '\u00e9'];
    let seed = 7;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed;
    };
    const cases = ['', '=', '==', '===', 'QQ==', 'QQ==\n', 'QQ== \n ', 'QQ=\n=', 'Q Q', '\n\n=\n', 'QQ==!'];
    for (let i = 0; i < 5000; i++) cases.push(Array.from({ length: next() % 12 }, () => alphabet[next() % alphabet.length]).join(''));
    for (const c of cases) assert.equal(isBase64Text(c), OLD_BASE64_RE.test(c), JSON.stringify(c));
  });
});
