import { Transform, type TransformCallback } from 'node:stream';
import { imageError } from '../errors.js';

/**
 * Passes a blob's bytes through until they pass the size its manifest declared, then fails with
 * BLOB_SIZE_MISMATCH: a registry (or a redirect target) sending more than it promised is cut off
 * at the chunk that goes over, instead of being read up to the global layer cap before the size is
 * compared. The bytes over the declared size are not passed on.
 */
export class DeclaredSizeLimit extends Transform {
  private received = 0;

  constructor(
    private readonly digest: string,
    private readonly declared: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.received += chunk.length;
    if (this.received > this.declared) {
      done(
        imageError(
          'BLOB_SIZE_MISMATCH',
          `blob ${this.digest} is larger than the ${this.declared} bytes its manifest declares: ${this.received} bytes received when the download was cut off`,
          { digest: this.digest, declared: this.declared, received: this.received },
        ),
      );
      return;
    }
    done(null, chunk);
  }
}

/** BLOB_SIZE_MISMATCH when the registry announces (Content-Length) another size than the manifest declares. */
export function checkAnnouncedSize(digest: string, declared: number, announced: number | null): void {
  if (announced === null || announced === declared) return;
  throw imageError(
    'BLOB_SIZE_MISMATCH',
    `blob ${digest}: the manifest declares ${declared} bytes, the registry announces ${announced} (Content-Length); nothing was read`,
    { digest, declared, announced, received: 0 },
  );
}
