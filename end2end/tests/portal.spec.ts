import { test, expect, Page, Browser } from '@playwright/test';
import { readFileSync } from 'node:fs';

const ADMIN_PASSWORD = 'admin chose this passphrase';
const OPERATOR_TEMP = 'temporary for olga 1';
const OPERATOR_PASSWORD = 'olga picked her own phrase';

function initialAdminPassword(): string {
  const log = readFileSync(process.env.PORTAL_LOG!, 'utf8');
  // Printed on a terminal only; with the output in a file (as here) the portal
  // prints the path of a file that only its user can read.
  const file = log.match(/Password file:\s+(\S+)/);
  if (file) return readFileSync(file[1], 'utf8').trim();
  const m = log.match(/Password:\s+(\S+)/);
  if (!m) throw new Error(`no initial password in the portal's output:\n${log}`);
  return m[1];
}

/** Uncaught errors and Rust panics of every page the tests open: a hydration
 * mismatch shows up here only, so every test ends by asserting there were none. */
const pageErrors: string[] = [];

async function watchErrors(page: Page): Promise<string[]> {
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /panicked|Content Security Policy|CSP violation/.test(m.text())) {
      pageErrors.push(`${page.url()}: ${m.text()}`);
    }
  });
  // Anything the Content-Security-Policy blocks (an inline script without the
  // response's nonce would stop hydration) is reported, not only logged.
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });
  return pageErrors;
}

test.afterEach(() => {
  const errors = pageErrors.splice(0);
  expect(errors, 'errors in the browser').toEqual([]);
});

/** Opens a page and waits until the client has taken over (the app marks <body>). */
async function gotoHydrated(page: Page, path: string) {
  await page.goto(path);
  await page.locator('body[data-hydrated]').waitFor();
}

/** Waits until the sign-in page is hydrated: the "Show password" toggle only works then. */
async function waitForHydration(page: Page) {
  const password = page.getByLabel('Password', { exact: true });
  await expect(async () => {
    await page.getByLabel('Show password').check();
    await expect(password).toHaveAttribute('type', 'text', { timeout: 500 });
  }).toPass();
  await page.getByLabel('Show password').uncheck();
  await expect(password).toHaveAttribute('type', 'password');
}

async function signIn(page: Page, username: string, password: string) {
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function newPage(browser: Browser, width = 1280, height = 900) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  await watchErrors(page);
  return page;
}

