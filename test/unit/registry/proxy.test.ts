/** NO_PROXY matching and proxy selection as Go's httpproxy / curl read them (src/registry/proxy.ts). */
import { bypassProxy, proxyConfig, proxyFor, proxyAuthorization, proxyLabel } from '../../../src/registry/proxy';
import { InvalidArgumentError } from '../../../src/errors';

const u = (s: string) => new URL(s);

describe('NO_PROXY', () => {
  it.each([
    ['https://reg.example.com/v2/', 'reg.example.com', true],
    ['https://reg.example.com/v2/', 'example.com', true], // a domain matches its subdomains
    ['https://example.com/v2/', '.example.com', false], // .domain: only subdomains
    ['https://a.example.com/v2/', '.example.com', true],
    ['https://a.example.com/v2/', '*.example.com', true],
    ['https://notexample.com/v2/', 'example.com', false],
    ['https://REG.Example.com/v2/', 'reg.EXAMPLE.com', true],
    ['https://reg.example.com:5000/v2/', 'reg.example.com:5000', true],
    ['https://reg.example.com:5001/v2/', 'reg.example.com:5000', false],
    ['https://reg.example.com/v2/', 'reg.example.com:443', true], // default port
    ['http://reg.example.com/v2/', 'reg.example.com:443', false],
    ['https://127.0.0.1:5000/v2/', '127.0.0.1', true],
    ['https://127.0.0.1:5000/v2/', '127.0.0.2', false],
    ['https://127.0.0.1:5000/v2/', '127.0.0.0/8', true],
    ['https://10.1.2.3/v2/', '10.0.0.0/8', true],
    ['https://11.1.2.3/v2/', '10.0.0.0/8', false],
    ['https://[::1]:5000/v2/', '::1', true],
    ['https://[::1]:5000/v2/', '[::1]:5000', true],
    ['https://[::1]:5000/v2/', '::1/128', true],
    ['https://[0:0::1]/v2/', '::1', true],
    ['https://anything.io/v2/', '*', true],
    ['https://anything.io/v2/', 'a.com, ,b.com  anything.io', true],
    ['https://anything.io/v2/', '', false],
    ['https://localhost:5000/v2/', 'example.com', false], // loopback is proxied unless listed (curl, not Go)
  ])('%s with NO_PROXY=%j -> bypass %s', (url, np, want) => {
    expect(bypassProxy(u(url), np)).toBe(want);
  });
});

describe('proxy selection', () => {
  it('takes HTTPS_PROXY for https and HTTP_PROXY for http, upper case first, no fallback between them', () => {
    const cfg = proxyConfig({ HTTPS_PROXY: 'http://up:3128', https_proxy: 'http://low:3128', http_proxy: 'plain:8080', no_proxy: 'skip.me' });
    expect(proxyFor(u('https://r.io/v2/'), cfg)?.host).toBe('up:3128');
    expect(proxyFor(u('http://r.io/v2/'), cfg)?.href).toBe('http://plain:8080/');
    expect(proxyFor(u('https://skip.me/v2/'), cfg)).toBeUndefined();
    expect(proxyFor(u('http://r.io/v2/'), proxyConfig({ HTTPS_PROXY: 'http://p:1' }))).toBeUndefined();
    expect(proxyFor(u('https://r.io/v2/'), proxyConfig({}))).toBeUndefined();
  });

  it('sends proxy credentials as Basic, never shows them', () => {
    const p = proxyConfig({ HTTPS_PROXY: 'http://us%40er:p%3Aw@proxy:3128' }).https!;
    expect(proxyAuthorization(p)).toBe(`Basic ${Buffer.from('us@er:p:w').toString('base64')}`);
    expect(proxyLabel(p)).toBe('http://proxy:3128');
    expect(proxyAuthorization(proxyConfig({ HTTPS_PROXY: 'http://proxy:3128' }).https!)).toBeUndefined();
  });

  it('refuses socks proxies with a clear error', () => {
    expect(() => proxyConfig({ HTTPS_PROXY: 'socks5://p:1080' })).toThrow(InvalidArgumentError);
    expect(() => proxyConfig({ HTTPS_PROXY: 'socks5://p:1080' })).toThrow(/HTTPS_PROXY: socks5 proxies are not supported/);
  });
});
