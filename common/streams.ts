/** What is needed of a writable stream (node's, or streamx's as tar-stream uses). */
interface WritableLike {
  readonly destroyed: boolean;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * Resolves once `stream` can take more ('drain') or never will ('close', after an error or a
 * destroy), with both listeners removed: a writer told to wait by write() returning false.
 */
export function drainedOrClosed(stream: WritableLike): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
