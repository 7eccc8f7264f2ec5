import assert from 'node:assert/strict';
import { AddressAllowlist, embeddedIPv4, isInternalAddress, parseAllowEntry } from '../../../common/address-policy.js';

describe('common address policy', () => {
  it('classes loopback, link-local, private, CGNAT, unspecified, multicast and reserved addresses as internal', () => {
    for (const a of [
      '127.0.0.1',
      '127.1.2.3',
      '169.254.169.254',
      '10.0.0.1',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '100.64.0.1',
      '100.127.255.255',
      '0.0.0.0',
      '224.0.0.1',
      '239.1.1.1',
      '240.0.0.1',
      '255.255.255.255',
      '198.18.0.1',
      '192.0.2.1',
      '::',
      '::1',
      'fc00::1',
      'fd12:3456::1',
      'fe80::1',
      'fe80::1%eth0',
      'ff02::1',
      '2001:db8::1',
    ]) {
      assert.equal(isInternalAddress(a), true, a);
    }
  });

  it('classes public addresses as not internal', () => {
    for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2606:4700:4700::1111', '2a00:1450::1', '::ffff:8.8.8.8']) {
      assert.equal(isInternalAddress(a), false, a);
    }
  });

  it('sees the IPv4 address in IPv4-mapped, NAT64 and 6to4 IPv6 forms', () => {
    for (const a of [
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::FFFF:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a9fe:a9fe',
      '2002:7f00:1::1',
      '0:0:0:0:0:ffff:a00:1',
    ]) {
      assert.equal(isInternalAddress(a), true, a);
    }
    assert.equal(embeddedIPv4('::ffff:7f00:1'), '127.0.0.1');
    assert.equal(embeddedIPv4('2606:4700::1'), null);
  });

  it('treats anything that is not an IP address as internal', () => {
    assert.equal(isInternalAddress('localhost'), true);
    assert.equal(isInternalAddress(''), true);
  });

  it('parses CIDRs and HOST[:PORT] entries and names the bad ones', () => {
    for (const e of ['10.0.0.0/8', 'fd00::/8', '127.0.0.1', '127.0.0.1:5000', '[::1]:5000', '::1', 'registry.internal', 'registry.internal:5000']) {
      assert.equal(typeof parseAllowEntry(e), 'object', e);
    }
    for (const e of ['10.0.0.0/33', 'nope/8', 'a b', 'host:99999', 'http://x/']) {
      assert.equal(typeof parseAllowEntry(e), 'string', e);
    }
    assert.throws(() => new AddressAllowlist(['10.0.0.0/33']), /10\.0\.0\.0\/33/);
  });

  it('allows public addresses always, and internal ones only as an entry names them', () => {
    const allow = new AddressAllowlist(['127.0.0.1:5000', '10.20.0.0/16', 'registry.internal', '[::1]:5001']);
    assert.equal(allow.allows('example.com', 443, '8.8.8.8'), true);
    assert.equal(allow.allows('127.0.0.1', 5000, '127.0.0.1'), true);
    assert.equal(allow.allows('127.0.0.1', 5001, '127.0.0.1'), false, 'another port of an allowed address');
    assert.equal(allow.allows('evil.test', 5000, '127.0.0.1'), true, 'an address:port entry allows that socket address, whatever the name');
    assert.equal(allow.allows('evil.test', 5000, '::ffff:127.0.0.1'), true, 'IPv4-mapped form of an allowed address');
    assert.equal(allow.allows('x', 80, '10.20.3.4'), true);
    assert.equal(allow.allows('x', 80, '10.21.3.4'), false);
    assert.equal(allow.allows('x', 80, '::ffff:10.20.3.4'), true);
    assert.equal(allow.allows('Registry.Internal', 8443, '192.168.7.7'), true, 'a host entry without port: any port, any address it resolves to');
    assert.equal(allow.allows('other.internal', 8443, '192.168.7.7'), false);
    assert.equal(allow.allows('[::1]', 5001, '::1'), true);
    assert.equal(allow.allows('x', 80, '169.254.169.254'), false);
    assert.equal(new AddressAllowlist([]).allows('127.0.0.1', 5000, '127.0.0.1'), false);
  });
});
