// The private peer network's pure parts: the swarm key file parser, the key's redaction, the
// allow-list gater's decisions, peer id syntax, and the --psk-file / --allow-peer options.
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { MultiaddrConnection, PeerId } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { preSharedKey } from '@libp2p/pnet';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, optionsHelp } from '../../../src/node/config.js';
import { allowListGater, canonicalPeerId, type RefusedPeer } from '../../../src/p2p/allow-list.js';
import { PeerAccess } from '../../../src/p2p/peer-access.js';
import { parseSwarmKey, readSwarmKeyFile, SwarmKey } from '../../../src/p2p/swarm-key.js';
import { formatStatus } from '../../../src/cli/status.js';

const HEX = '0123456789abcdef'.repeat(4);
const GOOD = `/key/swarm/psk/1.0.0/\n/base16/\n${HEX}\n`;

async function dir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'layerd-pnet-unit-'));
}

function errorOf(fn: () => unknown): Error | undefined {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  return undefined;
}

describe('swarm key file parser', () => {
  it('reads the standard format and writes it back alike', () => {
    expect(parseSwarmKey(GOOD).fileText()).toBe(GOOD);
  });

  it('takes what editors do to a file: CRLF, a BOM, no final newline, trailing blank lines, spaces, upper-case hex', () => {
    const variants = [
      GOOD.replace(/\n/g, '\r\n'),
      `\uFEFF${GOOD}`,
      GOOD.trimEnd(),
      `${GOOD}\n\n`,
      `/key/swarm/psk/1.0.0/  \n/base16/\n  ${HEX}  \n`,
      GOOD.replace(HEX, HEX.toUpperCase()),
    ];
    for (const text of variants) expect(parseSwarmKey(text).equals(parseSwarmKey(GOOD)), JSON.stringify(text)).toBe(true);
  });

  it.each([
    ['', /first line must be \/key\/swarm\/psk\/1\.0\.0\//],
    [HEX, /first line must be/],
    ['/key/swarm/psk/2.0.0/\n/base16/\n' + HEX, /first line must be/],
    ['/key/swarm/psk/1.0.0/', /second line must be \/base16\//],
    ['/key/swarm/psk/1.0.0/\n/base64/\nAAAA', /unsupported key encoding "\/base64\/"/],
    ['/key/swarm/psk/1.0.0/\n/base16/', /64 hex digits, not 0/],
    ['/key/swarm/psk/1.0.0/\n/base16/\n' + HEX.slice(2), /64 hex digits, not 62/],
    ['/key/swarm/psk/1.0.0/\n/base16/\n' + HEX + 'ab', /64 hex digits, not 66/],
    ['/key/swarm/psk/1.0.0/\n/base16/\n' + HEX.slice(1) + 'g', /hexadecimal digits only/],
    ['/key/swarm/psk/1.0.0/\n/base16/\n' + HEX.slice(0, 32) + ' ' + HEX.slice(32), /hexadecimal digits only/],
    [GOOD + 'more\n', /unexpected text after the key/],
  ])('refuses %j with a reason', (text, reason) => {
    const err = errorOf(() => parseSwarmKey(text));
    expect(err?.message).toMatch(reason);
  });

  it('never puts key digits in an error message', () => {
    const err = errorOf(() => parseSwarmKey(`/key/swarm/psk/1.0.0/\n/base16/\n${HEX}0`));
    expect(err?.message).not.toContain(HEX.slice(0, 16));
  });

  it('gives @libp2p/pnet exactly the 32 key bytes the file names', () => {
    // The protector decodes the file at construction and keeps the key bytes it will encrypt with.
    const protector = preSharedKey({ psk: parseSwarmKey(GOOD.replace(HEX, HEX.toUpperCase())).fileBytes() })() as unknown as { psk: Uint8Array };
    expect(Buffer.from(protector.psk).toString('hex')).toBe(HEX);
  });

  it('generates distinct keys that parse back', () => {
    const a = SwarmKey.generate();
    const b = SwarmKey.generate();
    expect(a.equals(b)).toBe(false);
    expect(parseSwarmKey(a.fileText()).equals(a)).toBe(true);
    expect(a.fileText()).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/);
  });

  it('shows "[swarm key]" wherever a key could be printed or logged', () => {
    const key = parseSwarmKey(GOOD);
    for (const shown of [String(key), `${key}`, JSON.stringify({ key }), inspect({ nested: { key } }, { depth: 5 })]) {
      expect(shown).toContain('[swarm key]');
      expect(shown).not.toContain(HEX.slice(0, 16));
    }
  });
});

describe('swarm key file', () => {
  it('is read with its permission bits', async () => {
    const d = await dir();
    const path = join(d, 'swarm.key');
    await writeFile(path, GOOD, { mode: 0o640 });
    await chmod(path, 0o640);
    const file = readSwarmKeyFile(path);
    expect(file.key.equals(parseSwarmKey(GOOD))).toBe(true);
    expect(file.mode).toBe(0o640);
  });

  it('fails with one line naming the file: missing, a directory, a device, too big, malformed', async () => {
    const d = await dir();
    const big = join(d, 'big.key');
    await writeFile(big, GOOD + ' '.repeat(5000));
    const bad = join(d, 'bad.key');
    await writeFile(bad, 'hello\n');
    const sub = join(d, 'sub');
    await mkdir(sub);
    const cases: [string, RegExp][] = [
      [join(d, 'missing.key'), /cannot read .*missing\.key: ENOENT/],
      [sub, /is not a regular file/],
      ['/dev/zero', /is not a regular file/],
      [big, /too big for a swarm key file/],
      [bad, /bad\.key: not a swarm key/],
    ];
    for (const [path, reason] of cases) {
      const err = errorOf(() => readSwarmKeyFile(path));
      expect(err?.message, path).toMatch(reason);
      expect(err?.message.includes('\n'), path).toBe(false);
    }
  });
});

describe('peer id syntax', () => {
  let id: PeerId;
  beforeAll(async () => {
    id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
  });

  it('takes the base58 form and the CID form of one id, and gives both as libp2p prints it', () => {
    expect(canonicalPeerId(id.toString())).toBe(id.toString());
    expect(canonicalPeerId(id.toCID().toString())).toBe(id.toString());
    expect(canonicalPeerId('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N')).toBe('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N');
  });

  it('takes secp256k1 and RSA ids as libp2p makes them', async () => {
    for (const type of ['secp256k1', 'RSA'] as const) {
      const other = peerIdFromPrivateKey(await generateKeyPair(type as 'secp256k1'));
      expect(canonicalPeerId(other.toString()), type).toBe(other.toString());
    }
  });

  it.each(['', 'not-a-peer', '12D3KooW', '12D3KooWnope', '12D3KooWxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx0', 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi', '/ip4/127.0.0.1/tcp/1'])(
    'refuses %j',
    (text) => {
      expect(canonicalPeerId(text)).toBeUndefined();
    },
  );
});

describe('allow-list gater', () => {
  let allowed: PeerId;
  let stranger: PeerId;
  beforeAll(async () => {
    allowed = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
    stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
  });
  const conn = {} as MultiaddrConnection;

  it('refuses a stranger at every step, both ways, and reports each refusal', async () => {
    const refused: RefusedPeer[] = [];
    const g = allowListGater([allowed.toString()], (r) => refused.push(r));
    expect(await g.denyDialPeer!(stranger)).toBe(true);
    expect(await g.denyDialMultiaddr!(multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${stranger}`))).toBe(true);
    expect(await g.denyOutboundConnection!(stranger, conn)).toBe(true);
    expect(await g.denyOutboundEncryptedConnection!(stranger, conn)).toBe(true);
    expect(await g.denyInboundEncryptedConnection!(stranger, conn)).toBe(true);
    expect(await g.denyInboundUpgradedConnection!(stranger, conn)).toBe(true);
    expect(await g.denyOutboundUpgradedConnection!(stranger, conn)).toBe(true);
    expect(refused).toHaveLength(7);
    expect(new Set(refused.map((r) => r.peer))).toEqual(new Set([stranger.toString()]));
    expect(refused.find((r) => r.direction === 'inbound')).toEqual({ peer: stranger.toString(), direction: 'inbound', stage: 'handshake' });
  });

  it('lets a listed peer through at every step', async () => {
    const refused: RefusedPeer[] = [];
    const g = allowListGater([allowed.toString()], (r) => refused.push(r));
    expect(await g.denyDialPeer!(allowed)).toBe(false);
    expect(await g.denyDialMultiaddr!(multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${allowed}`))).toBe(false);
    expect(await g.denyOutboundConnection!(allowed, conn)).toBe(false);
    expect(await g.denyOutboundEncryptedConnection!(allowed, conn)).toBe(false);
    expect(await g.denyInboundEncryptedConnection!(allowed, conn)).toBe(false);
    expect(await g.denyInboundUpgradedConnection!(allowed, conn)).toBe(false);
    expect(await g.denyOutboundUpgradedConnection!(allowed, conn)).toBe(false);
    expect(refused).toEqual([]);
  });

  it('leaves an address without a peer id to the check after the handshake', async () => {
    const g = allowListGater([allowed.toString()]);
    expect(await g.denyDialMultiaddr!(multiaddr('/ip4/127.0.0.1/tcp/4001'))).toBe(false);
    // The inbound connection is anonymous before its handshake: no check can be made on it.
    expect(g.denyInboundConnection).toBeUndefined();
  });
});

describe('--psk-file and --allow-peer', () => {
  it('load the key file and peer ids from flags, the environment and the config file', async () => {
    const d = await dir();
    const path = join(d, 'swarm.key');
    await writeFile(path, GOOD, { mode: 0o600 });
    const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
    const fromFlags = loadConfig({ flags: { 'psk-file': path, 'allow-peer': [id.toString(), id.toCID().toString()] } });
    expect(fromFlags.pskFile?.key.equals(parseSwarmKey(GOOD))).toBe(true);
    expect(fromFlags.allowPeer).toEqual([id.toString()]);
    const fromEnv = loadConfig({ env: { LAYERD_PSK_FILE: path, LAYERD_ALLOW_PEER: `${id},${other}` } });
    expect(fromEnv.pskFile?.path).toBe(path);
    expect(fromEnv.allowPeer).toEqual([id.toString(), other.toString()]);
    const file = join(d, 'layerd.yml');
    await writeFile(file, `psk-file: ${path}\nallow-peer: [${id}]\n`);
    expect(loadConfig({ file }).allowPeer).toEqual([id.toString()]);
    expect(loadConfig().pskFile).toBeUndefined();
    expect(loadConfig().allowPeer).toEqual([]);
  });

  it('are ConfigErrors naming the option for a bad key file or peer id', async () => {
    const d = await dir();
    const bad = join(d, 'bad.key');
    await writeFile(bad, '/key/swarm/psk/1.0.0/\n/base16/\nabc\n');
    for (const [flags, key] of [
      [{ 'psk-file': join(d, 'missing') }, 'psk-file'],
      [{ 'psk-file': bad }, 'psk-file'],
      [{ 'psk-file': '' }, 'psk-file'],
      [{ 'allow-peer': ['12D3KooWnope'] }, 'allow-peer'],
    ] as const) {
      const err = errorOf(() => loadConfig({ flags }));
      expect(err, JSON.stringify(flags)).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe(key);
    }
  });

  it('appear in --help', () => {
    expect(optionsHelp()).toMatch(/--psk-file FILE .*layerd keygen.*LAYERD_PSK_FILE/);
    expect(optionsHelp()).toMatch(/--allow-peer PEERID .*repeatable.*LAYERD_ALLOW_PEER/);
  });
});

describe('layerd status', () => {
  it('says whether the network is private and how many peers the allow-list names', () => {
    const base = { version: '1', url: 'http://127.0.0.1:5000', peerId: '12D3KooWx', connectedPeers: 1 };
    expect(formatStatus({ ...base, privateNetwork: true, allowList: 2, refusedPeers: 3 })).toMatch(/network\s+private \(swarm key\), allow-list of 2 peers, 3 refused/);
    expect(formatStatus({ ...base, privateNetwork: false, allowList: 0, refusedPeers: 0 })).toMatch(/network\s+open \(no swarm key\), any peer/);
    expect(formatStatus(base)).not.toMatch(/network/);
  });
});

describe('peer access reporting', () => {
  function recorder() {
    const lines: Array<{ level: string; msg: string; obj: Record<string, unknown> }> = [];
    const at = (level: string) => (obj: object, msg: string) => lines.push({ level, msg, obj: obj as Record<string, unknown> });
    return { lines, log: { info: at('info'), warn: at('warn'), debug: at('debug') } };
  }
  const ID = '12D3KooWGRUVh7pWP2jVzh4ikV9WDJ2n2yUhmSQCNRnHkQjSLgxE';
  const OTHER = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq';

  it('warns about a key file others can read and a bootstrap peer the allow-list would refuse', () => {
    const { lines, log } = recorder();
    new PeerAccess({ keyFile: { path: '/k', mode: 0o644 }, allowPeers: [ID], bootstrap: [`/ip4/10.0.0.1/tcp/1/p2p/${ID}`, `/ip4/10.0.0.2/tcp/1/p2p/${OTHER}`] }, log);
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      'the swarm key file can be read by other users: chmod 600 it',
      'bootstrap peer is not on the allow-list: it will be refused',
    ]);
    expect(lines[1]!.obj.bootstrap).toContain(OTHER);
    const quiet = recorder();
    new PeerAccess({ keyFile: { path: '/k', mode: 0o600 }, allowPeers: [ID], bootstrap: [`/ip4/10.0.0.1/tcp/1/p2p/${ID}`] }, quiet.log);
    expect(quiet.lines).toEqual([]);
  });

  it('counts every refusal and logs each refused peer once at info', () => {
    const { lines, log } = recorder();
    const access = new PeerAccess({ allowPeers: [ID], bootstrap: [] }, log);
    for (let i = 0; i < 3; i++) access.refused({ peer: OTHER, direction: 'inbound', stage: 'handshake' });
    expect(access.status()).toEqual({ privateNetwork: false, allowList: 1, refusedPeers: 3 });
    expect(lines.filter((l) => l.level === 'info')).toHaveLength(1);
    expect(lines.filter((l) => l.level === 'debug')).toHaveLength(2);
  });

  it('warns once when a bootstrap peer keeps failing, naming the likely causes', () => {
    const { lines, log } = recorder();
    const access = new PeerAccess({ keyFile: { path: '/k', mode: 0o600 }, allowPeers: [], bootstrap: ['/ip4/10.0.0.1/tcp/1'] }, log);
    for (let i = 0; i < 12; i++) access.bootstrapDialFailed('/ip4/10.0.0.1/tcp/1', 'Missing newline');
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/--psk-file.*--allow-peer/);
    expect(lines.filter((l) => l.msg === 'bootstrap dial failed')).toHaveLength(12);
    expect(access.status()).toEqual({ privateNetwork: true, allowList: 0, refusedPeers: 0 });
  });
});
