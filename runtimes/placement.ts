/**
 * Placements recorded before specs named their runtime carry a bare local spec; every reader sees the
 * spec as it is validated today.
 */
import { ServiceSpecSchema } from './spec';
import type { Placement } from './types';

export function normalizePlacement(p: Placement | null): Placement | null {
  if (!p) return null;
  const spec = ServiceSpecSchema.safeParse(p.spec);
  return spec.success ? { ...p, spec: spec.data } : p;
}
