import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // End-to-end tests share one host's RabbitMQ, Temporal server and CRIU: run files one at a time.
    fileParallelism: false,
    testTimeout: 20_000,
    hookTimeout: 180_000,
    // The workflow tests (test/unit/workflows) run their migrations side by side (describe.concurrent);
    // each waits mostly on its Temporal server, so ten at a time go about twice as fast as five.
    maxConcurrency: 32,
  },
});
