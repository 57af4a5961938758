/**
 * What every runtime must do, checked against a real one: a fixture gives two nodes' activities of the
 * runtime under test, its cluster activities, and a spec of the example service. The service answers the
 * control protocol over the real RabbitMQ, so what an instance did is seen from outside the runtime:
 * whether it consumed, under which identity, as primary or standby. Activities run in a
 * MockActivityEnvironment (a real activity context: heartbeats, cancellation), one call at a time, each
 * called a second time after it succeeded (Temporal retries a call whose completion was lost).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as amqp from 'amqplib';
import { loadConfig } from '../../lib/config';
import { ControlClient } from '../../service/control-client';
import { StampingProducer } from '../../service/producer';
import type { InstanceStatus } from '../../service/protocol';
import type { ClusterActivities, NodeActivities, RuntimeName, ServiceSpec } from '../../runtimes/types';

export interface ContractNodes {
  a: { node: string; activities: NodeActivities };
  b: { node: string; activities: NodeActivities };
  cluster: ClusterActivities;
  /**
   * A spec of the game example for `service` on this runtime, consuming `<service>.primary` from
   * `<service>.events` (kubernetes: of a Deployment it creates on node a).
   */
  spec(service: string): Promise<ServiceSpec>;
  teardown(): Promise<void>;
}

export interface RuntimeFixture {
  runtime: RuntimeName;
  /** A second way the same runtime works (kubernetes: images through a registry), in the suite's title. */
  variant?: string;
  setup(): Promise<ContractNodes>;
}

/** Calls an activity as a worker would, then again with the same input, and expects the same answer. */
async function twice<I, O>(fn: (input: I) => Promise<O>, input: I, same: (first: O, second: O) => void): Promise<O> {
  const first = (await new MockActivityEnvironment().run(fn, input)) as O;
  const second = (await new MockActivityEnvironment().run(fn, input)) as O;
  same(first, second);
  return first;
}

const call = <I, O>(fn: (input: I) => Promise<O>, input: I): Promise<O> => new MockActivityEnvironment().run(fn, input) as Promise<O>;

