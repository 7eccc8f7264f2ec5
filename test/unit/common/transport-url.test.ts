import assert from 'node:assert/strict';
import { applyQueryOverrides } from '../../../common/broker-options.js';
import { hostLabel, parseTransportUrl, redactUrl, TransportUrlError } from '../../../common/transport-url.js';

const hosts = (url: string) => parseTransportUrl(url).hosts.map((h) => [h.username, h.password, h.hostname, h.port]);

/**
 * Expected values are what oslo.messaging 14 (TransportURL.parse, then the rabbit driver's URL for
 * kombu, then kombu's defaults) makes of the same URLs.
 */
describe('transport_url as oslo.messaging reads it', () => {
  it('several hosts, each with its own credentials and port, and the vhost', () => {
    const u = parseTransportUrl('rabbit://u:p@h1:5672,u2:p2@h2:5673/vhost');
    assert.deepEqual(hosts('rabbit://u:p@h1:5672,u2:p2@h2:5673/vhost'), [
      ['u', 'p', 'h1', 5672],
      ['u2', 'p2', 'h2', 5673],
    ]);
    assert.equal(u.vhost, 'vhost');
    assert.equal(u.tls, false);
  });

  it('fills in what is left out as kombu does: guest/guest, port 5672, vhost /', () => {
    assert.deepEqual(hosts('rabbit://h1,h2:5673/'), [
      ['guest', 'guest', 'h1', 5672],
      ['guest', 'guest', 'h2', 5673],
    ]);
    assert.deepEqual(hosts('rabbit://u@h1/'), [['u', 'guest', 'h1', 5672]]);
    assert.deepEqual(hosts('rabbit://u:@h1'), [['u', 'guest', 'h1', 5672]]);
    assert.equal(parseTransportUrl('rabbit://h1').vhost, '/');
    assert.equal(parseTransportUrl('rabbit://h1/').vhost, '/');
  });

  it('percent-decodes credentials and vhost; the last @ ends the credentials, the first : splits them', () => {
    assert.deepEqual(hosts('rabbit://a%40b:p%2Fw%3Ax@[::1]:5672/v%2Fh'), [['a@b', 'p/w:x', '::1', 5672]]);
    assert.equal(parseTransportUrl('rabbit://a%40b:p%2Fw%3Ax@[::1]:5672/v%2Fh').vhost, 'v/h');
    assert.deepEqual(hosts('rabbit://u:p@x@h2,u:p@h3/'), [
      ['u', 'p@x', 'h2', 5672],
      ['u', 'p', 'h3', 5672],
    ]);
    assert.deepEqual(hosts('rabbit://u:p:q@h1:5672/'), [['u', 'p:q', 'h1', 5672]]);
  });

  it('IPv6 in brackets, empty host parts skipped, amqps:// defaults to 5671 and TLS', () => {
    assert.deepEqual(hosts('rabbit://[fd00::2]/'), [['guest', 'guest', 'fd00::2', 5672]]);
    assert.deepEqual(hosts('rabbit://u:p@h1:5672,,u:p@h2/'), [
      ['u', 'p', 'h1', 5672],
      ['u', 'p', 'h2', 5672],
    ]);
    const s = parseTransportUrl('amqps://u:p@mq1,u:p@mq2:5672/nova');
    assert.equal(s.tls, true);
    assert.deepEqual(
      s.hosts.map((h) => h.port),
      [5671, 5672],
    );
    assert.equal(hostLabel({ hostname: '::1', port: 5672 }), '[::1]:5672');
  });

  it('query parameters override the options of the same name; repeated ones are joined and then refused as a boolean', () => {
    const u = parseTransportUrl('rabbit://u:p@h1:5672/?ssl=1&heartbeat_timeout_threshold=10&other=x');
    assert.deepEqual(u.query, { ssl: '1', heartbeat_timeout_threshold: '10', other: 'x' });
    assert.deepEqual(applyQueryOverrides({ ssl: false, heartbeat_timeout_threshold: 60, ssl_version: '' }, u.query), {
      ssl: true,
      heartbeat_timeout_threshold: 10,
      ssl_version: '',
    });
    const twice = parseTransportUrl('rabbit://h/?ssl=1&ssl=0').query;
    assert.equal(twice.ssl, '1,0');
    assert.throws(() => applyQueryOverrides({ ssl: false }, twice), /\?ssl=1,0 is not a boolean/);
    assert.throws(() => applyQueryOverrides({ heartbeat_timeout_threshold: 60 }, { heartbeat_timeout_threshold: 'soon' }), /is not a number/);
  });

  it('refuses what oslo cannot use, never showing a password', () => {
    for (const [url, why] of [
      ['http://u:s3cret@h/', /scheme http:\/\/ is not one of/],
      ['rabbit:///vhost', /no host in/],
      ['rabbit://u:s3cret@h1:99999/', /port 99999 of h1/],
      ['rabbit://u:s3cret@h1:x/', /port x of h1/],
      ['rabbit://u:s3cret@[::1/', /closing bracket/],
      ['rabbit://u:s3cret@:5672/', /no host name/],
      ['rabbit://u:s3cret%zz@h/', /bad percent escape/],
      ['u:s3cret@h:5672', /must look like/],
    ] as const) {
      assert.throws(
        () => parseTransportUrl(url),
        (err: Error) => err instanceof TransportUrlError && why.test(err.message) && !err.message.includes('s3cret'),
        url,
      );
    }
  });

  it('redacts every password of a multi-host URL', () => {
    assert.equal(redactUrl('rabbit://u:p1@h1:5672,v:p@2@h2:5672/x'), 'rabbit://u:***@h1:5672,v:***@h2:5672/x');
  });
});
