import { defineConfig } from '@playwright/test';

// scripts/test starts the real portal on a fresh database and passes its URL and
// its terminal output (where the first admin password is printed) in
// PORTAL_URL and PORTAL_LOG.
const baseURL = process.env.PORTAL_URL;
if (!baseURL) {
  throw new Error('PORTAL_URL is not set: run the browser tests through ./scripts/test');
}

export default defineConfig({
  testDir: './tests',
  // The tests walk one portal's life in order (first sign-in first).
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: [['list']],
  outputDir: '../target/e2e-results',
  use: {
    baseURL,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
