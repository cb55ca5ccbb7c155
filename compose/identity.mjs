#!/usr/bin/env node
// Writes a libp2p identity key in the format layerd keeps at <data-dir>/p2p/identity.key (an Ed25519
// private key as libp2p's protobuf), and prints its peer id: a bootstrap peer needs an identity known
// before it starts, because every other node names it as /…/p2p/<peer id>.
//
//   node compose/identity.mjs FILE               a new random key (for a real cluster)
//   node compose/identity.mjs FILE --seed TEXT   a key derived from sha256(TEXT): anyone who reads TEXT
//                                                has the private key, so only for test networks
//   node compose/identity.mjs --peer-id FILE     prints the peer id of an existing key file
//
// Run it from a checkout after `npm install` (it uses the project's @libp2p packages).
import { generateKeyPair, generateKeyPairFromSeed, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const USAGE = 'usage: node compose/identity.mjs FILE [--seed TEXT] | --peer-id FILE';

function fail(message) {
  process.stderr.write(`identity: ${message}\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({ options: { seed: { type: 'string' }, 'peer-id': { type: 'string' } }, allowPositionals: true, strict: true });
} catch (err) {
  fail(`${err.message.split('\n')[0]}\n${USAGE}`);
}
const { values, positionals } = parsed;

if (values['peer-id'] !== undefined) {
  if (positionals.length > 0 || values.seed !== undefined) fail(USAGE);
  const key = privateKeyFromProtobuf(readFileSync(values['peer-id']));
  process.stdout.write(`${peerIdFromPrivateKey(key).toString()}\n`);
} else {
  if (positionals.length !== 1) fail(USAGE);
  const key =
    values.seed === undefined
      ? await generateKeyPair('Ed25519')
      : await generateKeyPairFromSeed('Ed25519', createHash('sha256').update(values.seed).digest());
  // 0o644, not layerd's 0o600: the file is bind-mounted into a container whose user is not the owner.
  writeFileSync(positionals[0], privateKeyToProtobuf(key), { mode: 0o644 });
  process.stdout.write(`${peerIdFromPrivateKey(key).toString()}\n`);
}
