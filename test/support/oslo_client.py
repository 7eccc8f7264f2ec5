#!/usr/bin/python3
"""Drives a compute node with the *unmodified* stock oslo.messaging client (Debian's
python3-oslo.messaging 14.0.3), for Berth's wire-interop tests.

Run it with Debian's interpreter: /usr/bin/python3 test/support/oslo_client.py [JOB_JSON]
The job is read from argv[1] or, if absent, from stdin. The last stdout line is the JSON result;
oslo's log goes to stderr.

RPC job (one request, or several sharing one transport with "jobs": [...]):
  {"url": "rabbit://guest:guest@127.0.0.1:5672/", "exchange": "nova",
   "mode": "call" | "cast" | "fanout",
   "server": "<host>" | null, "topic": "compute", "method": "ping", "args": {...},
   "ctxt": {...}, "namespace": null, "version": "6.0", "timeout": 10,
   "call_monitor_timeout": null, "retry": 2,
   "allowed_remote_exmods": ["nova.exception"]}
  -> {"result": ...} | {"sent": true} | {"error": {...}}, plus "elapsed" and, for calls,
     "heartbeats" (call-monitor heartbeats oslo logged as received).

Listen job (stock notification listener, executor 'threading'):
  {"mode": "listen", "url": ..., "exchange": ..., "topic": "versioned_notifications",
   "pool": null, "duration": 10, "until_event": "instance.create.end", "until_publisher": null}
  -> prints {"ready": true} once the listener consumes, then
     {"notifications": [{"priority", "ctxt", "publisher_id", "event_type", "payload",
     "metadata"}], "matched": bool}
"""
import json
import logging
import os
import sys
import threading
import time

from oslo_config import cfg
import oslo_messaging


class HeartbeatCounter(logging.Handler):
    """Counts oslo's 'Call monitor heartbeat received' debug records (amqpdriver.ReplyWaiter)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record):
        if 'Call monitor heartbeat received' in str(record.msg):
            self.count += 1


def out(obj):
    sys.stdout.write(json.dumps(obj, default=repr) + '\n')
    sys.stdout.flush()


def describe_error(e):
    err = {
        'type': type(e).__name__,
        'module': type(e).__module__,
        'str': str(e),
        'exc_type': getattr(e, 'exc_type', None),
    }
    if isinstance(e, oslo_messaging.RemoteError):
        err['value'] = e.value
    for base in type(e).__mro__[1:]:
        if base is not Exception:
            err.setdefault('bases', []).append('%s.%s' % (base.__module__, base.__name__))
        else:
            break
    kwargs = getattr(e, 'kwargs', None)
    if isinstance(kwargs, dict):
        err['kwargs'] = kwargs
    return err


def setup(job):
    cfg.CONF([], project='berth-oslo-client', default_config_files=[], default_config_dirs=[])
    oslo_messaging.set_transport_defaults(job.get('exchange', 'nova'))


def run_rpc(transport, job, counter):
    client = oslo_messaging.get_rpc_client(
        transport, oslo_messaging.Target(topic=job.get('topic', 'compute'), version='6.0'))
    prep = {}
    if job.get('server'):
        prep['server'] = job['server']
    for key in ('namespace', 'version', 'timeout', 'call_monitor_timeout', 'retry'):
        if job.get(key) is not None:
            prep[key] = job[key]
    mode = job.get('mode', 'call')
    if mode == 'fanout':
        prep['fanout'] = True
    prep.setdefault('retry', 2)
    cctxt = client.prepare(**prep)
    ctxt = job.get('ctxt') or {}
    args = job.get('args') or {}
    before = counter.count
    start = time.monotonic()
    res = {}
    try:
        if mode == 'call':
            res['result'] = cctxt.call(ctxt, job['method'], **args)
        else:
            cctxt.cast(ctxt, job['method'], **args)
            res['sent'] = True
    except Exception as e:  # noqa: BLE001 - reported to the test as data
        res['error'] = describe_error(e)
    res['elapsed'] = round(time.monotonic() - start, 3)
    if mode == 'call':
        res['heartbeats'] = counter.count - before
    return res


def run_listen(job):
    transport = oslo_messaging.get_notification_transport(cfg.CONF, url=job['url'])
    until_event = job.get('until_event')
    until_publisher = job.get('until_publisher')
    got = []
    lock = threading.Lock()
    done = threading.Event()

    def recorder(priority):
        def handle(self, ctxt, publisher_id, event_type, payload, metadata):
            with lock:
                got.append({'priority': priority, 'ctxt': ctxt, 'publisher_id': publisher_id,
                            'event_type': event_type, 'payload': payload, 'metadata': metadata})
                if until_event and event_type == until_event and (
                        until_publisher is None or publisher_id == until_publisher):
                    done.set()
            return oslo_messaging.NotificationResult.HANDLED
        return handle

    endpoint = type('Recorder', (), {p: recorder(p) for p in ('info', 'error', 'warn')})()
    targets = [oslo_messaging.Target(topic=job.get('topic', 'versioned_notifications'))]
    listener = oslo_messaging.get_notification_listener(
        transport, targets, [endpoint], executor='threading', pool=job.get('pool'))
    listener.start()
    out({'ready': True})
    matched = done.wait(float(job.get('duration', 10)))
    listener.stop()
    listener.wait()
    transport.cleanup()
    with lock:
        return {'notifications': list(got), 'matched': matched}


def main():
    raw = sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read()
    job = json.loads(raw)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format='%(asctime)s %(name)s %(levelname)s %(message)s')
    counter = HeartbeatCounter()
    drv_log = logging.getLogger('oslo_messaging._drivers.amqpdriver')
    drv_log.setLevel(logging.DEBUG)
    drv_log.addHandler(counter)
    drv_log.propagate = False
    warn = logging.StreamHandler(sys.stderr)
    warn.setLevel(logging.WARNING)
    drv_log.addHandler(warn)
    setup(job)
    if job.get('mode') == 'listen':
        out(run_listen(job))
        return
    transport = oslo_messaging.get_rpc_transport(
        cfg.CONF, url=job['url'], allowed_remote_exmods=job.get('allowed_remote_exmods'))
    try:
        if 'jobs' in job:
            common = {k: v for k, v in job.items() if k != 'jobs'}
            out({'results': [run_rpc(transport, {**common, **j}, counter) for j in job['jobs']]})
        else:
            out(run_rpc(transport, job, counter))
    finally:
        transport.cleanup()


if __name__ == '__main__':
    try:
        main()
    except Exception as e:  # noqa: BLE001
        out({'fatal': describe_error(e)})
        sys.stdout.flush()
        os._exit(2)
    sys.stdout.flush()
    sys.stderr.flush()
    # oslo/kombu may leave non-daemon threads behind; the result is printed, so leave now.
    os._exit(0)
