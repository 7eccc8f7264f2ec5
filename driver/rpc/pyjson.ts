/**
 * JSON as Python's json.dumps writes it (oslo_serialization.jsonutils): ", " and ": " separators
 * and non-ASCII characters as \uXXXX escapes. Peers parse JSON, so this is for fidelity with
 * captured messages rather than necessity.
 */
function str(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function pyJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string':
      return str(value);
    case 'number':
      if (Number.isNaN(value)) return 'NaN';
      if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return value.toString();
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(pyJson).join(', ')}]`;
      if (value instanceof Date) return str(value.toISOString().replace('Z', '').padEnd(26, '0'));
      const parts: string[] = [];
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v !== undefined) parts.push(`${str(k)}: ${pyJson(v)}`);
      }
      return `{${parts.join(', ')}}`;
    }
    default:
      return 'null';
  }
}
