/** A strict INI reader for oslo.config-style files: sections, `key = value`, `#`/`;` comments. */
export interface IniEntry {
  section: string;
  key: string;
  value: string;
  line: number;
}

export class IniSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

/** Parses what it can; syntax errors are collected (one per bad line), not thrown. */
export function parseIniLenient(text: string): { entries: IniEntry[]; errors: IniSyntaxError[] } {
  const entries: IniEntry[] = [];
  const errors: IniSyntaxError[] = [];
  let section: string | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    const n = i + 1;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1]!.trim();
      return;
    }
    const eq = line.search(/[=:]/);
    if (eq <= 0) {
      errors.push(new IniSyntaxError(n, `line ${n}: expected "key = value" or "[section]", got ${JSON.stringify(line.slice(0, 80))}`));
      return;
    }
    if (section === null) {
      errors.push(new IniSyntaxError(n, `line ${n}: option outside any [section]`));
      return;
    }
    entries.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), line: n });
  });
  return { entries, errors };
}

/** Strict form: throws the first syntax error. */
export function parseIni(text: string): IniEntry[] {
  const { entries, errors } = parseIniLenient(text);
  if (errors.length) throw errors[0]!;
  return entries;
}
