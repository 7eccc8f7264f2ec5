/**
 * The flavors the CLI resolves by name: `[DEFAULT] flavors` entries NAME:VCPUS:RAM_MB[:DISK_GB],
 * as python-openstackclient's `--flavor NAME` picks one of nova's.
 */
export interface NamedFlavor {
  name: string;
  vcpus: number;
  memory_mb: number;
  root_gb: number;
}

const ENTRY = /^([A-Za-z0-9][A-Za-z0-9._-]{0,254}):([0-9]{1,6}):([0-9]{1,9})(?::([0-9]{1,7}))?$/;

/** The table, and a problem line for each entry that is malformed, sized zero or a repeated name. */
export function parseFlavors(entries: readonly string[]): { flavors: NamedFlavor[]; problems: string[] } {
  const flavors: NamedFlavor[] = [];
  const problems: string[] = [];
  for (const entry of entries) {
    const m = ENTRY.exec(entry);
    if (!m) {
      problems.push(`[DEFAULT] flavors: ${JSON.stringify(entry)} is not NAME:VCPUS:RAM_MB[:DISK_GB]`);
      continue;
    }
    const f = { name: m[1]!, vcpus: Number(m[2]), memory_mb: Number(m[3]), root_gb: m[4] === undefined ? 1 : Number(m[4]) };
    if (f.vcpus < 1 || f.memory_mb < 1 || f.root_gb < 1) problems.push(`[DEFAULT] flavors: ${JSON.stringify(entry)} has a size of 0`);
    else if (flavors.some((o) => o.name === f.name)) problems.push(`[DEFAULT] flavors: ${f.name} is named twice`);
    else flavors.push(f);
  }
  return { flavors, problems };
}
