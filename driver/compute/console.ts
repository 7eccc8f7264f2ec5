/**
 * nova's console output semantics (nova/compute/manager.py get_console_output and _tail_log,
 * over the libvirt driver's get_console_output): the newest MAX_CONSOLE_BYTES of the log, then,
 * with a tail length, the last `tail` pieces of that text split on newlines, joined by newlines.
 * A log ending in a newline has an empty last piece, so it yields tail - 1 lines and that empty
 * piece; a tail of 0 yields nothing; no tail yields the whole (capped) log.
 */
export const MAX_CONSOLE_BYTES = 100 * 1024;

/** Lines asked of the agent when nova asks for the whole log (the agent's most). */
export const WHOLE_LOG_LINES = 10_000;

/** How many lines the agent (Docker's tail, whole lines) must return for nova's tail to be cut from them. */
export function agentTailFor(tail: number | null): number {
  return tail === null ? WHOLE_LOG_LINES : tail;
}

export function novaConsoleTail(log: string, tail: number | null): string {
  const bytes = Buffer.from(log, 'utf8');
  // Byte-wise, as libvirt's last_bytes reads the console file; latin1 keeps one char per byte.
  const capped = bytes.subarray(Math.max(0, bytes.length - MAX_CONSOLE_BYTES)).toString('latin1');
  if (tail === 0) return '';
  const text = tail === null ? capped : capped.split('\n').slice(-tail).join('\n');
  return Buffer.from(text, 'latin1').toString('utf8');
}
