import type { Endpoint } from './dispatcher.js';

/**
 * What integrators need to know of each RPC method beyond its arguments: call or cast, what it
 * does, the failures it answers with and the notifications it emits.
 */
export interface MethodDoc {
  kind: 'cast' | 'call' | 'cast or call';
  summary: string;
  errors?: string[];
  notifications?: string[];
}

/** An endpoint and how to find the doc of each of its methods. */
export interface DocumentedEndpoint {
  endpoint: Endpoint;
  docOf: (method: string) => MethodDoc | undefined;
}

/**
 * A Markdown reference of RPC endpoints: one table per namespace, methods sorted, arguments taken
 * from the endpoint definitions (so they cannot drift from what the dispatcher checks).
 */
export function renderReference(intro: readonly string[], endpoints: readonly DocumentedEndpoint[]): string {
  const out = [...intro];
  for (const { endpoint, docOf } of endpoints) {
    out.push(`## Namespace ${endpoint.namespace ? `\`${endpoint.namespace}\`` : "(none: nova's compute API)"}, version ${endpoint.version}`, '');
    out.push('| method | kind | arguments | what it does | failures | notifications |', '|---|---|---|---|---|---|');
    for (const [name, spec] of Object.entries(endpoint.methods).sort(([a], [b]) => a.localeCompare(b))) {
      const d = docOf(name);
      const args = [...spec.required.map((a) => `\`${a}\``), ...(spec.optional ?? []).map((a) => `\`${a}\`?`)].join(', ') || '—';
      out.push(
        `| \`${name}\` | ${d?.kind ?? '?'} | ${args} | ${d?.summary ?? ''} | ${(d?.errors ?? []).join(', ') || '—'} | ${(d?.notifications ?? []).map((n) => `\`${n}\``).join(', ') || '—'} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}
