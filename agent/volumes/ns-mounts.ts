import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { mountPointsOf } from './loop-devices.js';

/**
 * Mounts into a running container's mount namespace, for volumes attached to a running instance
 * (hot attach). The container's own programs are never run: a host process takes a copy of the
 * volume's host mount (open_tree), enters the container's mount namespace (setns) and attaches the
 * copy at the mount point (move_mount); paths are resolved inside the container's root, so a
 * symbolic link of the guest cannot lead outside it.
 */
export interface NamespaceMounts {
  /** Mounts host folder `source` at `target` in the mount namespace of process `pid`; one already there is left. */
  mount(pid: number, source: string, target: string): Promise<void>;
  /** Unmounts `target` there (lazily, as the guest may be using it); one not mounted is fine. */
  unmount(pid: number, target: string): Promise<void>;
}

/**
 * The syscalls through Python's ctypes (Linux ≥ 5.2; x86_64 numbers): Node cannot make them, and
 * util-linux has no command for a mount into another namespace from outside it. Everything the
 * script needs is imported before it enters the namespace, so nothing of the guest's is loaded.
 */
const SCRIPT = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def check(r, what):
    if r < 0:
        sys.stderr.write(what + ': ' + os.strerror(ctypes.get_errno()) + '\\n')
        sys.exit(1)
    return r
op, pid, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ns = os.open('/proc/%d/ns/mnt' % pid, os.O_RDONLY | os.O_CLOEXEC)
if op == 'mount':
    tree = check(libc.syscall(428, -100, sys.argv[4].encode(), 1 | 0o2000000), 'open_tree')
check(libc.setns(ns, 0x00020000), 'setns')
os.chdir('/')
if op == 'mount':
    os.makedirs(target, mode=0o755, exist_ok=True)
    if os.path.realpath(target) != target:
        sys.stderr.write('the mount point goes through a symbolic link of the guest\\n')
        sys.exit(1)
    check(libc.syscall(429, tree, b'', -100, target.encode(), 4), 'move_mount')
else:
    check(libc.umount2(target.encode(), 2), 'umount')
`;

export type RunPython = (args: readonly string[]) => Promise<void>;

export const PYTHON = '/usr/bin/python3';

/** `-I -S`: no environment, no user site, no site module: only the standard library's own files. */
const runPython: RunPython = (args) =>
  new Promise((resolve, reject) => {
    execFile(PYTHON, ['-I', '-S', '-c', SCRIPT, ...args], { timeout: 30_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`mount in a container's namespace failed: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });

export class PythonNamespaceMounts implements NamespaceMounts {
  constructor(
    private readonly run: RunPython = runPython,
    /** The mount points process `pid` sees (from the host's /proc). */
    private readonly mountsOf: (pid: number) => Promise<Set<string>> = async (pid) => mountPointsOf(await readFile(`/proc/${pid}/mountinfo`, 'utf8')),
  ) {}

  async mount(pid: number, source: string, target: string): Promise<void> {
    if ((await this.mountsOf(pid)).has(target)) return;
    await this.run(['mount', String(pid), target, source]);
  }

  async unmount(pid: number, target: string): Promise<void> {
    if (!(await this.mountsOf(pid)).has(target)) return;
    await this.run(['umount', String(pid), target]);
  }
}
