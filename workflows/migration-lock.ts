/**
 * The body of a held migration lock (activities/lock.ts): it does nothing and never ends by itself; its
 * running execution is the lock, and releasing the lock terminates it.
 */
import { condition } from '@temporalio/workflow';

export async function migrationLock(_input: { service: string }): Promise<void> {
  await condition(() => false);
}
