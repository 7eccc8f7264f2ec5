import { bool, int, list, str, url, type OptionSpec } from './spec.js';

/** The serial console: the agent's per-instance TCP endpoints, and what the driver tells nova of them. */
export const consoleSections = {
  serial_console: {
    enabled: bool(
      true,
      "Offer serial consoles (nova's [serial_console] enabled): on request the agent opens a TCP endpoint for one instance, bridged to its container's stdin and stdout (Docker's attach), which only a connection presenting a one-time token the driver obtained gets through. Instances created while this was false, or by a Berth without consoles, have no open stdin and are refused until rebuilt. false: get_serial_console answers nova's ConsoleTypeUnavailable.",
    ),
    port_range: str(
      '10000:20000',
      "START:STOP, the TCP ports (STOP excluded) the agent takes consoles' endpoints from, one per instance with a console open (nova's [serial_console] port_range). A port another program holds is skipped; when every port is taken a console request fails with CONSOLE_PORTS_EXHAUSTED.",
    ),
    proxyclient_address: str(
      '127.0.0.1',
      "The address the agent's console endpoints listen on and the driver hands to nova, where nova-serialproxy (or `berth server console`) connects (nova's [serial_console] proxyclient_address). Keep it on an interface guests cannot reach.",
    ),
    proxy_clients: list(
      [],
      "Addresses a console connection that names no lease may come from: nova mode's consoles are port leases (nova-serialproxy of Zed cannot send a path first), which let the next connection to the instance's port through; list nova-serialproxy's hosts here. Empty: any address that reaches proxyclient_address. Connections naming a lease (`berth server console` standalone) are not restricted.",
    ),
    base_url: url(
      'ws://127.0.0.1:6083/',
      "The URL of nova-serialproxy that users are given, with ?token=... appended (nova's [serial_console] base_url; nova mode only).",
    ),
    token_ttl: int(
      600,
      "Seconds a console authorisation stays usable before its first connection (nova's [consoleauth] token_ttl for the token nova stores; the agent's one-time token expires with it). A connection once made lasts until either end closes it.",
      1,
      86400,
    ),
  },
} as const satisfies Record<string, Record<string, OptionSpec>>;
