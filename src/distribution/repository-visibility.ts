// Which repositories are private: those named by a --private-repos prefix. A prefix matches whole
// path components (`team/secret` covers `team/secret` and `team/secret/app`, never `team/secretive`);
// `*` covers every repository. Reads of a private repository need credentials, and a blob held only
// for private repositories is not offered to peers (see blob-sharing.ts).
import { parseRepositoryName } from '../oci/reference.js';

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

  /** Whether any of the names (a repository as a client wrote it, and as its registry normalizes it) is private. */
  isPrivate(...names: string[]): boolean {
    return names.flatMap(aliases).some((name) => this.prefixes.some((p) => p === ALL_REPOSITORIES || name === p || name.startsWith(`${p}/`)));
  }
}

/**
 * A name and what else it may be written as: Docker Hub's official images are `nginx` to clients and
 * `library/nginx` in a mirror's cache, so a prefix of either form covers both.
 */
function aliases(name: string): string[] {
  const short = /^library\/([^/]+)$/.exec(name)?.[1];
  return short ? [name, short] : [name];
}
