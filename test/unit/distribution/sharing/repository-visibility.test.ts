// --private-repos prefixes: whole path components, `*` for all, bad prefixes refused.
import { describe, expect, it } from 'vitest';
import { RepositoryVisibility, parseRepositoryPrefix } from '../../../../src/distribution/sharing/repository-visibility.js';

describe('repository prefixes', () => {
  it('match whole path components', () => {
    const v = new RepositoryVisibility(['team/secret', 'ops/']);
    expect(v.hasPrivate).toBe(true);
    for (const n of ['team/secret', 'team/secret/app', 'team/secret/a/b', 'ops/tool', 'ops']) expect(v.isPrivate(n), n).toBe(true);
    for (const n of ['team/secretive', 'team/secre', 'team', 'other/team/secret', 'opsx/tool']) expect(v.isPrivate(n), n).toBe(false);
  });

  it('count a repository private when any of its names is (as written, or normalized)', () => {
    const v = new RepositoryVisibility(['library/internal']);
    expect(v.isPrivate('internal', 'library/internal')).toBe(true);
    // One decision on normalized names (issue 13, item 7): the short name alone is the same repository.
    expect(v.isPrivate('internal')).toBe(true);
    expect(v.isPrivate('internal/app')).toBe(false);
    expect(v.isPrivate('library/internal/app')).toBe(true);
    expect(new RepositoryVisibility(['internal']).isPrivate('library/internal')).toBe(true);
    expect(new RepositoryVisibility(['team']).isPrivate('library/team/x')).toBe(false);
  });

  it("take Docker Hub's short names and library/ names for the same repository", () => {
    // A mirror's cache holds library/nginx for what clients call nginx: the blob-sharing policy sees that name.
    expect(new RepositoryVisibility(['nginx']).isPrivate('library/nginx')).toBe(true);
    expect(new RepositoryVisibility(['library/nginx']).isPrivate('library/nginx')).toBe(true);
    expect(new RepositoryVisibility(['nginx']).isPrivate('library/nginx-extra')).toBe(false);
    expect(new RepositoryVisibility(['nginx']).isPrivate('library/nginx/sub')).toBe(false);
  });

  it('take * for every repository, and nothing for none', () => {
    expect(new RepositoryVisibility(['*']).isPrivate('any/thing')).toBe(true);
    expect(new RepositoryVisibility([]).hasPrivate).toBe(false);
    expect(new RepositoryVisibility([]).isPrivate('any/thing')).toBe(false);
  });

  it('normalize a trailing / or /* and refuse what is no repository name', () => {
    expect(parseRepositoryPrefix(' team/secret/* ')).toBe('team/secret');
    expect(parseRepositoryPrefix('team/secret/')).toBe('team/secret');
    for (const bad of ['', 'Team/Upper', 'team//x', '../etc', 'team/*/x', 'a b']) expect(() => parseRepositoryPrefix(bad), bad).toThrow(/invalid repository prefix/);
  });
});
