import { schema, type OptionSpec } from './options.js';

function wrap(text: string, width = 76): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(/\s+/)) {
    if (cur && cur.length + 1 + word.length > width) {
      lines.push(cur);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) lines.push(cur);
  return lines;
}

function showDefault(spec: OptionSpec): string {
  if (spec.sampleDefault !== undefined) return spec.sampleDefault;
  if (Array.isArray(spec.default)) return spec.default.join(',');
  return String(spec.default);
}

function typeLabel(spec: OptionSpec): string {
  if (spec.type === 'enum') return `one of ${spec.choices!.join(', ')}`;
  const range = [spec.min !== undefined ? `min ${spec.min}` : '', spec.max !== undefined && spec.max < Number.MAX_SAFE_INTEGER ? `max ${spec.max}` : '']
    .filter(Boolean)
    .join(', ');
  return range ? `${spec.type} (${range})` : spec.type;
}

/** The generated berth.conf.sample: every option, commented out, with its help and default. */
export function renderSample(): string {
  const out: string[] = [
    '# berth.conf sample: every option with its help and default, commented out.',
    '# Copy it to /etc/berth/berth.conf (or a file named by --config or $BERTH_CONFIG), uncomment',
    '# and change what you need, then run `berth conf check FILE`.',
    '# (Generated from conf/options.ts: change the options there, not this file; `berth conf sample` prints it.)',
    '',
  ];
  for (const [section, options] of Object.entries(schema as Record<string, Record<string, OptionSpec>>)) {
    out.push(`[${section}]`, '');
    for (const [key, spec] of Object.entries(options)) {
      for (const l of wrap(spec.help)) out.push(`# ${l}`);
      out.push(`# (${typeLabel(spec)})`, `#${key} = ${showDefault(spec)}`, '');
    }
  }
  return out.join('\n');
}

/** The configuration reference for docs/: one table per section. */
export function renderReference(): string {
  const out: string[] = [
    '# Configuration reference',
    '',
    'Generated from `conf/options.ts`; do not edit. Every option can also be set in the environment as `BERTH__<SECTION>__<KEY>` (e.g. `BERTH__DATABASE__CONNECTION`).',
    '',
  ];
  for (const [section, options] of Object.entries(schema as Record<string, Record<string, OptionSpec>>)) {
    out.push(`## [${section}]`, '', '| option | type | default | help |', '|---|---|---|---|');
    for (const [key, spec] of Object.entries(options)) {
      const def = showDefault(spec).replace(/\|/g, '\\|');
      out.push(`| \`${key}\` | ${typeLabel(spec)} | \`${def}\` | ${spec.help.replace(/\|/g, '\\|')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
