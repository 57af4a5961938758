/**
 * The kubernetes runtime's settings, from the environment (in the cluster: the ms2m ConfigMap and Secret,
 * and the downward API). Every one has the default a standard cluster needs.
 */
export interface KubeSettings {
  /** Namespaces whose workloads ms2m manages; its Roles are bound in each. */
  namespaces: string[];
  /** Where the agents run and register (their Leases). */
  agentNamespace: string;
  /** The kubelet's checkpoint directory, as mounted into the agent. */
  checkpointDir: string;
  containerdSocket: string;
  ctr: string;
  /** host:port the agent receives images on; port 0 picks a free one (agents on the host network share ports). */
  transferListen: string;
  /** The address other agents reach this one at (the pod's IP, from the downward API). */
  advertise: string;
  /** Set in the registry transfer mode: the registry the source pushes checkpoint images to and the nodes pull from. */
  registry?: Registry;
  /** host:port the orchestrator serves the eviction webhook on (infra/kubernetes/eviction); unset: no webhook. */
  webhookListen?: string;
  /** Where the webhook's TLS key and certificate are (tls.key, tls.crt: a mounted kubernetes.io/tls Secret). */
  webhookCertDir: string;
}

import type { Registry } from './registry';

const list = (v: string | undefined, dflt: string[]): string[] => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : dflt);

export function kubeSettings(env: NodeJS.ProcessEnv = process.env): KubeSettings {
  const mode = env.MS2M_TRANSFER ?? 'agents';
  if (mode !== 'agents' && mode !== 'registry') throw new Error(`MS2M_TRANSFER: "${mode}" is not a transfer mode; use agents (the default: agent to agent) or registry`);
  if (mode === 'registry' && !env.MS2M_REGISTRY) throw new Error('MS2M_REGISTRY: the registry transfer mode needs the registry the nodes pull from, e.g. registry.example:5000');
  return {
    ...(mode === 'registry' ? { registry: { host: env.MS2M_REGISTRY!, insecure: env.MS2M_REGISTRY_INSECURE === 'true', ...(env.MS2M_REGISTRY_AUTH ? { auth: env.MS2M_REGISTRY_AUTH } : {}) } } : {}),
    namespaces: list(env.MS2M_NAMESPACES, ['default']),
    agentNamespace: env.MS2M_AGENT_NAMESPACE ?? env.POD_NAMESPACE ?? 'ms2m-system',
    checkpointDir: env.MS2M_KUBELET_CHECKPOINTS ?? '/var/lib/kubelet/checkpoints',
    containerdSocket: env.MS2M_CONTAINERD_SOCKET ?? '/run/containerd/containerd.sock',
    ctr: env.MS2M_CTR ?? 'ctr',
    transferListen: env.MS2M_TRANSFER_LISTEN ?? '0.0.0.0:0',
    advertise: env.MS2M_POD_IP ?? '127.0.0.1',
    ...(env.MS2M_WEBHOOK_LISTEN ? { webhookListen: env.MS2M_WEBHOOK_LISTEN } : {}),
    webhookCertDir: env.MS2M_WEBHOOK_CERT_DIR ?? '/etc/ms2m/webhook',
  };
}

/** The agents' shared secret for image transfers; required, because an agent must refuse foreign images. */
export function transferSecret(env: NodeJS.ProcessEnv = process.env): string {
  // A Secret made from a file carries its trailing newline.
  const s = env.MS2M_TRANSFER_SECRET?.trim();
  if (!s || s.length < 16) {
    throw new Error('MS2M_TRANSFER_SECRET: the agents need a shared secret of at least 16 characters for image transfers; put it in the ms2m-transfer Secret (infra/kubernetes)');
  }
  return s;
}
