#!/usr/bin/python3
"""A stock oslo.messaging RPC server answering baseapi ping, the baseline of tools/bench/rpc-ping.ts.

Run with Debian's interpreter:
  /usr/bin/python3 tools/bench/oslo_ping_server.py URL EXCHANGE TOPIC SERVER MAX_SECONDS

It prints one line "ready" on stdout once it consumes, then serves until SIGTERM, until stdin
closes, or for at most MAX_SECONDS, whichever comes first.
"""
import signal
import sys
import threading

from oslo_config import cfg
import oslo_messaging


class BaseAPI(object):
    """The endpoint nova's services expose for ping (nova.baseapi.BaseAPI's server side)."""

    target = oslo_messaging.Target(namespace='baseapi', version='1.1')

    def ping(self, ctxt, arg):
        return {'service': 'compute', 'arg': arg}


def main():
    url, exchange, topic, server, max_seconds = sys.argv[1:6]
    conf = cfg.ConfigOpts()
    conf([], project='berth-bench')
    transport = oslo_messaging.get_rpc_transport(conf, url=url)
    target = oslo_messaging.Target(exchange=exchange, topic=topic, server=server)
    rpc = oslo_messaging.get_rpc_server(transport, target, [BaseAPI()], executor='threading')
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    rpc.start()
    sys.stdout.write('ready\n')
    sys.stdout.flush()
    done.wait(float(max_seconds))
    rpc.stop()
    rpc.wait()
    transport.cleanup()


if __name__ == '__main__':
    main()
