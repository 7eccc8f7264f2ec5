import { invalidInput } from '../../common/errors.js';
import { AUTHORIZED_KEYS_TARGET, CONFIG_DRIVE_TARGET } from '../config-drive.js';

const MAX_LENGTH = 255;
/** Segments of letters, digits and `._-@+=`; nothing a shell, a mount option list or Docker's `-v` syntax reads specially. */
const SEGMENT = /^[A-Za-z0-9._@+=-]{1,128}$/;

/**
 * Where a volume may not be mounted, nor above: the kernel's and the engine's filesystems, the
 * files the engine writes into every container, and the config drive. A mount at or above one of
 * them would hide it from the guest or put a tenant's files where the host's are expected.
 */
export const RESERVED_MOUNT_POINTS: readonly string[] = [
  '/proc',
  '/sys',
  '/dev',
  '/etc/hosts',
  '/etc/hostname',
  '/etc/resolv.conf',
  '/run/secrets',
  CONFIG_DRIVE_TARGET,
  AUTHORIZED_KEYS_TARGET,
];

/** Root-level folders a mount would shadow with nothing: the guest's programs and libraries. */
const SYSTEM_FOLDERS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/usr', '/etc', '/boot', '/run'];

const within = (path: string, dir: string): boolean => path === dir || path.startsWith(`${dir}/`);

/**
 * Checks a mount point a caller gives: absolute, in plain segments (no `.`, `..`, empty or odd
 * ones), and neither `/` nor at, under or above a reserved path, nor one of the guest's system
 * folders. Returns it unchanged; INVALID_INPUT naming the field otherwise.
 */
export function validateMountPoint(v: unknown, field = 'mount_point'): string {
  const fail = (why: string): never => {
    throw invalidInput(`${field} ${why}`, { field });
  };
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_LENGTH) return fail(`must be a path of 1 to ${MAX_LENGTH} characters`);
  if (!v.startsWith('/')) return fail('must be an absolute path');
  if (v === '/') return fail('cannot be the root folder');
  const segments = v.slice(1).split('/');
  for (const s of segments) {
    if (s === '.' || s === '..') return fail('cannot contain . or .. segments');
    if (!SEGMENT.test(s)) return fail('must be made of segments of letters, digits and ._@+=- separated by single slashes');
  }
  for (const r of RESERVED_MOUNT_POINTS) {
    if (within(v, r) || within(r, v)) return fail(`cannot be at, under or above ${r}`);
  }
  if (SYSTEM_FOLDERS.includes(v)) return fail(`cannot be the system folder ${v}`);
  return v;
}
