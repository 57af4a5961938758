import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { armFailpoint, failpoint, failpointHit, releaseFailpoint, waitForFailpoint } from '../../lib/failpoints';
import { payloadConverter, malformedPayloadError } from '../../lib/payload-converter';

const home = () => mkdtempSync(path.join(os.tmpdir(), 'ms2m-fp-'));

describe('failpoints', () => {
  it('are inert until armed, then fire the given number of times', async () => {
    const h = home();
    expect(await failpoint('node-a/x', h)).toBeNull();
    armFailpoint(h, 'node-a/x', { action: 'corrupt', times: 2 });
    expect(await failpoint('node-a/x', h)).toBe('corrupt');
    expect(await failpoint('node-a/x', h)).toBe('corrupt');
    expect(await failpoint('node-a/x', h)).toBeNull();
  });

  it('fail with the given message', async () => {
    const h = home();
    armFailpoint(h, 'orchestrator/y', { action: 'fail', message: 'disk gone' });
    await expect(failpoint('orchestrator/y', h)).rejects.toThrow('disk gone');
    expect(failpointHit(h, 'orchestrator/y')).not.toBeNull();
  });

  it('pause until released, once: a retry passes', async () => {
    const h = home();
    armFailpoint(h, 'node-b/restore', { action: 'pause' });
    let passed = false;
    const p = failpoint('node-b/restore', h).then(() => (passed = true));
    await waitForFailpoint(h, 'node-b/restore', 2000);
    expect(await failpoint('node-b/restore', h)).toBeNull(); // spent: a retry does not pause again
    await sleep(300);
    expect(passed).toBe(false);
    releaseFailpoint(h, 'node-b/restore');
    await p;
    expect(passed).toBe(true);
  });
});

describe('payload converter', () => {
  it('decodes JSON as usual', () => {
    const payload = payloadConverter.toPayload({ service: 'game' });
    expect(payloadConverter.fromPayload(payload)).toEqual({ service: 'game' });
    expect(malformedPayloadError({ service: 'game' })).toBeNull();
  });
  it('turns malformed JSON into a refusal instead of a failing workflow task', () => {
    const value = payloadConverter.fromPayload({ metadata: { encoding: new TextEncoder().encode('json/plain') }, data: new TextEncoder().encode('{service: game}') });
    expect(malformedPayloadError(value)).toMatch(/^\(input\): not valid JSON \(.*\) in "\{service: game\}"; paste one JSON object/);
  });
});
