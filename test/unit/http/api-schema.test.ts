// The node compiles its /api body schemas without checking them against JSON Schema's meta-schema (that
// check cost ~0.1 CPU s of every start): it is made here once instead.
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { BODY_SCHEMAS, STRICT_AJV } from '../../../src/http/api-schema.js';

describe('/api body schemas', () => {
  it('are valid JSON Schema', () => {
    const ajv = new Ajv({ strict: true });
    for (const schema of BODY_SCHEMAS) expect(ajv.validateSchema(schema), JSON.stringify(ajv.errors)).toBe(true);
  });

  it('compile with the options the server uses, and still refuse what they refuse', () => {
    const ajv = new Ajv({ ...STRICT_AJV.customOptions });
    const [rollout, gc] = BODY_SCHEMAS.map((s) => ajv.compile(s));
    expect(rollout!({ image: 'seed/app:1' })).toBe(true);
    expect(rollout!({ image: 5 })).toBe(false);
    expect(rollout!({ image: 'seed/app:1', platfrom: 'linux/amd64' })).toBe(false);
    expect(gc!({})).toBe(true);
    expect(gc!({ dryRun: true })).toBe(false);
  });
});
