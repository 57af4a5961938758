import { describe, expect, it } from 'vitest';
import { parseListenAddress } from '../../lib/listen-address';

describe('listen addresses', () => {
  it('reads host:port, [v6]:port and :port (loopback)', () => {
    expect(parseListenAddress('0.0.0.0:9464', 'X')).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(parseListenAddress('[::1]:0', 'X')).toEqual({ host: '::1', port: 0 });
    expect(parseListenAddress(':7400', 'X')).toEqual({ host: '127.0.0.1', port: 7400 });
    expect(parseListenAddress(' node-a.local:65535 ', 'X')).toEqual({ host: 'node-a.local', port: 65535 });
  });

  it('refuses anything else, naming the setting and showing the form', () => {
    for (const bad of ['9464', '0.0.0.0', '0.0.0.0:65536', 'a:b', '::1:80', 'host:-1', '']) {
      expect(() => parseListenAddress(bad, '--listen'), bad).toThrow(/^--listen: ".*" is not host:port \(e\.g\. 0\.0\.0\.0:9464/);
    }
  });
});
