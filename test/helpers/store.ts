/**
 * A fresh store in a temporary directory for every test of a describe block (or file):
 *
 *   const t = useTempStore('imgtool-thing-');
 *   it('…', () => { t.store.content…; fs.writeFileSync(t.path('x.tar'), …); });
 *
 * The store lives in `t.dir/store`; `t.path(…)` names files beside it. Closed and removed after
 * each test.
 */
import * as path from 'node:path';
import { Store } from '../../src/store';
import { rmrf, tmpDir } from './cli';

export interface TempStore {
  /** The test's temporary directory. */
  readonly dir: string;
  /** The store, opened at `dir/store`. */
  readonly store: Store;
  /** A path inside `dir`. */
  path(...parts: string[]): string;
}

export function useTempStore(prefix = 'imgtool-test-'): TempStore {
  let dir = '';
  let store: Store | undefined;
  beforeEach(() => {
    dir = tmpDir(prefix);
    store = Store.open(path.join(dir, 'store'));
  });
  afterEach(() => {
    store?.close();
    store = undefined;
    if (dir) rmrf(dir);
  });
  return {
    get dir() {
      return dir;
    },
    get store() {
      if (!store) throw new Error('useTempStore: the store exists only while a test runs');
      return store;
    },
    path: (...parts: string[]) => path.join(dir, ...parts),
  };
}
