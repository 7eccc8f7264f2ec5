/** A strict INI reader for oslo.config-style files: sections, `key = value`, `#`/`;` comments. */
export interface IniEntry { section: string; key: string; value: string; line: number }

export class IniSyntaxError extends Error {
  constructor(readonly line: number, message: string) { super(message); }
}

export function parseIni(text: string): IniEntry[] {
  const entries: IniEntry[] = [];
  let section: string | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    const n = i + 1;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) { section = header[1]!.trim(); return; }
    const eq = line.search(/[=:]/);
    if (eq <= 0) throw new IniSyntaxError(n, `line ${n}: expected "key = value" or "[section]", got ${JSON.stringify(line.slice(0, 80))}`);
    if (section === null) throw new IniSyntaxError(n, `line ${n}: option outside any [section]`);
    entries.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), line: n });
  });
  return entries;
}
