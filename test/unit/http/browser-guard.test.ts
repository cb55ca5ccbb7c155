// Host and Origin as a browser (or a DNS-rebinding page) sends them.
import { describe, expect, it } from 'vitest';
import { isLoopbackName, isSameOrigin, parseHostHeader } from '../../../src/http/browser-guard.js';

describe('parseHostHeader', () => {
  it.each([
    ['localhost:5000', { name: 'localhost', port: 5000 }],
    ['LOCALHOST.', { name: 'localhost' }],
    ['127.0.0.1', { name: '127.0.0.1' }],
    ['[::1]:5000', { name: '::1', port: 5000 }],
    ['registry.example.com:443', { name: 'registry.example.com', port: 443 }],
  ])('%s', (value, want) => expect(parseHostHeader(value)).toEqual(want));

  it.each(['::1', '[::1', '[zz::1]', 'a b', 'user@localhost', 'localhost:x', 'localhost/x', ''])('refuses %j', (value) => expect(parseHostHeader(value)).toBeUndefined());
});

describe('isLoopbackName', () => {
  it('takes loopback names only', () => {
    for (const n of ['localhost', '127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1']) expect(isLoopbackName(n), n).toBe(true);
    for (const n of ['localhost.evil', '127.0.0.1.evil', '128.0.0.1', '0.0.0.0', '::', '10.0.0.1', 'evil']) expect(isLoopbackName(n), n).toBe(false);
  });
});

describe('isSameOrigin', () => {
  it('is the Host the request came with, or a loopback origin on its port', () => {
    expect(isSameOrigin('http://127.0.0.1:5000', '127.0.0.1:5000', 5000)).toBe(true);
    expect(isSameOrigin('http://localhost:5000', '127.0.0.1:5000', 5000)).toBe(true);
    expect(isSameOrigin('https://registry.example.com', 'registry.example.com', 5000)).toBe(true); // behind TLS
    expect(isSameOrigin('http://registry.example.com:8080', 'registry.example.com:8080', 5000)).toBe(true);
  });

  it('is nothing else', () => {
    expect(isSameOrigin('http://evil.example', '127.0.0.1:5000', 5000)).toBe(false);
    expect(isSameOrigin('http://127.0.0.1:5001', '127.0.0.1:5000', 5000)).toBe(false);
    expect(isSameOrigin('null', '127.0.0.1:5000', 5000)).toBe(false);
    expect(isSameOrigin('file://', '127.0.0.1:5000', 5000)).toBe(false);
    expect(isSameOrigin('http://registry.example.com', 'registry.example.com:8080', 8080)).toBe(false);
    expect(isSameOrigin('not a url', '127.0.0.1:5000', 5000)).toBe(false);
  });
});
