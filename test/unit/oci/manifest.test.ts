import { describe, expect, it } from 'vitest';
import { digestOf } from '../../../src/oci/digest.js';
import { OciError } from '../../../src/oci/errors.js';
import { MAX_MANIFEST_BYTES, MediaType, bareMediaType, parseManifest } from '../../../src/oci/manifest.js';

const blob = (s: string) => ({ digest: digestOf(Buffer.from(s)), size: s.length });
const config = { mediaType: 'application/vnd.oci.image.config.v1+json', ...blob('config') };
const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob('layer') };

function bytes(doc: unknown): Buffer {
  return Buffer.from(JSON.stringify(doc));
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as OciError).code;
  }
  return undefined;
}

describe('parseManifest', () => {
  it('parses an OCI image manifest: config and layers are its blobs', () => {
    const m = parseManifest(bytes({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] }), MediaType.OciManifest);
    expect(m.mediaType).toBe(MediaType.OciManifest);
    expect(m.isIndex).toBe(false);
    expect(m.blobs.map((b) => b.digest)).toEqual([config.digest, layer.digest]);
    expect(m.artifactType).toBe(config.mediaType);
  });

  it('parses Docker schema 2 manifests and manifest lists', () => {
    const dockerConfig = { ...config, mediaType: 'application/vnd.docker.container.image.v1+json' };
    const m = parseManifest(bytes({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: dockerConfig, layers: [] }), MediaType.DockerManifest);
    expect(m.mediaType).toBe(MediaType.DockerManifest);
    const child = { mediaType: MediaType.DockerManifest, ...blob('child'), platform: { os: 'linux', architecture: 'amd64' } };
    const list = parseManifest(bytes({ schemaVersion: 2, mediaType: MediaType.DockerManifestList, manifests: [child] }), MediaType.DockerManifestList);
    expect(list.isIndex).toBe(true);
    expect(list.manifests[0]?.digest).toBe(child.digest);
    expect(list.blobs).toEqual([]);
  });

  it('infers the media type from the body when Content-Type is generic or absent', () => {
    const index = bytes({ schemaVersion: 2, manifests: [] });
    expect(parseManifest(index, undefined).mediaType).toBe(MediaType.OciIndex);
    expect(parseManifest(index, 'application/json').mediaType).toBe(MediaType.OciIndex);
    const manifest = bytes({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config, layers: [] });
    expect(parseManifest(manifest, 'application/octet-stream').mediaType).toBe(MediaType.DockerManifest);
  });

  it('keeps subject, artifactType and annotations', () => {
    const subject = { mediaType: MediaType.OciManifest, ...blob('subject') };
    const m = parseManifest(
      bytes({ schemaVersion: 2, mediaType: MediaType.OciManifest, artifactType: 'application/x.sbom', config, layers: [], subject, annotations: { a: 'b' } }),
      MediaType.OciManifest,
    );
    expect(m.subject?.digest).toBe(subject.digest);
    expect(m.artifactType).toBe('application/x.sbom');
    expect(m.annotations).toEqual({ a: 'b' });
  });

  it('skips non-distributable layers when listing required blobs', () => {
    const foreign = { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', ...blob('foreign') };
    const m = parseManifest(bytes({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config, layers: [foreign, layer] }), MediaType.DockerManifest);
    expect(m.blobs.map((b) => b.digest)).toEqual([config.digest, layer.digest]);
  });

  it.each([
    ['not JSON', Buffer.from('{not json'), MediaType.OciManifest],
    ['an array', bytes([]), MediaType.OciManifest],
    ['schemaVersion 1', bytes({ schemaVersion: 1, name: 'x' }), undefined],
    ['schema 1 content type', bytes({ schemaVersion: 2 }), 'application/vnd.docker.distribution.manifest.v1+prettyjws'],
    ['wrong schemaVersion', bytes({ schemaVersion: 3, mediaType: MediaType.OciManifest, config, layers: [] }), MediaType.OciManifest],
    ['type mismatch', bytes({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }), MediaType.OciManifest],
    ['unknown type', bytes({ schemaVersion: 2, mediaType: 'application/x-whatever' }), 'application/x-whatever'],
    ['no layers', bytes({ schemaVersion: 2, mediaType: MediaType.OciManifest, config }), MediaType.OciManifest],
    ['bad descriptor digest', bytes({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { ...config, digest: 'sha256:nope' }, layers: [] }), MediaType.OciManifest],
    ['negative size', bytes({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { ...config, size: -1 }, layers: [] }), MediaType.OciManifest],
    ['index without manifests', bytes({ schemaVersion: 2, mediaType: MediaType.OciIndex }), MediaType.OciIndex],
  ])('rejects %s with MANIFEST_INVALID', (_label, body, type) => {
    expect(codeOf(() => parseManifest(body, type))).toBe('MANIFEST_INVALID');
  });

  it('refuses manifests over 4 MiB with 413', () => {
    try {
      parseManifest(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20), MediaType.OciManifest);
      expect.unreachable();
    } catch (err) {
      expect((err as OciError).status).toBe(413);
    }
  });

  it('strips media type parameters', () => {
    expect(bareMediaType('Application/JSON; charset=utf-8')).toBe('application/json');
    expect(bareMediaType(undefined)).toBeUndefined();
    expect(bareMediaType(' ')).toBeUndefined();
  });
});
