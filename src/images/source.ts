import { ContentStore } from '../content';
import { BlobSource } from './walk';
import { Descriptor } from './types';
import { SizeMismatchError } from '../errors';

/** The local content store as a BlobSource for walking images. */
export function contentSource(content: ContentStore): BlobSource {
  return {
    has: (d: Descriptor) => content.has(d.digest),
    async readJSON<T>(d: Descriptor): Promise<T> {
      const info = content.info(d.digest);
      if (info && info.size !== d.size) throw new SizeMismatchError(`${d.mediaType} ${d.digest}`, d.size, info.size);
      return content.readJSON<T>(d.digest);
    },
  };
}
