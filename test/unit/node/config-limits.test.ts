import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseRate } from '../../../src/node/config.js';

describe('limit options', () => {
  it('reads rates in bytes or bits per second', () => {
    expect(parseRate('100MB/s')).toBe(100_000_000);
    expect(parseRate('50Mbit/s')).toBe(6_250_000);
    expect(parseRate('1Gbps')).toBe(125_000_000);
    expect(parseRate('1GiB/s')).toBe(2 ** 30);
    expect(parseRate('2500000')).toBe(2_500_000);
    expect(parseRate(' 10 MB/s ')).toBe(10_000_000);
    for (const bad of ['', 'fast', '0MB/s', '-5MB/s', '10MB/h', '10XB/s']) expect(() => parseRate(bad), bad).toThrow();
  });

  it('has the documented defaults', () => {
    const c = loadConfig();
    expect(c).toMatchObject({ maxUploadSessions: 100, httpIdleTimeout: 60_000, peerIdleTimeout: 45_000, maxStreamsPerPeer: 64, maxUploadsPerPeer: 8 });
    expect(c.maxUploadBytes).toBeUndefined();
    expect(c.maxUploadRate).toBeUndefined();
    expect(c.maxUploadRatePerPeer).toBeUndefined();
  });

  it('takes each limit from flags and environment, and names the key of a bad value', () => {
    const c = loadConfig({
      flags: { 'max-upload-bytes': '1GiB', 'max-upload-sessions': '3', 'http-idle-timeout': '2s', 'peer-idle-timeout': '500ms', 'max-streams-per-peer': '4' },
      env: { LAYERD_MAX_UPLOAD_RATE: '80Mbit/s', LAYERD_MAX_UPLOAD_RATE_PER_PEER: '1MB/s' },
    });
    expect(c).toMatchObject({ maxUploadBytes: 2 ** 30, maxUploadSessions: 3, httpIdleTimeout: 2000, peerIdleTimeout: 500, maxStreamsPerPeer: 4, maxUploadRate: 10_000_000, maxUploadRatePerPeer: 1_000_000 });
    expect(loadConfig({ flags: { 'http-idle-timeout': '0' } }).httpIdleTimeout).toBe(0);
    for (const [name, value] of [['max-upload-rate', 'lots'], ['max-streams-per-peer', '0'], ['max-upload-bytes', '0'], ['peer-idle-timeout', 'soon']]) {
      let err: unknown;
      try {
        loadConfig({ flags: { [name!]: value } });
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe(name);
    }
  });
});
