/** Output for people (tables) and for scripts (`-f json`). */
export type Format = 'table' | 'json' | 'value';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A boxed table like the openstack client's. */
export function printTable(columns: string[], rows: unknown[][]): void {
  const text = rows.map((r) => r.map(cell));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const row = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const out = [line, row(columns), line, ...text.map(row), line];
  process.stdout.write(`${out.join('\n')}\n`);
}

/** A Field/Value table of one object. */
export function printObject(obj: Record<string, unknown>, format: Format): void {
  if (format === 'json') return printJson(obj);
  printTable(['Field', 'Value'], Object.entries(obj).map(([k, v]) => [k, v]));
}

export function printList(columns: string[], items: Record<string, unknown>[], format: Format): void {
  if (format === 'json') return printJson(items);
  printTable(columns.map((c) => c.replace(/_/g, ' ').replace(/\b\w/g, (m) => m.toUpperCase())), items.map((i) => columns.map((c) => i[c])));
}

/** A spinner on stderr while waiting (only on a terminal). */
export function spinner(text: string): { update(t: string): void; stop(final?: string): void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: (f) => { if (f) process.stderr.write(`${f}\n`); } };
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let i = 0;
  let current = text;
  const t = setInterval(() => process.stderr.write(`\r${frames[i++ % frames.length]} ${current}\x1b[K`), 100);
  return {
    update: (s) => { current = s; },
    stop: (final) => { clearInterval(t); process.stderr.write(`\r\x1b[K${final ? `${final}\n` : ''}`); },
  };
}
