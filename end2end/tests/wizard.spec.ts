import { test, expect, Page, Browser } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

// The wizard on the built-in lab: scripts/test starts the portal with `serve --lab`
// and passes the binary, its database and the lab's directory, so the tests can
// add users and switch the lab's faults as an operator would from a terminal.
const BIN = process.env.PORTAL_BIN!;
const LAB_DIR = process.env.PORTAL_LAB_DIR!;
const PASSWORD = 'wizard tests passphrase';

/** Runs the portal's CLI. The PORTAL_* variables of this test process are not
 * configuration keys, and the portal refuses unknown keys: they are left out. */
function portal(args: string[], input?: string): string {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PORTAL_')));
  return execFileSync(BIN, args, { input, encoding: 'utf8', env });
}

const pageErrors: string[] = [];
async function watchErrors(page: Page) {
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /panicked|Content Security Policy|CSP violation/.test(m.text())) {
      pageErrors.push(`${page.url()}: ${m.text()}`);
    }
  });
  // What the Content-Security-Policy blocks is an error of the test.
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });
}
test.afterEach(() => {
  const errors = pageErrors.splice(0);
  expect(errors, 'errors in the browser').toEqual([]);
});

async function signedIn(browser: Browser, username: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await watchErrors(page);
  await page.goto('/login');
  await page.locator('body[data-hydrated]').waitFor();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('signed-in-as')).toContainText(username);
  return page;
}

function step(page: Page, id: string) {
  return page.locator(`li.run-step[data-step="${id}"]`);
}

async function startRun(page: Page, runbook: string, fill: (page: Page) => Promise<void> = async () => {}) {
  await page.goto(`/runbooks/${runbook}`);
  await page.locator('body[data-hydrated]').waitFor();
  const form = page.locator('form.start-form');
  await expect(form.locator('#site')).toHaveValue('lab');
  await fill(page);
  await form.getByRole('button', { name: 'Start the run' }).click();
  await expect(page).toHaveURL(/\/runs\/\d+$/);
  await page.locator('body[data-hydrated]').waitFor();
  return Number(page.url().split('/').pop());
}

/** Glance's record of image `name`, read with the lab's clouds.yaml credentials,
 * as the openstack CLI would. */
