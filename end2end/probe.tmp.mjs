import { chromium } from '@playwright/test';
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox','--disable-gpu','--disable-background-networking','--disable-component-update','--disable-sync','--no-first-run'] });
const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await ctx.newPage();
page.on('pageerror', e => console.log('PAGEERROR', page.url(), e.message));
page.on('console', m => { if (m.type() === 'error') console.log('CONSOLE', page.url(), m.text().slice(0,100)); });
const base = process.env.BASE || 'http://127.0.0.1:3000';
await page.goto(base + '/login'); await page.waitForTimeout(1500);
console.log('-- login loaded');
await page.getByLabel('Username').fill('admin');
await page.getByLabel('Password', { exact: true }).fill('admin demo passphrase');
await page.getByRole('button', { name: 'Sign in' }).click();
await page.waitForTimeout(2000);
console.log('-- signed in at', page.url());
for (const p of ['/', '/users', '/audit', '/account', '/nowhere']) {
  await page.goto(base + p); await page.waitForTimeout(1500);
  console.log('-- visited', p);
  await page.screenshot({ path: `/tmp/probe${p.replace(/\//g,'_') || '_'}.png`, fullPage: true });
}
await browser.close();