export function describeRuntimeContract(fixture: RuntimeFixture): void {
  describe(`the ${fixture.runtime} runtime${fixture.variant ? ` (${fixture.variant})` : ''} keeps the port's contract`, () => {
    const run = Date.now().toString(36);
    const service = `contract-${fixture.variant ? `${fixture.variant.split(' ')[0]}-` : ''}${run}`;
    /** The runtime names the instance it starts (kubernetes: the workload's pod); the local one takes this name. */
    let sourceId = `${service}-source`;
    let spec: ServiceSpec;
    const copyId = `${service}-copy`;
    const imageId = `contract-${run}`;
    let env: ContractNodes;
    let control: ControlClient;
    let conn: amqp.ChannelModel;
    let producer: StampingProducer;
    let published = 0;

    const status = (id: string, timeoutMs = 5000): Promise<InstanceStatus> => control.command(id, { kind: 'status', digest: true }, timeoutMs);
    const alive = async (n: 'a' | 'b', id: string) => (await call(env[n].activities.listInstances, undefined as never)).filter((i) => i.instanceId === id && i.alive);
    async function publish(n: number): Promise<void> {
      await Promise.all(Array.from({ length: n }, (_, i) => producer.publish(`player.p${i % 7}`, { player: `p${i % 7}`, points: 1 + (i % 5) })));
      published += n;
    }
    async function until(what: string, ok: () => Promise<boolean>, ms = 15_000): Promise<void> {
      const end = Date.now() + ms;
      while (!(await ok().catch(() => false))) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(100);
      }
    }

    beforeAll(async () => {
      env = await fixture.setup();
      control = await ControlClient.connect(loadConfig().amqpUrl, 'ms2m-contract');
      conn = await amqp.connect(loadConfig().amqpUrl);
    }, 120_000);

    afterAll(async () => {
      for (const [n, id] of [['a', sourceId], ['b', copyId]] as const) await call(env[n].activities.stopInstance, { instanceId: id }).catch(() => undefined);
      await producer?.close(5000).catch(() => undefined);
      await control?.close();
      await conn?.close().catch(() => undefined);
      await env?.teardown();
    });

    it('describes its nodes, with their own task queues', async () => {
      const d = await call(env.a.activities.describeNode, undefined as never);
      expect(d).toMatchObject({ node: env.a.node, runtime: fixture.runtime });
      const [a, b] = await Promise.all([call(env.cluster.node, { node: env.a.node }), call(env.cluster.node, { node: env.b.node })]);
      expect(a?.taskQueue).toBeTruthy();
      expect(b?.taskQueue).toBeTruthy();
      expect(a?.taskQueue).not.toBe(b?.taskQueue);
      expect(await call(env.cluster.node, { node: 'no-such-node' })).toBeNull();
    });

    it('starts an instance once, however often it is asked', async () => {
      spec = await env.spec(service);
      const rec = await twice(env.a.activities.startInstance, { service, instanceId: sourceId, spec }, (x, y) => expect(y).toEqual(x));
      expect(rec).toMatchObject({ service, node: env.a.node, origin: 'started' });
      if (fixture.runtime === 'local') expect(rec.instanceId).toBe(sourceId);
      sourceId = rec.instanceId;
      await until(`${sourceId} to answer`, async () => (await status(sourceId, 1000)).consuming === 'primary');
      expect(await alive('a', sourceId)).toHaveLength(1);
      const ch = await conn.createConfirmChannel();
      producer = new StampingProducer(ch, `contract-${run}`, `${service}.events`);
      await publish(50);
      await until('the source to apply what was published', async () => (await status(sourceId)).applied === published);
    });

    it('checkpoints with the source left running, and the same image on a retry', async () => {
      const ck = await twice(env.a.activities.checkpoint, { instanceId: sourceId, imageId }, (x, y) => {
        expect(y.image).toEqual(x.image);
        expect(y.bytes).toBe(x.bytes);
      });
      expect(ck.image.node).toBe(env.a.node);
      expect(ck.bytes).toBeGreaterThan(0);
      // Still serving: it applies what arrives after the dump.
      await publish(30);
      await until('the source to go on applying', async () => (await status(sourceId)).applied === published);
      expect(await alive('a', sourceId)).toHaveLength(1);
    });

    let restoredAt = 0;
    it('transfers the image to the target node, and restores a copy that knows its new identity before it consumes anything', async () => {
      const ck = await call(env.a.activities.checkpoint, { instanceId: sourceId, imageId });
      const sent = await twice(env.a.activities.transfer, { image: ck.image, targetNode: env.b.node }, (x, y) => expect(y.image).toEqual(x.image));
      expect(sent.image.node).toBe(env.b.node);
      expect(sent.bytes).toBe(ck.bytes);
      // Messages keep arriving on the primary queue while the copy comes up: a copy that ran as its source
      // even briefly would consume some of them.
      const traffic = publish(40);
      const r = await twice(env.b.activities.restore, { image: sent.image, service, instanceId: copyId }, (x, y) => expect(y.instance).toEqual(x.instance));
      expect(r.instance).toMatchObject({ instanceId: copyId, node: env.b.node, origin: 'restored' });
      await traffic;
      const copy = await status(copyId, 15_000);
      expect(copy).toMatchObject({ instanceId: copyId, role: 'standby', consuming: 'none' });
      restoredAt = copy.applied;
      await until('the source to apply everything', async () => (await status(sourceId)).applied === published);
      await sleep(500);
      const [src, after] = await Promise.all([status(sourceId), status(copyId)]);
      expect(after.applied).toBe(restoredAt);
      expect(after.outputsEmitted).toBe(0);
      expect(src.applied).toBe(published);
      expect(await alive('b', copyId)).toHaveLength(1);
    });

    it('lists what runs on each node', async () => {
      const onA = (await call(env.a.activities.listInstances, undefined as never)).filter((i) => i.service === service && i.alive).map((i) => i.instanceId);
      const onB = (await call(env.b.activities.listInstances, undefined as never)).filter((i) => i.service === service && i.alive).map((i) => i.instanceId);
      expect(onA).toEqual([sourceId]);
      expect(onB).toEqual([copyId]);
    });

    it('stops an instance, and a second stop does nothing', async () => {
      const first = await call(env.b.activities.stopInstance, { instanceId: copyId });
      const second = await call(env.b.activities.stopInstance, { instanceId: copyId });
      expect(first).toEqual({ stopped: true });
      expect(second).toEqual({ stopped: false });
      expect(await alive('b', copyId)).toEqual([]);
      const h = await call(env.b.activities.instanceHealth, { instanceId: copyId });
      expect(h.alive).toBe(false);
      // The source never noticed.
      await publish(10);
      await until('the source to apply everything', async () => (await status(sourceId)).applied === published);
    });

    it('removes an image, again without complaint, and then has none to restore', async () => {
      await call(env.b.activities.removeImage, { imageId });
      await call(env.b.activities.removeImage, { imageId });
      const ck = await call(env.a.activities.checkpoint, { instanceId: sourceId, imageId });
      await call(env.a.activities.removeImage, { imageId });
      await expect(call(env.a.activities.transfer, { image: ck.image, targetNode: env.b.node })).rejects.toMatchObject({ type: 'ImageMissing' });
    });

    it('keeps placements', async () => {
      const p = { service, node: env.a.node, instanceId: sourceId, spec, updatedAt: 1 };
      await call(env.cluster.commitPlacement, p);
      await call(env.cluster.commitPlacement, p);
      // When it was placed is the runtime's to say (kubernetes: when its pod was created).
      const { updatedAt: _, ...where } = p;
      expect(await call(env.cluster.locateService, { service })).toMatchObject(where);
      expect((await call(env.cluster.listPlacements, undefined as never)).filter((x) => x.service === service)).toMatchObject([where]);
      await call(env.cluster.removePlacement, { service });
      await call(env.cluster.removePlacement, { service });
      expect(await call(env.cluster.findPlacement, { service })).toBeNull();
      await expect(call(env.cluster.locateService, { service })).rejects.toMatchObject({ type: 'ServiceNotFound' });
    });
  });
}
