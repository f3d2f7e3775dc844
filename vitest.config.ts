import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration tests start real registries and clients; two cores are all we have.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
