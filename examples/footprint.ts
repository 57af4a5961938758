/**
 * What makes the example services stand in for real ones in measurements: CPU per message and memory
 * held in the state (and so in every checkpoint).
 */

/** Spins for `ms`: a timer would let the next message in and change the semantics of apply. */
export function busyWork(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/**
 * `bytes` of filled buffers. Buffers, not strings: V8 builds repeated strings as ropes that share memory,
 * so a "64 MB" string state can occupy a few kilobytes and the checkpoint would not grow with it.
 */
export function ballast(bytes: number): Buffer[] {
  const out: Buffer[] = [];
  const chunk = 1024 * 1024;
  for (let made = 0, i = 0; made < bytes; made += chunk, i++) out.push(Buffer.alloc(Math.min(chunk, bytes - made), (i % 251) + 1));
  return out;
}
