/**
 * Error types shared by every module. Each carries a stable `code` so callers
 * (and the CLI) can tell classes of failure apart without parsing messages.
 */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'INVALID_ARGUMENT'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'INVALID_ARCHIVE'
  | 'MISSING_CONTENT'
  | 'UNSAFE_PATH'
  | 'PRECONDITION'
  | 'CANCELLED'
  | 'REGISTRY'
  | 'UNAUTHORIZED'
  | 'INTERNAL';

export class ImgtoolError extends Error {
  readonly code: ErrorCode;
  /** Extra lines shown after the one-line message (e.g. every missing blob). */
  readonly details: string[];
  constructor(code: ErrorCode, message: string, details: string[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImgtoolError';
    this.code = code;
    this.details = details;
  }
}

export class NotFoundError extends ImgtoolError {
  constructor(message: string, details: string[] = []) {
    super('NOT_FOUND', message, details);
    this.name = 'NotFoundError';
  }
}

export class InvalidArgumentError extends ImgtoolError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
    this.name = 'InvalidArgumentError';
  }
}

export class DigestMismatchError extends ImgtoolError {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string, what = 'blob') {
    super('DIGEST_MISMATCH', `${what}: digest mismatch: expected ${expected}, got ${actual}`);
    this.name = 'DigestMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

export class SizeMismatchError extends ImgtoolError {
  constructor(what: string, expected: number, actual: number) {
    super('SIZE_MISMATCH', `${what}: size mismatch: expected ${expected} bytes, got ${actual}`);
    this.name = 'SizeMismatchError';
  }
}

export class InvalidArchiveError extends ImgtoolError {
  constructor(message: string, details: string[] = []) {
    super('INVALID_ARCHIVE', message, details);
    this.name = 'InvalidArchiveError';
  }
}

export class MissingContentError extends ImgtoolError {
  constructor(message: string, details: string[] = []) {
    super('MISSING_CONTENT', message, details);
    this.name = 'MissingContentError';
  }
}

export class UnsafePathError extends ImgtoolError {
  constructor(message: string) {
    super('UNSAFE_PATH', message);
    this.name = 'UnsafePathError';
  }
}

/** Input over one of the hostile-input limits (src/limits): names the limit and its flag. */
export class LimitExceededError extends ImgtoolError {
  constructor(message: string) {
    super('INVALID_ARCHIVE', message);
    this.name = 'LimitExceededError';
  }
}

/** The operation was interrupted (SIGINT/SIGTERM in the CLI; see src/cancel). */
export class CancelledError extends ImgtoolError {
  constructor(message: string) {
    super('CANCELLED', message);
    this.name = 'CancelledError';
  }
}

/** A registry refused or failed a request (src/registry); `status` is the HTTP status when there was one. */
export class RegistryError extends ImgtoolError {
  readonly status?: number;
  constructor(message: string, opts: { status?: number; code?: ErrorCode; details?: string[] } = {}) {
    super(opts.code ?? (opts.status === 401 || opts.status === 403 ? 'UNAUTHORIZED' : opts.status === 404 ? 'NOT_FOUND' : 'REGISTRY'), message, opts.details ?? []);
    this.name = 'RegistryError';
    this.status = opts.status;
  }
}

export function isImgtoolError(e: unknown): e is ImgtoolError {
  return e instanceof ImgtoolError;
}
