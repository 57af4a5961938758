/**
 * The port's contract against the kubernetes runtime on the project's test cluster (infra/k8s): the node
 * activities run here, in the test process, as each node's agent would (the kubelet's checkpoint
 * directory and containerd's socket of each node are this host's files), against the real API server,
 * kubelets and containerds; the example is a Deployment of the game service. Twice: with images sent agent
 * to agent, and through the cluster's registry.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { workload } from '../../cli/workloads';
import { createKubeClusterActivities } from '../../runtimes/kubernetes/cluster-activities';
import { deployExample, discardExample } from '../../runtimes/kubernetes/example-workloads';
import { KubeError, kubeApi } from '../../runtimes/kubernetes/kube-api';
import { createKubeNodeActivities } from '../../runtimes/kubernetes/node-activities';
import { registerAgent } from '../../runtimes/kubernetes/node-agent';
import { infra } from '../../runtimes/kubernetes/test-cluster';
import { imageReceiver } from '../../runtimes/shared/image-transfer';
import type { Registry } from '../../runtimes/kubernetes/registry';
import { describeRuntimeContract, type ContractNodes } from './runtime-contract';

/** As infra/k8s/env.sh has it. */
const REGISTRY_PORT = 30500;

const AGENTS = 'ms2m-contract';

function fixture(registry?: Registry) {
  return {
    runtime: 'kubernetes' as const,
    ...(registry ? { variant: 'registry transfer' } : {}),
    async setup(): Promise<ContractNodes> {
      const env = await infra('cluster.sh', ['up']);
      process.env.KUBECONFIG = env.KUBECONFIG;
      const api = await kubeApi();
      await api.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: AGENTS } }).catch((err: unknown) => {
        if (!(err instanceof KubeError && err.status === 409)) throw err;
      });
      const home = mkdtempSync(path.join(os.tmpdir(), 'ms2m-contract-k8s-'));
      const secret = randomBytes(32).toString('hex');
      const servers: Server[] = [];
      const nodeOf = async (node: string) => {
        const checkpointDir = path.join(env.RUN, node, 'kubelet', 'checkpoints');
        const server = createServer(imageReceiver(path.join(checkpointDir, 'ms2m'), node, { secret }));
        servers.push(server);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const transferUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        await registerAgent(api, AGENTS, node, transferUrl);
        const activities = createKubeNodeActivities({
          api,
          node,
          namespaces: ['default'],
          checkpointDir,
          ctr: { bin: env.CTR, socket: path.join(env.RUN, node, 'sock', 'containerd.sock') },
          secret,
          agentNamespace: AGENTS,
          transferUrl,
          ...(registry ? { registry } : {}),
        });
        return { node, activities };
      };
      const [a, b] = await Promise.all([nodeOf('node-a'), nodeOf('node-b')]);
      const example = { api, image: env.IMAGE_MS2M, criuConfig: env.CRIU_CONFIG, amqpUrl: readFileSync(env.AMQP_URL_FILE, 'utf8').trim() };
      const deployed: string[] = [];
      return {
        a,
        b,
        cluster: createKubeClusterActivities({ api, taskQueue: 'contract', namespaces: ['default'] }),
        async spec(service) {
          deployed.push(service);
          return deployExample(service, workload('game').spec(service, { home, stateBytes: 0, workMs: 0 }), a.node, example);
        },
        async teardown() {
          for (const s of deployed) await discardExample(api, s);
          for (const s of servers) s.close();
          await api.remove(`/api/v1/namespaces/${AGENTS}`);
          rmSync(home, { recursive: true, force: true });
          await infra('cluster.sh', ['down']);
        },
      };
    },
  };
}

describeRuntimeContract(fixture());
// The source pushes the checkpoint image to the test cluster's registry; the target's kubelet pulls it.
describeRuntimeContract(fixture({ host: `localhost:${REGISTRY_PORT}`, insecure: true }));
