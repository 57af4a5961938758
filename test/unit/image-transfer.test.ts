import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPLETE_MARK, frameHeader, imageReceiver, sendImage, transferToken } from '../../runtimes/shared/image-transfer';
import { armFailpoint } from '../../lib/failpoints';

let server: Server;
let url: string;
let root: string;

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'ms2m-transfer-'));
  // Failpoints of the receiver live under MS2M_HOME.
  process.env.MS2M_HOME = path.join(root, 'home');
  server = createServer(imageReceiver(path.join(root, 'target'), 'node-t'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => server.close());

const frame = (h: Parameters<typeof frameHeader>[0]): Buffer => frameHeader(h);

function put(imageId: string, parts: Buffer[]): Promise<Response> {
  return fetch(`${url}/images/${imageId}/stream`, { method: 'PUT', body: new Uint8Array(Buffer.concat(parts)) });
}

describe('image transfer between agents', () => {
  it('delivers every file intact and marks the image complete', async () => {
    const src = path.join(root, 'source', 'img1');
    mkdirSync(src, { recursive: true });
    writeFileSync(path.join(src, 'pages-1.img'), Buffer.alloc(3 * 1024 * 1024, 7));
    writeFileSync(path.join(src, 'core-1.img'), 'core');
    writeFileSync(path.join(src, 'dump.log'), 'not part of the image');
    const seen: string[] = [];
    const r = await sendImage(src, url, 'img1', (name) => seen.push(name));
    expect(r.files).toBe(2);
    expect(seen.sort()).toEqual(['core-1.img', 'pages-1.img']);
    const dst = path.join(root, 'target', 'img1');
    expect(existsSync(path.join(dst, COMPLETE_MARK))).toBe(true);
    expect(readFileSync(path.join(dst, 'pages-1.img')).equals(Buffer.alloc(3 * 1024 * 1024, 7))).toBe(true);
    expect(existsSync(path.join(dst, 'dump.log'))).toBe(false);
    // Sending again is harmless.
    await sendImage(src, url, 'img1', () => undefined);
  });

  it('refuses a file whose checksum does not match and never completes the image', async () => {
    const res = await put('img2', [frame({ name: 'core-1.img', size: 8 }), Buffer.from('tampered'), Buffer.alloc(32), frame({ end: true, files: 1 })]);
    expect(res.status).toBe(422);
    expect(await res.text()).toMatch(/checksum mismatch for core-1.img/);
    expect(existsSync(path.join(root, 'target', 'img2', COMPLETE_MARK))).toBe(false);
  });

  it('refuses a stream cut short, one whose last frame disagrees, and one that is not an image stream', async () => {
    const data = Buffer.from('core');
    const good = [frame({ name: 'core-1.img', size: 4 }), data, createHash('sha256').update(data).digest()];
    expect((await put('img3', good)).status).toBe(400);
    const wrongCount = await put('img3', [...good, frame({ end: true, files: 2 })]);
    expect(wrongCount.status).toBe(422);
    expect(await wrongCount.text()).toMatch(/after 1 files, its last frame says 2/);
    expect((await put('img3', [Buffer.from('GET / HTTP/1.1\r\n\r\n')])).status).toBe(400);
    expect(existsSync(path.join(root, 'target', 'img3', COMPLETE_MARK))).toBe(false);
  });

  it('sends a sparse file as its extents only, at their offsets', async () => {
    const src = path.join(root, 'source', 'img5');
    mkdirSync(src, { recursive: true });
    const whole = Buffer.alloc(64 * 1024);
    whole.fill(1, 0, 4096);
    whole.fill(2, 40960, 49152);
    writeFileSync(path.join(src, 'pages-1.img'), whole);
    const r = await sendImage(src, url, 'img5', () => undefined, { sparse: new Map([['pages-1.img', [{ offset: 0, length: 4096 }, { offset: 40960, length: 8192 }]]]) });
    expect(r.bytes).toBe(12288);
    expect(readFileSync(path.join(root, 'target', 'img5', 'pages-1.img')).equals(whole)).toBe(true);
  });

  it('catches a file corrupted or cut off in transit; sending again delivers it', async () => {
    const src = path.join(root, 'source', 'img4');
    mkdirSync(src, { recursive: true });
    writeFileSync(path.join(src, 'pages-1.img'), Buffer.alloc(2 * 1024 * 1024, 9));
    armFailpoint(process.env.MS2M_HOME!, 'node-t/receive-file', { action: 'corrupt' });
    await expect(sendImage(src, url, 'img4', () => undefined)).rejects.toThrow(/HTTP 422 checksum mismatch for pages-1.img/);
    armFailpoint(process.env.MS2M_HOME!, 'node-t/receive-file', { action: 'cut' });
    await expect(sendImage(src, url, 'img4', () => undefined)).rejects.toThrow();
    expect(existsSync(path.join(root, 'target', 'img4', COMPLETE_MARK))).toBe(false);
    await sendImage(src, url, 'img4', () => undefined);
    expect(readFileSync(path.join(root, 'target', 'img4', 'pages-1.img')).equals(Buffer.alloc(2 * 1024 * 1024, 9))).toBe(true);
  });

  it('rejects path tricks in image and file names', async () => {
    const res = await fetch(`${url}/images/..%2F..%2Fetc/stream`, { method: 'PUT', body: 'x' });
    expect(res.status).toBe(404);
    const escape = await put('img6', [frame({ name: '../../passwd', size: 1 }), Buffer.from('x'), Buffer.alloc(32), frame({ end: true, files: 1 })]);
    expect(escape.status).toBe(422);
    expect(await escape.text()).toMatch(/not an image file name/);
  });
});

describe('image transfer with a shared secret (the kubernetes runtime\'s agents)', () => {
  const secret = 'a-secret-of-at-least-16-chars';
  let authServer: Server;
  let authUrl: string;
  beforeAll(async () => {
    authServer = createServer(imageReceiver(path.join(root, 'auth-target'), 'node-s', { secret }));
    await new Promise<void>((r) => authServer.listen(0, '127.0.0.1', r));
    authUrl = `http://127.0.0.1:${(authServer.address() as AddressInfo).port}`;
  });
  afterAll(() => authServer.close());

  const image = (id: string) => {
    const src = path.join(root, 'auth-source', id);
    mkdirSync(src, { recursive: true });
    writeFileSync(path.join(src, 'checkpoint.tar'), Buffer.alloc(256 * 1024, 3));
    return src;
  };

  it('accepts an image from a holder of the secret', async () => {
    await sendImage(image('s1'), authUrl, 's1', () => undefined, { secret });
    expect(existsSync(path.join(root, 'auth-target', 's1', COMPLETE_MARK))).toBe(true);
  });

  it('refuses an image sent without a token, or with a token of another secret or another image', async () => {
    await expect(sendImage(image('s2'), authUrl, 's2', () => undefined)).rejects.toThrow(/HTTP 401 .*no valid token/);
    await expect(sendImage(image('s3'), authUrl, 's3', () => undefined, { secret: 'another-secret-16-chars' })).rejects.toThrow(/HTTP 401/);
    const stolen = transferToken(secret, 's1');
    const res = await fetch(`${authUrl}/images/s4/stream`, { method: 'PUT', headers: { authorization: `Bearer ${stolen}` }, body: new Uint8Array(frame({ end: true, files: 0 })) });
    expect(res.status).toBe(401);
    for (const id of ['s2', 's3', 's4']) expect(existsSync(path.join(root, 'auth-target', '.incoming', id))).toBe(false);
  });
});