test.describe.serial('Recovery Portal', () => {
  test('first sign-in forces the admin to choose a password', async ({ browser }) => {
    const page = await newPage(browser);
    await page.goto('/');
    await expect(page).toHaveURL(/\/login$/);
    await signIn(page, 'admin', initialAdminPassword());
    await expect(page).toHaveURL(/\/account$/);
    await expect(page.getByTestId('must-change')).toBeVisible();
    await page.locator('body[data-hydrated]').waitFor();

    await page.getByLabel('Current password').fill(initialAdminPassword());
    await page.getByLabel('New password', { exact: true }).fill(ADMIN_PASSWORD);
    await page.getByLabel('Repeat new password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect(page.getByText('Your password has been changed.')).toBeVisible();

    await page.goto('/');
    await expect(page.getByTestId('home-username')).toHaveText('admin');
    await expect(page.getByTestId('home-role')).toHaveText('admin');
    await expect(page.getByText('manage users and their roles')).toBeVisible();
  });

  test('a wrong password gets the same message as an unknown user', async ({ browser }) => {
    const page = await newPage(browser);
    await signIn(page, 'admin', 'not the right one at all');
    await expect(page.getByRole('alert')).toHaveText('Invalid username or password.');
    await signIn(page, 'nobody-here', 'not the right one at all');
    await expect(page.getByRole('alert')).toHaveText('Invalid username or password.');
    await expect(page).toHaveURL(/\/login$/);
  });

  test('the admin creates an operator', async ({ browser }) => {
    const page = await newPage(browser);
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await expect(page.getByTestId('home-username')).toHaveText('admin');
    await page.getByRole('link', { name: 'Users', exact: true }).click();
    await expect(page.getByRole('heading', { name: 'Users' })).toBeVisible();
    await page.locator('body[data-hydrated]').waitFor();

    const form = page.locator('form', { has: page.getByRole('button', { name: 'Create user' }) });
    await form.getByLabel('Username').fill('olga');
    await form.getByLabel('Role').selectOption('operator');
    await form.getByLabel('Temporary password').fill(OPERATOR_TEMP);
    await form.getByRole('button', { name: 'Create user' }).click();
    await expect(page.getByText('User created.')).toBeVisible();
    const row = page.locator('tr[data-username="olga"]');
    await expect(row).toContainText('operator');
    await expect(row).toContainText('must change password');
  });

  test('the operator chooses a password, gets 403 on Users, and signs out', async ({ browser }) => {
    const page = await newPage(browser);
    await signIn(page, 'olga', OPERATOR_TEMP);
    await expect(page).toHaveURL(/\/account$/);
    await page.locator('body[data-hydrated]').waitFor();
    await page.getByLabel('Current password').fill(OPERATOR_TEMP);
    await page.getByLabel('New password', { exact: true }).fill(OPERATOR_PASSWORD);
    await page.getByLabel('Repeat new password').fill(OPERATOR_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect(page.getByText('Your password has been changed.')).toBeVisible();

    await page.goto('/');
    await expect(page.getByTestId('home-role')).toHaveText('operator');
    await expect(page.getByRole('link', { name: 'Users', exact: true })).toHaveCount(0);

    await page.getByRole('link', { name: 'Runbooks', exact: true }).click();
    await expect(page.locator('li.runbook-card')).toHaveCount(12);
    await page.getByRole('link', { name: '4. Restore cron jobs' }).click();
    const install = page.locator('li.step[data-step="install-crontab"]');
    await expect(install).toContainText('destructive · needs approval');
    await expect(install.locator('pre.command')).toHaveText('crontab /var/tmp/crontab_{{ target }}_{{ backup_date }}.txt');

    const response = await page.goto('/users');
    expect(response?.status()).toBe(403);
    await expect(page.getByRole('heading', { name: '403 · Not allowed' })).toBeVisible();

    await gotoHydrated(page, '/');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(/\/login$/);
    await page.goto('/');
    await expect(page).toHaveURL(/\/login$/);
  });

  test('pages carry the security headers and a next path leaving the portal is not followed', async ({ browser }) => {
    const page = await newPage(browser);
    const response = await page.goto('/login?next=/%09/example.org');
    const headers = response!.headers();
    expect(headers['content-security-policy']).toMatch(/script-src 'self' 'nonce-[\w-]+' 'wasm-unsafe-eval'/);
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(headers['x-frame-options']).toBe('DENY');
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['referrer-policy']).toBe('same-origin');
    // The page hydrates under that policy (the toggle works only then).
    await waitForHydration(page);
    await page.getByLabel('Username').fill('olga');
    await page.getByLabel('Password', { exact: true }).fill(OPERATOR_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // A tab in the path would make it //example.org; the portal's home instead.
    await expect(page.getByTestId('home-role')).toHaveText('operator');
    const portal = new URL(process.env.PORTAL_URL!);
    expect(new URL(page.url()).host).toBe(portal.host);
    expect(new URL(page.url()).pathname).toBe('/');
    await gotoHydrated(page, '/');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(/\/login$/);
  });

  test('failed attempts slow a username down at that address until an admin unlocks it', async ({ browser }) => {
    const page = await newPage(browser);
    for (let i = 0; i < 3; i++) {
      await signIn(page, 'olga', `wrong guess number ${i}`);
      await expect(page.getByRole('alert')).toHaveText('Invalid username or password.');
    }
    // The guessing goes on (straight to the server) until the wait has grown to
    // 8 s or more, so that the page's next attempt falls inside it however slowly
    // a busy machine loads the page: each failure doubles the wait.
    const origin = new URL(process.env.PORTAL_URL!).origin;
    await expect
      .poll(
        async () => {
          const r = await page.request.post('/api/auth/sign_in', {
            form: { username: 'olga', password: 'still guessing' },
            headers: { Origin: origin },
          });
          if (r.status() !== 429) return 0;
          return (await r.json()).Throttled?.seconds ?? 0;
        },
        { timeout: 60_000, intervals: [100] },
      )
      .toBeGreaterThanOrEqual(8);
    // Slowed, not locked: the message says how long, and what else helps.
    await signIn(page, 'olga', OPERATOR_PASSWORD);
    await expect(page.getByRole('alert')).toContainText('Too many failed sign-ins on this username from your address');
    await expect(page.getByRole('alert')).toContainText('an administrator can also unlock the account');
    await expect(page).toHaveURL(/\/login$/);

    // An admin unlocks olga on the Users page.
    const admin = await newPage(browser);
    await signIn(admin, 'admin', ADMIN_PASSWORD);
    await expect(admin.getByTestId('home-username')).toHaveText('admin');
    await gotoHydrated(admin, '/users');
    await admin.locator('tr[data-username="olga"]').getByRole('button', { name: 'Unlock' }).click();
    await expect(admin.getByText('Unlocked: the user\'s failed sign-ins are forgotten')).toBeVisible();

    await signIn(page, 'olga', OPERATOR_PASSWORD);
    await expect(page.getByTestId('home-username')).toHaveText('olga');
  });

  test('sign-in works from the keyboard alone', async ({ browser }) => {
    const page = await newPage(browser);
    await page.goto('/login');
    await waitForHydration(page);
    await page.getByLabel('Username').focus();
    await page.keyboard.type('admin');
    await page.keyboard.press('Tab');
    await page.keyboard.type(ADMIN_PASSWORD);
    await page.keyboard.press('Enter');
    await expect(page.getByTestId('home-username')).toHaveText('admin');
  });

  test('pages fit a 390 px wide phone', async ({ browser }) => {
    const page = await newPage(browser, 390, 844);
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await expect(page.getByTestId('home-username')).toHaveText('admin');
    for (const path of ['/', '/users', '/audit', '/account']) {
      await page.goto(path);
      await expect(page.locator('main h1')).toBeVisible();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `horizontal overflow on ${path}`).toBeLessThanOrEqual(0);
    }
    await page.goto('/users');
    await page.screenshot({ path: '../target/e2e-results/users-390.png', fullPage: true });
  });

  test('the audit page shows what happened, filtered by actor and action', async ({ browser }) => {
    // Attempts by someone not signed in are recorded as `anon:<username>`.
    const page = await newPage(browser);
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await expect(page.getByTestId('home-username')).toHaveText('admin');
    await page.getByRole('link', { name: 'Audit', exact: true }).click();
    await expect(page.getByRole('heading', { name: 'Audit trail' })).toBeVisible();
    await expect(page.locator('table.audit-table')).toContainText('user.created');
    await page.getByLabel('Actor').fill('anon:olga');
    await page.getByLabel('Action').selectOption('auth.sign_in_throttled');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect(page).toHaveURL(/actor=anon%3Aolga|actor=anon:olga/);
    const rows = page.locator('table.audit-table tbody tr');
    await expect(rows.first()).toContainText('auth.sign_in_throttled');
    for (const text of await rows.allInnerTexts()) {
      expect(text).toContain('anon:olga');
      expect(text).toContain('auth.sign_in_throttled');
    }
    await page.screenshot({ path: '../target/e2e-results/audit-1280.png', fullPage: true });
  });
});
