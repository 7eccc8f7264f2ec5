import { TransportUrlError } from './transport-url.js';

/** oslo's ssl_version values, lower-cased (an empty value negotiates). */
export const SSL_VERSIONS = ['sslv23', 'tlsv1', 'tlsv1_1', 'tlsv1_2'] as const;

/** The queue options oslo refuses together. */
export function declareOptionsProblem(o: { rabbit_quorum_queue: boolean; rabbit_ha_queues: boolean }): string | null {
  return o.rabbit_quorum_queue && o.rabbit_ha_queues
    ? 'rabbit_quorum_queue and rabbit_ha_queues are both enabled: a queue is quorum or classic mirrored (HA), not both'
    : null;
}

const BOOL_TRUE = new Set(['1', 'true', 'yes', 'on']);
const BOOL_FALSE = new Set(['0', 'false', 'no', 'off']);

/**
 * The URL's query parameters over the options of the same name, as oslo's ConfigOptsProxy applies
 * them (`rabbit://h:5672/?ssl=1`); a value of the wrong type throws. Parameters naming no option
 * here are left alone (oslo takes options of other groups there too).
 */
export function applyQueryOverrides<T extends object>(options: T, query: Record<string, string>): T {
  const merged = { ...options } as Record<string, unknown>;
  for (const [k, v] of Object.entries(query)) {
    if (!(k in options)) continue;
    const current = merged[k];
    if (typeof current === 'boolean') {
      if (!BOOL_TRUE.has(v.toLowerCase()) && !BOOL_FALSE.has(v.toLowerCase())) throw new TransportUrlError(`transport_url: ?${k}=${v} is not a boolean`);
      merged[k] = BOOL_TRUE.has(v.toLowerCase());
    } else if (typeof current === 'number') {
      if (!/^-?\d+(\.\d+)?$/.test(v)) throw new TransportUrlError(`transport_url: ?${k}=${v} is not a number`);
      merged[k] = Number(v);
    } else merged[k] = v;
  }
  return merged as T;
}
