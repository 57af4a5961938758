/** The log's masking of credentials, and the Temporal logger's routing into the process's logger. */
import { describe, expect, it } from 'vitest';
import { scrub, scrubText } from '../../lib/log';

describe('credentials never reach a log line', () => {
  it("masks the password of any URL in a text, keeping the user and the host", () => {
    expect(scrubText('connecting to amqp://ms2m:s3cr3t@broker:5672/vh failed')).toBe('connecting to amqp://ms2m:***@broker:5672/vh failed');
    expect(scrubText('mgmt http://guest:guest@127.0.0.1:15672 and amqps://u:p%40ss@h')).toBe('mgmt http://guest:***@127.0.0.1:15672 and amqps://u:***@h');
    expect(scrubText('amqp://broker:5672 has no credentials')).toBe('amqp://broker:5672 has no credentials');
  });

  it('masks secret-named fields and URLs at any depth, errors included, cycles cut', () => {
    const cyclic: Record<string, unknown> = { url: 'amqp://a:b@h' };
    cyclic.self = cyclic;
    const out = scrub({
      amqpUrl: 'amqp://a:b@h',
      env: { MS2M_AMQP_URL: 'amqp://a:b@h', MS2M_SERVICE: 'game' },
      list: ['x', { token: 't0k3n' }],
      error: new Error('could not reach http://u:pw@host'),
      cyclic,
    }) as Record<string, any>;
    expect(out.amqpUrl).toBe('***');
    expect(out.env).toEqual({ MS2M_AMQP_URL: '***', MS2M_SERVICE: 'game' });
    expect(out.list).toEqual(['x', { token: '***' }]);
    expect(out.error.message).toBe('could not reach http://u:***@host');
    expect(out.cyclic.url).toBe('amqp://a:***@h');
    expect(out.cyclic.self).toBe('[cycle]');
    expect(JSON.stringify(out)).not.toMatch(/:b@|pw@|t0k3n/);
  });
});
