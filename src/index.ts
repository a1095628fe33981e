/**
 * imgtool public API. Commands use only what is exported here.
 */
export * from './errors';
export * from './digest';
export * from './reference';
export * from './platform';
export * from './images/mediatypes';
export * from './images/types';
export { ImageStore, ImageRecord } from './images/store';
export * from './images/walk';
export { ContentStore, ContentWriter, BlobInfo, WriterOptions, ResourceHolder, VerifyStream, MAX_JSON_SIZE } from './content';
export { Metadata, Db } from './metadata';
export * from './compression/codecs';
export { VariantStore, Variant } from './compression/variants';
export { Store, defaultRoot } from './store';
export * from './progress';
export { ImgtoolCommand } from './cli/base';
export { terminalProgress, fmtBytes } from './cli/progress';
export { contentSource } from './images/source';
export * from './images/ops';
export { Flags, Args } from '@oclif/core';
