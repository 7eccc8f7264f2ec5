/** What a redacted secret is replaced with. */
export const REDACTED = '***';

/**
 * Secrets at least this long are replaced wherever they appear. A shorter one (a development
 * password like `guest` or `berth`) is also an ordinary word of the logs (`berth-compute
 * consuming`): it is replaced only where a secret stands, as a URL's password (`:guest@`) or as a
 * whole JSON string value (`"guest"`).
 */
export const ANYWHERE_MIN_LENGTH = 8;

/**
 * A function that replaces the given secrets in a text by `***`: as written, as JSON writes them
 * inside a string (log lines are JSON) and percent-encoded (as in a URL).
 */
export function redactor(secrets: Iterable<string>): (text: string) => string {
  const anywhere = new Set<string>();
  const placed = new Set<string>();
  for (const secret of secrets) {
    if (secret === '') continue;
    const forms = [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)];
    for (const form of forms) (secret.length >= ANYWHERE_MIN_LENGTH ? anywhere : placed).add(form);
  }
  const alternatives: string[] = [];
  // Longest first, so a secret that contains another is replaced whole.
  const longestFirst = (set: Set<string>) => [...set].sort((a, b) => b.length - a.length).map(escapeRegExp);
  if (placed.size) {
    const short = longestFirst(placed).join('|');
    alternatives.push(`(?<=:)(?:${short})(?=@)`, `(?<=")(?:${short})(?=")`);
  }
  if (anywhere.size) alternatives.push(longestFirst(anywhere).join('|'));
  if (!alternatives.length) return (text) => text;
  const pattern = new RegExp(alternatives.join('|'), 'g');
  return (text) => text.replace(pattern, REDACTED);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
