/**
 * The streaming zstd decoder that honours backpressure, as a factory with no free variables.
 *
 * zstd-napi's DecompressStream decodes each input chunk to its end and pushes every output
 * buffer at once, so a 19 KB frame of zeros queues 512 MiB. This decoder produces one output
 * buffer (`dStreamOutSize`, 128 KiB) at a time and, when `push()` says the reader is full,
 * stops until `_read()` asks for more; the frame's window is capped at `windowLogMax`. Memory is
 * the window plus one output buffer, whatever the frame decompresses to.
 *
 * Why a factory: codecs.ts builds its `ZstdDecompressStream` from it, and the transcoding
 * decoder thread (plain JavaScript evaluated from a string, see transcode.ts) builds the very
 * same class from this function's source (`String(defineZstdDecoder)`), so the two never
 * diverge. Hence: no imports used inside, no helpers outside, everything it needs is a parameter.
 */
import type { Transform } from 'node:stream';
import type * as ZstdBinding from 'zstd-napi/binding';

/** `String` for the truncation message; an Error thrown by the binding otherwise. */
export type ZstdErrorMapper = (e: Error | string) => Error;

/** The class a factory call returns: a Transform from zstd frames to their bytes. */
export type ZstdDecoderClass = new () => Transform;

export function defineZstdDecoder(
  TransformBase: typeof Transform, binding: typeof ZstdBinding, windowLogMax: number, mapError: ZstdErrorMapper,
): ZstdDecoderClass {
  return class ZstdDecompressStream extends TransformBase {
    dctx = new binding.DCtx();
    src: Buffer | undefined = undefined;
    cb: ((err?: Error | null) => void) | undefined = undefined;
    inFrame = false;
    waiting = false;

    constructor() {
      super({ readableHighWaterMark: 1024 * 1024 });
      this.dctx.setParameter(binding.DParameter.windowLogMax, windowLogMax);
    }

    override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
      this.src = chunk;
      this.cb = cb;
      this.step();
    }

    override _read(size: number): void {
      if (this.waiting) {
        this.waiting = false;
        this.step();
      } else {
        super._read(size);
      }
    }

    override _flush(cb: (err?: Error | null) => void): void {
      if (this.inFrame) return cb(mapError('zstd stream is truncated (it ends in the middle of a frame)'));
      cb();
    }

    done(err?: Error): void {
      const cb = this.cb!;
      this.cb = undefined;
      this.src = undefined;
      cb(err);
    }

    step(): void {
      const out = binding.dStreamOutSize();
      for (;;) {
        const src = this.src!;
        const dst = Buffer.allocUnsafe(out);
        let ret: number;
        let produced: number;
        let consumed: number;
        try {
          [ret, produced, consumed] = this.dctx.decompressStream(dst, src);
        } catch (e) {
          return this.done(mapError(e as Error));
        }
        this.src = src.subarray(consumed);
        // More output may be pending inside zstd while the output buffer came back full.
        const finished = this.src.length === 0 && (produced < dst.length || ret === 0);
        if (finished) this.inFrame = ret !== 0;
        const more = produced > 0 ? this.push(dst.subarray(0, produced)) : true;
        if (finished) return this.done();
        if (!more) {
          this.waiting = true;
          return;
        }
      }
    }
  };
}