async function glanceImage(name: string): Promise<any> {
  const yaml = readFileSync(`${LAB_DIR}/clouds.yaml`, 'utf8');
  const field = (k: string) => yaml.match(new RegExp(`${k}:\\s*"?([^"\\n]+)"?`))![1].trim();
  const auth = await fetch(`${field('auth_url')}/auth/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ auth: {
      identity: { methods: ['password'], password: { user: { name: field('username'), domain: { name: 'Default' }, password: field('password') } } },
      scope: { project: { name: field('project_name'), domain: { name: 'Default' } } },
    } }),
  });
  expect(auth.status).toBe(201);
  const token = auth.headers.get('x-subject-token')!;
  const catalog = (await auth.json()).token.catalog;
  const glance = catalog.find((s: any) => s.type === 'image').endpoints[0].url;
  const r = await fetch(`${glance}/v2/images?name=${encodeURIComponent(name)}`, { headers: { 'X-Auth-Token': token } });
  const images = (await r.json()).images;
  expect(images, `one image named ${name}`).toHaveLength(1);
  return images[0];
}

/** Runs the run open in `page` step by step as its operator: runs each step,
 * confirms manual ones, and has each destructive one approved by `supervisor`
 * on the approvals page, then runs it under the approval. `seen` is called on
 * each step once it is done. Stops when the run is completed. */
async function driveRun(page: Page, supervisor: Page, run: number, seen: (id: string) => Promise<void> = async () => {}) {
  for (let n = 0; n < 80; n++) {
    if ((await page.getByTestId('run-state').textContent()) === 'completed') return;
    const current = page.locator('li.run-step.current');
    await current.waitFor();
    const id = (await current.getAttribute('data-step'))!;
    const card = step(page, id);
    if ((await card.getAttribute('class'))!.includes('destructive')) {
      await card.getByLabel('Justification *').fill(`rehearsal of run ${run}: ${id}`);
      await card.getByRole('button', { name: /^Request approval/ }).click();
      await expect(card).toHaveAttribute('data-state', 'awaiting_approval');
      await supervisor.goto('/approvals');
      await supervisor.locator('body[data-hydrated]').waitFor();
      const request = supervisor.locator(`section.approval-request[data-run="${run}"]`);
      await request.getByRole('button', { name: 'Approve this exact action' }).click();
      await expect(request).toContainText('Approved. Waiting for');
      await card.getByRole('button', { name: /^Run under approval #\d+$/ }).click({ timeout: 15_000 });
    } else if (await card.getByRole('button', { name: 'Confirm done' }).count()) {
      await card.getByLabel(/^Observation/).fill('checked on the lab');
      await card.getByRole('button', { name: 'Confirm done' }).click();
    } else {
      await card.locator('button[data-command="run"]').click();
    }
    await seen(id);
    await expect(card, `step ${id}`).toHaveAttribute('data-state', /^(succeeded|skipped)$/, { timeout: 120_000 });
  }
  throw new Error(`run ${run} did not complete`);
}

/** The run of procedure 4 that was approved and run: the auditor's test reads it. */
let cronRun = 0;

test.describe.serial('Wizard on the lab', () => {
  test.beforeAll(() => {
    portal(['user', 'add', 'wendy', '--role', 'operator', '--password-stdin'], PASSWORD + '\n');
    portal(['user', 'add', 'sam', '--role', 'supervisor', '--password-stdin'], PASSWORD + '\n');
    portal(['user', 'add', 'ann', '--role', 'auditor', '--password-stdin'], PASSWORD + '\n');
  });

  test('procedure 11: live output, reload, a second browser, a failed expectation, retry', async ({ browser }) => {
    test.setTimeout(120_000);
    const page = await signedIn(browser, 'wendy');
    const run = await startRun(page, 'verify-recovery');
    await expect(page.getByTestId('run-state')).toHaveText('active');
    const diagnostics = step(page, 'diagnostics');
    await expect(diagnostics.getByTestId('command')).toHaveText('/var/qps/bin/diag/diagnostics.sh');
    await expect(diagnostics.getByTestId('host')).toHaveText('cluman');

    // A supervisor follows the same run in another browser.
    const watcher = await signedIn(browser, 'sam');
    await watcher.goto(`/runs/${run}`);
    await watcher.locator('body[data-hydrated]').waitFor();

    // The time from the lab printing a line to the browser showing it: the lab
    // paces diagnostics.sh line by line, so the first line's arrival is measured
    // against the moment the output panel first had text after Run.
    await watcher.evaluate((id) => {
      const w = window as any;
      w.latencies = [];
      const source = new EventSource(`/api/runs/${id}/live`);
      source.addEventListener('output', (e: MessageEvent) => {
        const event = JSON.parse(e.data);
        w.latencies.push(Date.now() - event.received_at_ms);
      });
    }, run);
    await diagnostics.getByRole('button', { name: 'Run' }).click();
    const output = diagnostics.getByTestId('output').last();
    await expect(output).toContainText('CPS Diagnostics', { timeout: 15_000 });
    // Live in the second browser too, before the step has finished.
    await expect(step(watcher, 'diagnostics').getByTestId('output').last()).toContainText('CPS Diagnostics');

    // Reload in the middle: the same state, and the output keeps coming.
    await page.reload();
    await page.locator('body[data-hydrated]').waitFor();
    await expect(step(page, 'diagnostics')).toHaveAttribute('data-state', /running|succeeded/);
    await expect(step(page, 'diagnostics')).toHaveAttribute('data-state', 'succeeded', { timeout: 60_000 });
    await expect(step(page, 'diagnostics').getByTestId('output').last()).toContainText('[PASS]');
    await expect(step(watcher, 'diagnostics')).toHaveAttribute('data-state', 'succeeded', { timeout: 30_000 });
    const latencies: number[] = await watcher.evaluate(() => (window as any).latencies);
    expect(latencies.length).toBeGreaterThan(5);
    const sorted = [...latencies].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    console.log(`line → browser latency over ${sorted.length} lines: median ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${sorted[sorted.length - 1]} ms`);

    // An unhealthy replica set fails the next step's expectation, visibly.
    portal(['lab', 'fault', 'on', 'replica-set-unhealthy', '--dir', LAB_DIR]);
    const replicas = step(page, 'replica-status');
    await replicas.getByRole('button', { name: 'Run' }).click();
    await expect(replicas).toHaveAttribute('data-state', 'failed', { timeout: 30_000 });
    await expect(replicas.locator('ul.expectations li.failed').first()).toContainText('does not match');
    await expect(step(watcher, 'replica-status')).toHaveAttribute('data-state', 'failed');

    // Repaired, it passes on a retry (a second attempt).
    portal(['lab', 'fault', 'off', 'replica-set-unhealthy', '--dir', LAB_DIR]);
    await replicas.getByRole('button', { name: 'Run again' }).click();
    await expect(replicas).toHaveAttribute('data-state', 'succeeded', { timeout: 30_000 });
    await expect(replicas.locator('details.attempt')).toHaveCount(2);

    // The sign-off needs an observation.
    const signOff = step(page, 'sign-off');
    await signOff.getByLabel(/Observation/).fill('all checks green');
    await signOff.getByRole('button', { name: 'Confirm done' }).click();
    await expect(page.getByTestId('run-state')).toHaveText('completed');
    await expect(watcher.getByTestId('run-state')).toHaveText('completed');
    await page.screenshot({ path: '../target/e2e-results/verify-run.png', fullPage: true });
  });

  test('procedure 4: cron restore up to its destructive step, skip with a reason', async ({ browser }) => {
    test.setTimeout(90_000);
    const page = await signedIn(browser, 'wendy');
    await page.goto('/runbooks/restore-cron');
    await page.locator('body[data-hydrated]').waitFor();
    const form = page.locator('form.start-form');
    // A value the browser cannot check is refused by the server, at its field.
    await form.locator('#param-site').fill('lab');
    await form.locator('#param-backup_date').fill('2020-01-01');
    await form.locator('#param-target').selectOption('pcrfclient01');
    await form.locator('#site').evaluate((s: HTMLSelectElement) => {
      const o = document.createElement('option');
      o.value = 'atlantis';
      o.text = 'atlantis';
      s.add(o);
      s.value = 'atlantis';
    });
    await form.getByRole('button', { name: 'Start the run' }).click();
    await expect(form.locator('[data-field="site"] .field-error')).toContainText('is not a configured site');
    await form.locator('#site').selectOption('lab');

    // The store holds the lab's backups of the last days.
    const today = new Date().toISOString().slice(0, 10);
    await form.locator('#param-backup_date').fill(today);
    await form.getByRole('button', { name: 'Start the run' }).click();
    await expect(page).toHaveURL(/\/runs\/\d+$/);
    await page.locator('body[data-hydrated]').waitFor();

    const show = step(page, 'show-current');
    await show.getByRole('button', { name: 'Run' }).click();
    await expect(show).toHaveAttribute('data-state', 'succeeded', { timeout: 30_000 });
    await expect(show.getByTestId('output').last()).toContainText('*');

    // The copy goes over SFTP and records size and SHA-256.
    const copy = step(page, 'copy-crontab');
    await copy.getByRole('button', { name: 'Run' }).click();
    await expect(copy).toHaveAttribute('data-state', 'succeeded', { timeout: 30_000 });
    await expect(copy.locator('.outcome')).toContainText('SHA-256');

    // The destructive step shows exactly what would run and only offers approval.
    const install = step(page, 'install-crontab');
    await expect(install.getByTestId('command')).toHaveText(`crontab /var/tmp/crontab_pcrfclient01_${today}.txt`);
    await expect(install.getByTestId('host')).toHaveText('pcrfclient01');
    await expect(install.getByRole('button', { name: 'Run', exact: true })).toHaveCount(0);
    await install.getByLabel('Justification *').fill('drill: the site team installs it by hand');
    await install.getByRole('button', { name: 'Request approval' }).click();
    await expect(install).toHaveAttribute('data-state', 'awaiting_approval');

    // Skipping needs a written reason, which stays with the step.
    await install.getByLabel('Reason *').fill('installed by the site team during the drill');
    await install.getByRole('button', { name: 'Skip' }).click();
    await expect(install).toHaveAttribute('data-state', 'skipped');
    await expect(install.locator('.note')).toContainText('installed by the site team');

    const check = step(page, 'check-crontab');
    await check.getByRole('button', { name: 'Run' }).click();
    await expect(check).toHaveAttribute('data-state', 'succeeded', { timeout: 30_000 });
    await expect(page.getByTestId('run-state')).toHaveText('completed');
    await page.goto('/runs?state=finished');
    await expect(page.locator('table.runs')).toContainText('4. Restore cron jobs');
  });

  test('procedure 4 under approval: rejected, requested again, approved by another supervisor, run', async ({ browser }) => {
    test.setTimeout(150_000);
    // The operators' own OpenSSH reaches the lab's VMs through cluman.
    const ssh = (command: string) =>
      execFileSync('ssh', ['-F', `${LAB_DIR}/ssh_config`, 'pcrfclient01', command], { encoding: 'utf8' });
    // pcrfclient01 lost its crontab: that is what the run restores.
    ssh('crontab -r || true');
    expect(ssh('crontab -l 2>/dev/null || true')).toBe('');

    const today = new Date().toISOString().slice(0, 10);
    const page = await signedIn(browser, 'wendy');
    const supervisor = await signedIn(browser, 'sam');
    await supervisor.goto('/approvals');
    await supervisor.locator('body[data-hydrated]').waitFor();
    await expect(supervisor.getByTestId('no-requests')).toBeVisible();

    const run = await startRun(page, 'restore-cron', async (p) => {
      await p.locator('#param-site').fill('lab');
      await p.locator('#param-backup_date').fill(today);
      await p.locator('#param-target').selectOption('pcrfclient01');
    });
    cronRun = run;
    for (const id of ['show-current', 'copy-crontab']) {
      await step(page, id).getByRole('button', { name: 'Run' }).click();
      await expect(step(page, id)).toHaveAttribute('data-state', 'succeeded', { timeout: 30_000 });
    }
    const install = step(page, 'install-crontab');
    const command = `crontab /var/tmp/crontab_pcrfclient01_${today}.txt`;
    await install.getByLabel('Justification *').fill('pcrfclient01 lost its crontab in the rebuild');
    await install.getByRole('button', { name: 'Request approval' }).click();
    await expect(install).toHaveAttribute('data-state', 'awaiting_approval');
    await expect(install.getByTestId('approval-state').first()).toHaveText('waiting for approval');
    const operatorHash = (await install.getByTestId('action-hash').first().textContent())!.trim();
    expect(operatorHash).toMatch(/^[0-9a-f]{64}$/);

    // The request appears on the supervisor's page without a reload, with the count
    // in the navigation, the exact action and its hash, and the run so far.
    const card = supervisor.locator(`section.approval-request[data-run="${run}"]`);
    await expect(card).toBeVisible({ timeout: 15_000 });
    await expect(supervisor.getByTestId('approvals-count')).toHaveText('1');
    await expect(card.getByTestId('command')).toHaveText(command);
    await expect(card.getByTestId('host')).toHaveText('pcrfclient01');
    await expect(card.getByTestId('action-hash').first()).toHaveText(operatorHash);
    await expect(card.locator('.justification')).toContainText('lost its crontab in the rebuild');
    await expect(card).toContainText('asked by wendy');
    await card.locator('details.run-so-far > summary').click();
    await expect(card.locator('.earlier-steps > li')).toHaveCount(2);
    await supervisor.screenshot({ path: '../target/e2e-results/approvals-page.png', fullPage: true });

    // Rejected with a reason: the operator sees it at once, and nothing ran.
    await card.getByLabel('Reason *').fill('check the backup date first');
    await card.getByRole('button', { name: 'Reject' }).click();
    await expect(supervisor.getByTestId('no-requests')).toBeVisible();
    await expect(install).toHaveAttribute('data-state', 'pending', { timeout: 15_000 });
    await expect(install.locator('details.approval-rejected')).toContainText('check the backup date first');
    expect(ssh('crontab -l 2>/dev/null || true')).toBe('');

    // Requested again, approved by the supervisor, run by the operator.
    await install.getByLabel('Justification *').fill('checked: the backup of today is complete');
    await install.getByRole('button', { name: 'Request approval again' }).click();
    await expect(install).toHaveAttribute('data-state', 'awaiting_approval');
    await expect(card).toBeVisible({ timeout: 15_000 });
    await expect(card.locator('.justification')).toContainText('backup of today is complete');
    await card.getByLabel('Comment').fill('go ahead');
    await card.getByRole('button', { name: 'Approve this exact action' }).click();
    await expect(card).toContainText('Approved. Waiting for wendy to run it');

    const runIt = install.getByRole('button', { name: /^Run under approval #\d+$/ });
    await expect(runIt).toBeVisible({ timeout: 15_000 });
    await expect(install.locator('details.approval-approved')).toContainText('sam approved');
    await install.scrollIntoViewIfNeeded();
    await page.screenshot({ path: '../target/e2e-results/approved-waiting.png' });
    await runIt.click();
    await expect(install).toHaveAttribute('data-state', 'succeeded', { timeout: 30_000 });
    // The step folds away once done; its attempt names the approval it ran under.
    await expect(install.locator('.under-approval')).toHaveText(/under approval #\d+/);
    await expect(install.getByTestId('approval-state').first()).toHaveText('used');
    // Used, it leaves the supervisor's open requests.
    await expect(supervisor.getByTestId('no-requests')).toBeVisible();
    await expect(supervisor.locator('table.recent-approvals')).toContainText('used');

    // The crontab on the lab's VM is the saved one now.
    const saved = readFileSync(`${process.env.PORTAL_BACKUP_STORE}/lab/${today}/crontab_pcrfclient01.txt`, 'utf8');
    expect(saved.trim().length).toBeGreaterThan(0);
    expect(ssh('crontab -l')).toBe(saved);
    await page.screenshot({ path: '../target/e2e-results/approved-run.png', fullPage: true });

    const check = step(page, 'check-crontab');
    await check.getByRole('button', { name: 'Run' }).click();
    await expect(check).toHaveAttribute('data-state', 'succeeded', { timeout: 30_000 });
    await expect(page.getByTestId('run-state')).toHaveText('completed');
  });
  test('procedures 1 and 2 on the lab cloud: snapshot and transfer progress, approvals, the stored image', async ({ browser }) => {
    test.setTimeout(900_000);
    const today = new Date().toISOString().slice(0, 10);
    const page = await signedIn(browser, 'wendy');
    const supervisor = await signedIn(browser, 'sam');

    // Procedure 1: ESC stops the Cluster Manager (under approval), Nova snapshots
    // it, Glance's image is downloaded into the backup store.
    const backup = await startRun(page, 'cps-backup', async (p) => {
      await p.locator('#param-site').fill('lab');
    });
    await driveRun(page, supervisor, backup, async (id) => {
      if (id === 'snapshot-cluman' || id === 'download-snapshot') {
        // The bar is shown while the snapshot runs (it takes a few of Nova's
        // phases; the lab's download is over too fast to catch), and ends full.
        const bar = step(page, id).getByTestId('progress');
        if (id === 'snapshot-cluman') await expect(bar).toBeVisible({ timeout: 30_000 });
        await expect(step(page, id)).toHaveAttribute('data-state', 'succeeded', { timeout: 120_000 });
        await step(page, id).locator('summary.step-head').click();
        await expect(bar).toHaveAttribute('data-state', 'finished');
        await expect(bar.locator('progress')).toHaveAttribute('value', '100');
        await expect(bar.locator('.progress-text')).toContainText(id === 'snapshot-cluman' ? 'done (4 of 4)' : '(100 %)');
        await bar.scrollIntoViewIfNeeded();
        await page.screenshot({ path: `../target/e2e-results/progress-${id}.png` });
      }
    });
    await expect(page.getByTestId('run-state')).toHaveText('completed');
    const stored = readFileSync(`${process.env.PORTAL_BACKUP_STORE}/lab/${today}/cluman_snapshot.qcow2`);
    const snapshot = await glanceImage(`cluman_snapshot_${today}`);
    expect(createHash('md5').update(stored).digest('hex')).toBe(snapshot.checksum);
    expect(stored.length).toBe(snapshot.size);

    // Procedure 2: the stored snapshot goes back to Glance and the Cluster Manager
    // is rebuilt from it (under approval), then its configuration and data restored.
    const restore = await startRun(page, 'restore-cluman', async (p) => {
      await p.locator('#param-site').fill('lab');
      await p.locator('#param-backup_date').fill(today);
      await p.locator('#param-cluman_instance').selectOption('present');
    });
    await driveRun(page, supervisor, restore, async (id) => {
      if (id === 'upload-image') {
        await expect(step(page, id)).toHaveAttribute('data-state', 'succeeded', { timeout: 120_000 });
        await step(page, id).locator('summary.step-head').click();
        await expect(step(page, id).getByTestId('progress')).toHaveAttribute('data-state', 'finished');
      }
    });
    await expect(page.getByTestId('run-state')).toHaveText('completed');
    await expect(step(page, 'rebuild-cluman').locator('.under-approval')).toHaveText(/under approval #\d+/);
    const uploaded = await glanceImage(`cluman_restore_${today}`);
    expect(uploaded.checksum).toBe(snapshot.checksum);
    await page.screenshot({ path: '../target/e2e-results/procedure-2-done.png', fullPage: true });
  });

  test('an auditor filters the trail to one run, follows it live, opens its report and downloads the PDF and CSV', async ({ browser }) => {
    test.setTimeout(90_000);
    expect(cronRun, 'the run of procedure 4').toBeGreaterThan(0);
    const page = await signedIn(browser, 'ann');

    // The trail, filtered to the run: only its events, among them the approval.
    await page.goto('/audit');
    await page.locator('body[data-hydrated]').waitFor();
    await page.locator('#run').fill(String(cronRun));
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect(page).toHaveURL(new RegExp(`[?&]run=${cronRun}(&|$)`));
    const rows = page.locator('table.audit-table tbody tr');
    await expect(rows.first()).toBeVisible();
    const subjects = await page.locator('table.audit-table tbody td[data-label="Subject"]').allTextContents();
    expect(subjects.length).toBeGreaterThan(5);
    for (const s of subjects) expect(s.startsWith(`run:${cronRun}`), s).toBe(true);
    await expect(page.locator('table.audit-table')).toContainText('approval.approved');
    await expect(page.locator('table.audit-table')).toContainText('approval.rejected');
    await page.screenshot({ path: '../target/e2e-results/audit-one-run.png', fullPage: true });

    // A second window follows the auditor's own report downloads live.
    const tail = await signedIn(browser, 'ann');
    await tail.goto('/audit?actor=ann&action=report.exported&tail=1');
    await tail.locator('body[data-hydrated]').waitFor();
    await expect(tail.getByTestId('tail-on')).toBeVisible();
    await expect(tail.getByTestId('no-events')).toBeVisible();

    // From an event to its run, and from the run to its report.
    await page.locator('table.audit-table tbody td[data-label="Subject"] a', { hasText: new RegExp(`^run:${cronRun}$`) }).first().click();
    await expect(page).toHaveURL(new RegExp(`/runs/${cronRun}$`));
    await page.getByTestId('open-report').click();
    await expect(page).toHaveURL(new RegExp(`/runs/${cronRun}/report$`));
    // Loaded afresh too: the server's page hydrates in the browser.
    await page.reload();
    await page.locator('body[data-hydrated]').waitFor();
    await expect(page.getByTestId('report-parameters')).toContainText('pcrfclient01');
    const approvals = page.getByTestId('report-approval');
    await expect(approvals).toHaveCount(2);
    await expect(approvals.nth(0)).toContainText('check the backup date first');
    await expect(approvals.nth(1)).toContainText('go ahead');
    await expect(approvals.nth(1)).toContainText('by sam');
    await expect(page.getByTestId('report-verdict')).toContainText('Audit chain verified intact');
    await page.screenshot({ path: '../target/e2e-results/run-report.png', fullPage: true });

    // The PDF and the CSV download.
    const [pdf] = await Promise.all([page.waitForEvent('download'), page.getByTestId('report-pdf').click()]);
    expect(pdf.suggestedFilename()).toBe(`run-${cronRun}-report.pdf`);
    const pdfBytes = readFileSync((await pdf.path())!);
    expect(pdfBytes.subarray(0, 5).toString()).toBe('%PDF-');
    expect(pdfBytes.subarray(-8).toString()).toContain('%%EOF');
    const [csv] = await Promise.all([page.waitForEvent('download'), page.getByTestId('report-csv').click()]);
    expect(csv.suggestedFilename()).toMatch(/^audit-.*\.csv$/);
    const lines = readFileSync((await csv.path())!, 'utf8').trim().split('\r\n');
    expect(lines[0]).toBe('id,at,actor,action,subject,details,prev_hash,hash');
    expect(lines.length - 1).toBe(subjects.length);
    for (const line of lines.slice(1)) expect(line).toContain(`,run:${cronRun}`);

    // The live tail saw the PDF's download without a reload.
    await expect(tail.locator('table.audit-table')).toContainText('report.exported', { timeout: 15_000 });
    await expect(tail.locator('table.audit-table tbody tr')).toHaveCount(1);

    // One event of the run, opened from its report, with its hash checked.
    await page.locator('table.audit-table tbody tr').first().locator('a').first().click();
    await expect(page).toHaveURL(/\/audit\/events\/\d+$/);
    await page.reload();
    await page.locator('body[data-hydrated]').waitFor();
    await expect(page.getByTestId('event-hash-check')).toHaveText('matches the stored hash');
    await expect(page.locator('table.fields')).toContainText('run.started');

    // The whole chain verified from the page, with its result kept.
    await page.goto('/audit/verify');
    await page.locator('body[data-hydrated]').waitFor();
    await expect(page.getByTestId('verify-result')).toHaveText('The chain has not been verified yet.');
    await page.getByTestId('verify-start').click();
    await expect(page.getByTestId('verify-result')).toContainText('Intact: all', { timeout: 30_000 });
    await expect(page.getByTestId('verify-result')).toContainText('by ann');
    await page.screenshot({ path: '../target/e2e-results/verify-chain.png', fullPage: true });
  });
});
