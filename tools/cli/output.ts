/** Output for people (tables) and for scripts (`-f json|yaml|value|csv`), as the openstack client prints them. */
import { createRequire } from 'node:module';
import { UsageError } from './usage-error.js';

/** yaml, loaded when first needed (most commands never print or read YAML: the CLI starts faster). */
const toYaml = (value: unknown): string => (createRequire(import.meta.url)('yaml') as typeof import('yaml')).stringify(value);

export const FORMATS = ['table', 'json', 'yaml', 'value', 'csv'] as const;
export type Format = (typeof FORMATS)[number];

/** `-c COLUMN` (repeatable): the columns or fields to print, by key (`vm_state`) or heading (`"Vm State"`). */
let selected: string[] = [];
export function selectColumns(columns: string[] | undefined): void {
  selected = columns ?? [];
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** The heading of a column key: `vm_state` → `Vm State`. */
export function heading(key: string): string {
  return key.replace(/_/g, ' ').replace(/\b\w/g, (m) => m.toUpperCase());
}

/** The keys -c picks out of `available`, in the order given; an unknown one is bad usage. */
function pick(available: string[]): string[] {
  if (!selected.length) return available;
  return selected.map((want) => {
    const w = want.toLowerCase();
    const hit = available.find((k) => k.toLowerCase() === w || heading(k).toLowerCase() === w);
    if (!hit) throw new UsageError(`-c ${want}: no such column (columns: ${available.join(', ')})`);
    return hit;
  });
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

function csvField(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return `"${cell(v).replace(/"/g, '""')}"`;
}

function printCsv(columns: string[], rows: unknown[][]): void {
  process.stdout.write(`${[columns.map(csvField), ...rows.map((r) => r.map(csvField))].map((r) => r.join(',')).join('\n')}\n`);
}

function subset(obj: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, obj[k] ?? null]));
}

/**
 * One object. table: a Field/Value table; value: each value on its own line; csv: a header row and
 * one row; json and yaml: the object (every field unless -c names some).
 */
export function printObject(obj: Record<string, unknown>, format: Format): void {
  const keys = pick(Object.keys(obj));
  const shown = subset(obj, keys);
  switch (format) {
    case 'json':
      return printJson(shown);
    case 'yaml':
      process.stdout.write(toYaml(shown));
      return;
    case 'value':
      process.stdout.write(keys.map((k) => `${cell(obj[k])}\n`).join(''));
      return;
    case 'csv':
      return printCsv(keys, [keys.map((k) => obj[k])]);
    default:
      return printTable(
        ['Field', 'Value'],
        keys.map((k) => [k, obj[k]]),
      );
  }
}

/**
 * A list. table and csv have a heading row; value prints the cells of each row separated by
 * spaces; json and yaml print the items whole (every field), or only the -c columns.
 */
export function printList(columns: string[], items: Record<string, unknown>[], format: Format): void {
  const keys = pick(selected.length ? [...new Set([...columns, ...items.flatMap((i) => Object.keys(i))])] : columns);
  const rows = items.map((i) => keys.map((c) => i[c]));
  switch (format) {
    case 'json':
      return printJson(selected.length ? items.map((i) => subset(i, keys)) : items);
    case 'yaml':
      process.stdout.write(items.length ? toYaml(selected.length ? items.map((i) => subset(i, keys)) : items) : '[]\n');
      return;
    case 'value':
      process.stdout.write(rows.map((r) => `${r.map(cell).join(' ')}\n`).join(''));
      return;
    case 'csv':
      return printCsv(keys.map(heading), rows);
    default:
      return printTable(keys.map(heading), rows);
  }
}

/** A spinner on stderr while waiting (only on a terminal). */
export function spinner(text: string): { update(t: string): void; stop(final?: string): void } {
  if (!process.stderr.isTTY)
    return {
      update: () => undefined,
      stop: (f) => {
        if (f) process.stderr.write(`${f}\n`);
      },
    };
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let i = 0;
  let current = text;
  const t = setInterval(() => process.stderr.write(`\r${frames[i++ % frames.length]} ${current}\x1b[K`), 100);
  return {
    update: (s) => {
      current = s;
    },
    stop: (final) => {
      clearInterval(t);
      process.stderr.write(`\r\x1b[K${final ? `${final}\n` : ''}`);
    },
  };
}
