// Which repositories are private: those named by a --private-repos prefix. A prefix matches whole
// path components (`team/secret` covers `team/secret` and `team/secret/app`, never `team/secretive`);
// `*` covers every repository. Reads of a private repository need credentials, and a blob held only
// for private repositories is not offered to peers (see blob-sharing.ts).
//
// This is the one privacy decision every path asks (/v2 reads, the catalog, every /api answer, the
// blob-sharing policy), and it is taken on normalized names: a one-component name is the same
// repository as `library/<name>` (Docker Hub's rule, and how a mirror's cache files it), so a prefix
// written either way covers both, whichever form the caller or the store happens to use.
import { parseRepositoryName } from '../../oci/index.js';

export const ALL_REPOSITORIES = '*';

/** A prefix as configured: `*`, or a repository name, optionally ending in `/` or `/*` (same meaning). */
export function parseRepositoryPrefix(raw: string): string {
  const text = raw.trim();
  if (text === ALL_REPOSITORIES) return text;
  const bare = text.replace(/\/\*?$/, '');
  try {
    return parseRepositoryName(bare);
  } catch {
    throw new Error(`invalid repository prefix ${JSON.stringify(text)}: want a repository name like team/secret, or * for all`);
  }
}

export class RepositoryVisibility {
  private readonly prefixes: readonly string[];

  constructor(prefixes: readonly string[] = []) {
    this.prefixes = prefixes.map(parseRepositoryPrefix);
  }

  /** Whether any repository can be private at all (when not, every check is a no-op). */
  get hasPrivate(): boolean {
    return this.prefixes.length > 0;
  }

  /** Whether any of the names (a repository as a client wrote it, or as its registry normalizes it) is private. */
  isPrivate(...names: string[]): boolean {
    if (this.prefixes.length === 0) return false;
    return names.some((name) => this.prefixes.some((p) => covers(p, name)));
  }
}

/** Whether a prefix covers a name, both compared in their normalized form (see canonical()). */
function covers(prefix: string, name: string): boolean {
  if (prefix === ALL_REPOSITORIES) return true;
  const n = canonical(name);
  // Whole components below the prefix as written (`team` covers `team/app`), or the very repository
  // the prefix names in either form (`internal` is `library/internal`). `library/team/x` is not below
  // `team`: only a one-component name takes the implied `library/`.
  return n === canonical(prefix) || n.startsWith(`${prefix}/`);
}

/**
 * A repository's normalized name: Docker Hub's official images are `nginx` to clients and
 * `library/nginx` in a mirror's cache; both are `library/nginx` here.
 */
function canonical(name: string): string {
  return name.includes('/') ? name : `library/${name}`;
}
