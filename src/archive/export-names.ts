/**
 * `save`, step 1: what the user typed -> a stored image and the name written into the archive.
 * A tag names itself; an image found by digest is named `repository@digest` (which pins that
 * content: its target must not change); `repo@sha256:…` for content stored under another name
 * of the same repository is accepted as that digest-pinned name.
 */
import type { Store } from '../store';
import { ImageRecord } from '../images/store';
import { parseReference, repositoryName, normalizeReference } from '../reference';

export interface Named {
  requested: string;
  name: string;
  rec: ImageRecord;
  /** Named by digest: its target must not change. */
  pinned: boolean;
}

/** Resolve what the user typed to a stored image and the name to write into the archive. */
export function resolveName(store: Store, input: string): Named {
  let rec: ImageRecord;
  try {
    rec = store.images.resolve(input);
  } catch (e) {
    // `repo@sha256:…` (or `repo:tag@sha256:…`) for content stored under another name of
    // the same repository: that digest-pinned name is what goes into the archive.
    let ref;
    try {
      ref = parseReference(input);
    } catch {
      throw e;
    }
    if (!ref.digest) throw e;
    const repo = repositoryName(ref);
    const recs = store.images.list().filter((r) => r.target.digest === ref.digest);
    const same = recs.find((r) => {
      try {
        return repositoryName(parseReference(r.name)) === repo;
      } catch {
        return false;
      }
    });
    const found = same ?? recs[0];
    if (!found) throw e;
    return { requested: input, name: normalizeReference(input), rec: found, pinned: true };
  }
  let byName = !!store.images.get(input);
  if (!byName) {
    try {
      byName = !!store.images.get(normalizeReference(input));
    } catch {
      /* not a reference: looked up by digest */
    }
  }
  if (byName) return { requested: input, name: rec.name, rec, pinned: rec.name.includes('@') };
  // Found by digest: name it `repository@digest`, which pins exactly that content.
  let name: string;
  try {
    name = `${repositoryName(parseReference(rec.name))}@${rec.target.digest}`;
  } catch {
    name = rec.name;
  }
  return { requested: input, name, rec, pinned: true };
}

/** Names, sorted and de-duplicated, so argument order does not change the archive. */
export function resolveNames(store: Store, refs: string[]): Named[] {
  const byName = new Map<string, Named>();
  for (const r of refs) {
    const n = resolveName(store, r);
    const prev = byName.get(n.name);
    if (!prev || prev.rec.target.digest === n.rec.target.digest) byName.set(n.name, prev ?? n);
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
