import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // End-to-end tests share one host's RabbitMQ, Temporal server and CRIU: run files one at a time.
    fileParallelism: false,
    testTimeout: 20_000,
    hookTimeout: 180_000,
  },
});
