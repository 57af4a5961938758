/**
 * Reading a Prometheus over its HTTP API (v1): what the demo's `--observe` prints and what the
 * observability test compares with a migration's report.
 */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

export interface Target {
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  labels: Record<string, string>;
  lastError: string;
}

async function api<T>(base: string, path: string): Promise<T> {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json().catch(() => null)) as { status?: string; data?: T; error?: string } | null;
  if (!res.ok || body?.status !== 'success') throw new Error(`Prometheus ${base}${path.split('?')[0]}: ${body?.error ?? `HTTP ${res.status}`}`);
  return body.data as T;
}

/** An instant query; every result as a labelled number. */
export async function query(base: string, promql: string): Promise<Sample[]> {
  const data = await api<{ resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(base, `/api/v1/query?query=${encodeURIComponent(promql)}`);
  if (data.resultType !== 'vector') throw new Error(`Prometheus: "${promql}" gave a ${data.resultType}, not a vector`);
  return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

export async function activeTargets(base: string): Promise<Target[]> {
  return (await api<{ activeTargets: Target[] }>(base, '/api/v1/targets?state=active')).activeTargets;
}

/** Queries until `done` holds for the result (Prometheus sees a change only at its next scrape). */
export async function queryUntil(base: string, promql: string, done: (r: Sample[]) => boolean, timeoutMs = 20_000): Promise<Sample[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await query(base, promql);
    if (done(r)) return r;
    if (Date.now() > until) throw new Error(`Prometheus at ${base}: "${promql}" did not reach the expected result within ${timeoutMs} ms (last: ${JSON.stringify(r)})`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The address of the Prometheus UI's graph page showing `promql`. */
export const graphUrl = (base: string, promql: string): string => `${base}/graph?g0.expr=${encodeURIComponent(promql)}&g0.tab=1`;

/** `{a="x",b="y"}` of a sample, for printing. */
export const labelsText = (m: Record<string, string>, skip: string[] = []): string =>
  `{${Object.entries(m)
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;
