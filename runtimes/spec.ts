/**
 * What a deploy says about the service to run, one shape per runtime, told apart by `runtime`. A spec
 * without `runtime` is a local one (as every spec was before the port had two homes). Imported by the
 * workflow sandbox: no Node APIs.
 */
import { z } from 'zod';
import { nameField, objectMessages } from '../lib/input-fields';
import { RUNTIMES } from './runtime-names';

const COMMAND_EXAMPLE = '["node", "dist/examples/game/service.js"]';
const LOCAL_EXAMPLE = `{"command": ${COMMAND_EXAMPLE}, "primaryQueue": "game.primary"}`;

/** The queue the service consumes; the migration's replay queue and post-condition are about it. */
const primaryQueue = z
  .string({ required_error: 'spec.primaryQueue is required, e.g. "game.primary"', invalid_type_error: 'spec.primaryQueue must be a queue name, e.g. "game.primary"' })
  .min(1, 'spec.primaryQueue must name the queue the service consumes, e.g. "game.primary"');

export const LocalSpecSchema = z
  .object(
    {
      runtime: z.literal('local'),
      /** argv of the service process, run by the node agent in its own PID and UTS namespaces. */
      command: z
        .array(
          z.string({ invalid_type_error: 'spec.command must hold strings only' }).min(1, 'spec.command must hold no empty strings'),
          { required_error: `spec.command is required, e.g. ${COMMAND_EXAMPLE}`, invalid_type_error: `spec.command must be a list of strings, e.g. ${COMMAND_EXAMPLE}` },
        )
        .min(1, `spec.command needs at least the program, e.g. ${COMMAND_EXAMPLE}`),
      env: z.record(z.string({ invalid_type_error: 'spec.env values must be strings, e.g. {"LOG_LEVEL": "info"}' }), objectMessages('spec.env', '{"LOG_LEVEL": "info"}')).default({}),
      /** Where the process starts; relative paths in `command` are resolved against it (default: the node agent's directory). */
      cwd: z.string({ invalid_type_error: 'spec.cwd must be a directory path' }).min(1, 'spec.cwd must be a directory path; leave it out for the node agent\'s').optional(),
      primaryQueue,
    },
    objectMessages('spec', LOCAL_EXAMPLE),
  )
  .strict();

const KUBE_EXAMPLE = '{"runtime": "kubernetes", "namespace": "shop", "kind": "Deployment", "name": "orders", "container": "app", "primaryQueue": "orders.primary"}';
const KINDS = ['Deployment', 'StatefulSet', 'Pod'] as const;

export const KubernetesSpecSchema = z
  .object(
    {
      runtime: z.literal('kubernetes'),
      namespace: nameField('spec.namespace', 'default'),
      kind: z.enum(KINDS, { errorMap: () => ({ message: `spec.kind must be one of ${KINDS.join(', ')}` }) }),
      name: z
        .string({ required_error: 'spec.name is required: the workload\'s name, e.g. "orders"', invalid_type_error: 'spec.name must be the workload\'s name, e.g. "orders"' })
        .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'spec.name must be a Kubernetes object name (lowercase letters, digits, "-" and "."), e.g. "orders"'),
      container: z
        .string({ required_error: 'spec.container is required: the container that runs the service, e.g. "app"', invalid_type_error: 'spec.container must be a container name, e.g. "app"' })
        .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'spec.container must be a container name (lowercase letters, digits, "-"), e.g. "app"'),
      primaryQueue,
    },
    objectMessages('spec', KUBE_EXAMPLE),
  )
  .strict();

export const ServiceSpecSchema = z.preprocess(
  (v, ctx) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      const m = objectMessages('spec', LOCAL_EXAMPLE);
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: v === undefined ? m.required_error : m.invalid_type_error });
      return z.NEVER;
    }
    return 'runtime' in v ? v : { runtime: 'local', ...v };
  },
  z.discriminatedUnion('runtime', [LocalSpecSchema, KubernetesSpecSchema], {
    errorMap: (issue, ctx) =>
      issue.code === 'invalid_union_discriminator' ? { message: `spec.runtime must be one of ${RUNTIMES.join(', ')} (leave it out for local)` } : { message: ctx.defaultError },
  }),
);

export type LocalSpec = z.output<typeof LocalSpecSchema>;
export type KubernetesSpec = z.output<typeof KubernetesSpecSchema>;
export type ServiceSpec = z.output<typeof ServiceSpecSchema>;
/** What a caller may pass: `runtime` and `env` may be left out. */
export type ServiceSpecInput = (Omit<z.input<typeof LocalSpecSchema>, 'runtime'> & { runtime?: 'local' }) | z.input<typeof KubernetesSpecSchema>;
