/** The runtimes ms2m knows. Free of imports so the workflow sandbox and the registry can both use it. */
export const RUNTIMES = ['local', 'kubernetes'] as const;
export type RuntimeName = (typeof RUNTIMES)[number];
