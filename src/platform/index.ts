import { InvalidArgumentError } from '../errors';

/** OCI platform (the subset that matters for selection). */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386', i686: '386',
};

/** A platform field: a string, or absent. Documents are validated before they get here (src/images/schema.ts); this keeps a caller's slip a clear error. */
function field(p: Platform, name: 'os' | 'architecture' | 'variant'): string {
  const v = (p as unknown as Record<string, unknown>)[name];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new InvalidArgumentError(`invalid platform: ${name} must be a string, got ${Array.isArray(v) ? 'array' : typeof v}`);
  return v;
}

/** Normalise like containerd's platforms.Normalize: arm64 variant v8 is the default, arm defaults to v7. */
export function normalizePlatform(p: Platform): Platform {
  const os = field(p, 'os').toLowerCase();
  let architecture = field(p, 'architecture').toLowerCase();
  // Own keys only: "constructor" is an architecture name, not Object's constructor.
  if (Object.hasOwn(ARCH_ALIASES, architecture)) architecture = ARCH_ALIASES[architecture];
  let variant = field(p, 'variant').toLowerCase() || undefined;
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined;
  if (architecture === 'arm' && !variant) variant = 'v7';
  if (architecture === 'arm' && variant && /^\d+$/.test(variant)) variant = `v${variant}`;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  return out;
}

export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !x || !/^[a-zA-Z0-9_.-]+$/.test(x))) {
    throw new InvalidArgumentError(`invalid platform ${JSON.stringify(s)}: expected os/arch[/variant]`);
  }
  return normalizePlatform({ os: parts[0], architecture: parts[1], variant: parts[2] });
}

export function formatPlatform(p: Platform): string {
  const n = normalizePlatform(p);
  return n.variant ? `${n.os}/${n.architecture}/${n.variant}` : `${n.os}/${n.architecture}`;
}

export function hostPlatform(): Platform {
  const archMap: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return normalizePlatform({ os, architecture: archMap[process.arch] ?? process.arch });
}

export function platformsEqual(a: Platform, b: Platform): boolean {
  return formatPlatform(a) === formatPlatform(b);
}

/** Attestation manifests carry `unknown/unknown`; they are never a platform of their own. */
export function isUnknownPlatform(p: Platform | undefined): boolean {
  return !!p && p.os === 'unknown' && p.architecture === 'unknown';
}

/** A platform matcher: `matches(p)` for selection, `less` to order by preference. */
export interface PlatformMatcher {
  matches(p: Platform): boolean;
  /** Human-readable description for messages. */
  describe(): string;
}

export function exactMatcher(wanted: Platform[]): PlatformMatcher {
  const set = new Set(wanted.map(formatPlatform));
  return {
    matches: (p) => set.has(formatPlatform(p)),
    describe: () => [...set].join(', '),
  };
}

export const allPlatforms: PlatformMatcher = { matches: () => true, describe: () => 'all platforms' };

/**
 * Order platforms: the host platform first, then lexicographically by os/arch/variant.
 * This is the "platform order" CLI.md refers to.
 */
export function comparePlatforms(a: Platform, b: Platform, host: Platform = hostPlatform()): number {
  const fa = formatPlatform(a), fb = formatPlatform(b), fh = formatPlatform(host);
  if (fa === fb) return 0;
  if (fa === fh) return -1;
  if (fb === fh) return 1;
  return fa < fb ? -1 : 1;
}
