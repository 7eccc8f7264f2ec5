/**
 * The test cloud's Neutron intervals a boot on a Neutron network waits on, as configured and
 * whether in effect: the linuxbridge agent's `[agent] polling_interval` and neutron-server's
 * `[DEFAULT] send_events_interval` (both 2 s by default), read from the cloud's state directory.
 * A value written after the process started (tools/dev/cloud.sh writes the configs at each start)
 * is not in effect until Neutron starts again.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** A key of an ini file's section (first match), or null. */
function iniValue(text: string, section: string, key: string): string | null {
  let inSection = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const head = /^\[(.+)\]$/.exec(line);
    if (head) inSection = head[1]!.toLowerCase() === section.toLowerCase();
    else if (inSection) {
      const kv = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
      if (kv && kv[1] === key) return kv[2]!.trim();
    }
  }
  return null;
}

/** When a process of the cloud started (ms since the epoch), from its PID file; null if unknown. */
function startedAt(state: string, component: string): number | null {
  try {
    const pid = readFileSync(join(state, 'pids', component), 'utf8').trim();
    return statSync(`/proc/${pid}`).mtimeMs;
  } catch {
    return null;
  }
}

export interface NeutronInterval {
  name: string;
  seconds: number;
  /** false: the config changed after the process started. */
  inEffect: boolean | null;
}

export function neutronIntervals(state: string): NeutronInterval[] {
  const read = (file: string, section: string, key: string, component: string, name: string): NeutronInterval => {
    const path = join(state, 'neutron', file);
    let value: string | null = null;
    let written = 0;
    try {
      value = iniValue(readFileSync(path, 'utf8'), section, key);
      written = statSync(path).mtimeMs;
    } catch {
      // no such file: the default
    }
    const started = startedAt(state, component);
    return { name, seconds: value === null ? 2 : Number(value), inEffect: started === null ? null : written <= started };
  };
  return [
    read('linuxbridge_agent.ini', 'agent', 'polling_interval', 'neutron-linuxbridge-agent', 'linuxbridge agent [agent] polling_interval'),
    read('neutron.conf', 'DEFAULT', 'send_events_interval', 'neutron-server', 'neutron-server send_events_interval'),
  ];
}

/** One line for a benchmark's output. */
export function describeIntervals(list: NeutronInterval[]): string {
  return list.map((i) => `${i.name} = ${i.seconds} s${i.inEffect === false ? ' (written after the process started: not in effect)' : ''}`).join('; ');
}
