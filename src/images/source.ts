import { ContentStore } from '../content';
import { BlobSource } from './walk';
import { Descriptor } from './types';
import { SizeMismatchError } from '../errors';
import { parseDocument } from './schema';

/** The local content store as a BlobSource for walking images. */
export function contentSource(content: ContentStore): BlobSource {
  return {
    has: (d: Descriptor) => content.has(d.digest),
    async readJSON<T>(d: Descriptor, what = `${d.mediaType} ${d.digest}`): Promise<T> {
      const info = content.info(d.digest);
      if (info && info.size !== d.size) throw new SizeMismatchError(what, d.size, info.size);
      return parseDocument(await content.readBuffer(d.digest), what) as T;
    },
  };
}
