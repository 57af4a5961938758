/**
 * Where a server listens, as people write it: `host:port`, `[v6]:port` or `:port` (loopback); port 0 asks
 * for any free port. The node agent's --listen, MS2M_METRICS_LISTEN and MS2M_WEBHOOK_LISTEN share it.
 */
import { z } from 'zod';

const ADDRESS = /^(?<host>[^:[\]]*|\[[^\]]+\]):(?<port>\d{1,5})$/;

const listenAddress = z
  .string()
  .trim()
  .regex(ADDRESS)
  .transform((v) => {
    const { host, port } = ADDRESS.exec(v)!.groups!;
    return { host: host.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(port) };
  })
  .refine((a) => a.port <= 65535);

/** `field` names the setting in the error, which also says how to write one. */
export function parseListenAddress(value: string, field: string): { host: string; port: number } {
  const parsed = listenAddress.safeParse(value);
  if (!parsed.success) throw new Error(`${field}: "${value}" is not host:port (e.g. 0.0.0.0:9464, or 127.0.0.1:0 or :0 for any free port)`);
  return parsed.data;
}
