/**
 * tar: the one tar reader, the header encoder, and tar-split (exact layer reproduction).
 *
 * Format rules this module enforces (reading follows Go's archive/tar, what containerd and
 * skopeo use):
 *  - Blocks of 512 bytes; EOF at a header boundary ends the archive; a zero block followed by
 *    a non-zero block is an error; a bad header checksum is an error.
 *  - Numbers: size 0..2^53-1, uid/gid 0..2^32-2, from octal, GNU base-256 (two's complement,
 *    64-bit) or PAX (decimal digits only); anything else is a header error naming the entry.
 *    mtime may be negative or fractional (PAX, base-256) and is reported verbatim.
 *  - Names: GNU `L`/`K` long names and PAX `path`/`linkpath` override the ustar fields; names
 *    are latin1 "binary strings" so they round-trip byte-exactly. PAX `x` applies to the next
 *    entry, `g` to all that follow; special files are capped at 1 MiB (Go's maxSpecialFileSize).
 *  - Header-only types (links, dirs, devices, fifos) have no payload whatever their size says;
 *    unknown entry types (e.g. GNU sparse) are refused.
 *  - The reader only moves forward: every step consumes at least one byte (asserted), so no
 *    header can rewind it; payloads stream to the entry's sink and are never buffered.
 * Files: `parse.ts` (reader), `header.ts` (encoder), `tarsplit.ts` (record a layer's non-payload
 * bytes while applying it, regenerate the identical tar from the record plus the files).
 */
export { TarParser, parseNumeric, parsePax, roundUp, BLOCK, MAX_SIZE, MAX_ID } from './parse';
export type { TarHeader, TarHandler, PayloadSink, TarType } from './parse';
export { encodeHeader, padding, END_OF_ARCHIVE } from './header';
export type { EncodeHeader } from './header';
export { SplitRecorder, finalizeRecord, readRecord } from './tarsplit';
export { fsPath, removeTree, syncTreeFiles, walkTree } from './fspath';
export type { TreeVisitor } from './fspath';
export type { PayloadLocation } from './tarsplit';
