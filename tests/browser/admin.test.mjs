// End-to-end: the operations pages of ticket enhancement in a real Chromium,
// as an admin, as an operator and as a user. The real `csp dev` (tickets
// service and worker in process, SQLite) and the real `csp mock-ticketing`
// (the fake ServiceDesk Plus speaking its v3 wire format) run as processes;
// the webhook is signed here as a ticketing tool would sign it.
//
// CSP_DOC_SCREENSHOTS=1 also writes the pages' screenshots into
// docs/admin-ui/ (the images of docs/admin-ui-guide.md).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { Harness, REPO, STEP_TIMEOUT_MS, signed } from './harness.mjs';

const DOC_SHOTS = process.env.CSP_DOC_SCREENSHOTS === '1';
const DOC_DIR = join(REPO, 'docs/admin-ui');
const TENANT = 'acme-browser';
/** The open request the webhook announces, in the fake ServiceDesk Plus. */
const TICKET_ID = 900_001;
const SEEDED = 30;

const h = new Harness();
const step = h.step.bind(h);
/** @type {import('playwright-core').Page} */
let page;
/** The fake ServiceDesk Plus's base URL. */
let toolUrl = '';
/** The tenant's webhook secret, shown once when the tenant was created. */
let webhookSecret = '';

/** Screenshot for the failure record and, with CSP_DOC_SCREENSHOTS=1, for the admin UI guide. */
async function docShot(name, target = page) {
  const path = await h.screenshot(`admin-${name}`, target);
  if (DOC_SHOTS && path) {
    await mkdir(DOC_DIR, { recursive: true });
    await copyFile(path, join(DOC_DIR, `${name}.png`));
  }
}

const api = h.api.bind(h);
const navLink = h.navLink.bind(h);
const open = h.openPage.bind(h);

/** Runs an Operations action through its typed-YES dialog. */
async function operate(button, notice) {
  await open('operations');
  await page.locator(button).click();
  const dialog = page.locator('#operations-dialog');
  await dialog.waitFor();
  const confirm = page.locator('#operations-dialog-confirm');
  await page.locator('#operations-dialog-input').fill('yes');
  assert.ok(await confirm.isDisabled(), 'only an exact YES confirms');
  await page.locator('#operations-dialog-input').fill('YES');
  await confirm.click();
  await page.locator('#operations-notice', { hasText: notice }).waitFor();
}

/** The history row of the webhook's job. */
function jobRow() {
  return page.locator('#history-table tbody tr[data-job-id]', { hasText: String(TICKET_ID) }).first();
}

/** Re-applies the history filters until the job's row has `status`. */
async function waitForJobStatus(status) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    await page.locator('#history-apply').click();
    await page.locator('#history-table').waitFor();
    const row = jobRow();
    if ((await row.count()) > 0 && (await row.getAttribute('data-status')) === status) return row;
    if (Date.now() > deadline) throw new Error(`the job never showed as ${status} on the History page`);
    await page.waitForTimeout(500);
  }
}

/** Resolves once every worker's own log says `text` (workers read the pause flag every 2 s). */
async function waitForWorkerLog(text) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    const { workers } = await (await api('GET', '/api/v1/tickets/workers')).json();
    const said = await Promise.all(
      workers.map(async (w) => {
        const res = await api('GET', `/api/v1/tickets/workers/${w.worker_id}/logs?level=info`);
        return res.ok() && JSON.stringify(await res.json()).includes(text);
      }),
    );
    if (workers.length > 0 && said.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error(`no worker logged "${text}"`);
    await page.waitForTimeout(500);
  }
}

describe('operating ticket enhancement in a real browser', { timeout: 10 * 60_000 }, () => {
  before(async () => {
    try {
      const [, url] = await h.start(['mock-ticketing', '--addr', '127.0.0.1:0', '--seed-resolved', String(SEEDED)], {
        ready: /listening on (http:\/\/\S+)/,
        logName: 'mock-ticketing.log',
      });
      toolUrl = url;
      const seeded = await fetch(`${toolUrl}/_mock/requests`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify([
          {
            id: TICKET_ID,
            subject: 'VPN drops every hour for the sales team',
            description: 'Since Monday the VPN client on 10.20.30.40 disconnects every hour.',
            status: 'Open',
            priority: 'High',
            created_ms: Date.now(),
          },
        ]),
      });
      assert.ok(seeded.ok, `seeding the fake ServiceDesk Plus: ${seeded.status}`);
      await h.startDev();
      page = await h.launchBrowser();
    } catch (err) {
      await h.cleanup();
      throw err;
    }
  });

  after(() => h.cleanup());

  step('an admin signs in and sees every operations page in the header', async () => {
    await h.signIn('admin', h.password);
    await page.locator('#admin-nav').waitFor();
    for (const route of ['tenants', 'dashboard', 'charts', 'history', 'workers', 'operations']) {
      assert.equal(await navLink(route).count(), 1, `admin sees ${route}`);
    }
  });

  step('the Tenants form checks its fields and tests the connection before saving', async () => {
    await open('tenants');
    await page.locator('#tenant-new').click();
    const form = page.locator('#tenant-form');
    await form.waitFor();
    await form.locator('[name="tool_type"]').selectOption('servicedesk_plus');
    await form.locator('[name="tenant_id"]').fill(TENANT);
    await form.locator('[name="name"]').fill('Acme (browser test)');
    await form.locator('[name="servicedesk_url"]').fill('not a url');
    await form.locator('[name="api_key"]').fill(`sdp-${randomBytes(6).toString('hex')}`);
    await form.locator('#tenant-save').click();
    await form.locator('[data-field-error="servicedesk_url"]', { hasText: /URL/i }).waitFor();
    await form.locator('[name="servicedesk_url"]').fill(toolUrl);
    await form.locator('#tenant-test-connection').click();
    await page.locator('#tenant-test-result[data-ok="true"]').waitFor();
    await docShot('tenant-form');
  });

  step('saving shows the webhook secret once and the webhook URL', async () => {
    await page.locator('#tenant-form #tenant-save').click();
    const secret = page.locator('#tenant-webhook-secret');
    await secret.waitFor();
    webhookSecret = (await secret.innerText()).trim();
    assert.match(webhookSecret, /^\S{16,}$/);
    assert.match(await page.locator('#tenant-webhook-url').innerText(), new RegExp(`/webhook/servicedesk_plus/${TENANT}$`));
    await docShot('tenant-created');
    await page.locator(`#tenants-table tr[data-tenant-id="${TENANT}"]`).waitFor();
  });

  step('an inventory CSV uploads and history imports with its progress shown', async () => {
    const row = page.locator(`#tenants-table tr[data-tenant-id="${TENANT}"]`);
    await row.locator('button[data-action="edit"]').click();
    await page.locator('#tenant-upload-inventory').setInputFiles({
      name: 'inventory.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from('ip,hostname,role,client,location\n10.20.30.40,vpn-gw-01,VPN gateway,Sales,HQ rack 2\n'),
    });
    await page.locator('#tenant-upload-result', { hasText: /1/ }).waitFor();
    await page.locator('#tenant-import').click();
    await page.locator('#tenant-import-progress[data-state="completed"]').waitFor({ timeout: 120_000 });
    assert.match(await page.locator('#tenant-import-progress').innerText(), new RegExp(String(SEEDED)));
    await docShot('tenant-import');
  });

  step('pausing takes a typed YES and the webhook job waits as pending', async () => {
    await operate('#operations-pause', /[Pp]aused/);
    await waitForWorkerLog('processing is paused');
    const body = JSON.stringify({
      ticket_id: String(TICKET_ID),
      subject: 'VPN drops every hour for the sales team',
      description: 'Since Monday the VPN client on 10.20.30.40 disconnects every hour.',
      priority: 'High',
    });
    const res = await fetch(`${h.baseUrl}/webhook/servicedesk_plus/${TENANT}`, {
      method: 'POST',
      headers: signed(body, webhookSecret),
      body,
    });
    assert.equal(res.status, 202, await res.text());
    await open('history');
    const row = await waitForJobStatus('pending');
    // The colours: blue pending, green completed, red failed.
    assert.equal(await row.locator('[data-status="pending"]').getAttribute('data-tone'), 'blue');
    await docShot('history-pending');
  });

  step('resuming lets the worker complete the job, and its details show the note', async () => {
    await operate('#operations-resume', /[Rr]esumed/);
    await docShot('operations');
    await open('history');
    const row = await waitForJobStatus('completed');
    assert.equal(await row.locator('[data-status="completed"]').first().getAttribute('data-tone'), 'green');
    await row.locator('button[data-action="toggle"]').click();
    const details = page.locator('.history-details').first();
    await details.waitFor();
    await details.locator('.history-note').waitFor();
    assert.notEqual((await details.locator('.history-note').innerText()).trim(), '');
    await docShot('history');
  });

  step('the CSV export downloads the filtered rows', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#history-export').click()]);
    const text = await readFile(await download.path(), 'utf8');
    const [header, ...rows] = text.trim().split('\n');
    assert.match(header, /ticket_id/);
    assert.ok(rows.some((r) => r.includes(String(TICKET_ID))), 'the export holds the job');
  });

  step('the Dashboard shows the pipeline healthy with the job counted', async () => {
    await open('dashboard');
    await page.locator('#dashboard-status', { hasText: /Healthy|Degraded/ }).waitFor();
    await page.locator('#dashboard-success', { hasText: /%/ }).waitFor();
    await docShot('dashboard');
  });

  step('the Workers page lists the worker and its last log lines', async () => {
    await open('workers');
    const row = page.locator('#workers-table tbody tr[data-worker-id]').first();
    await row.waitFor();
    await row.locator('button[data-action="logs"]').click();
    await page.locator('[data-worker-logs] li.worker-log-line').first().waitFor();
    // At "warn", only warnings and errors stay (or the empty-list line).
    await page.locator('select[data-log-level]').first().selectOption('warn');
    await page.locator('select[data-log-level="warn"]').first().waitFor();
    await page.waitForFunction(() =>
      [...document.querySelectorAll('[data-worker-logs] li.worker-log-line')].every((li) => ['warn', 'error'].includes(li.dataset.level)),
    );
    await page.locator('select[data-log-level]').first().selectOption('info');
    await page.locator('[data-worker-logs] li.worker-log-line[data-level="info"]').first().waitFor();
    await docShot('workers');
  });

  step('the charts render the history with data', async () => {
    await open('charts');
    await page.locator('#charts-loading').waitFor({ state: 'hidden' });
    for (const id of ['chart-queue-depth', 'chart-success-rate', 'chart-latency']) {
      const chart = page.locator(`#${id}`);
      await chart.locator('canvas').first().waitFor();
      assert.ok(Number(await chart.getAttribute('data-render-ms')) >= 0, `${id} reports its render time`);
    }
    const points = await page.locator('#chart-latency').getAttribute('data-points');
    assert.ok(Number(points) >= 1000, `the 24 h latency chart draws at least 1,000 points (${points})`);
    const ms = await page.locator('#chart-latency').getAttribute('data-render-ms');
    console.log(`charts: latency chart of ${points} points rendered in ${ms} ms`);
    // The job of this run is in the series the charts draw, from the end of
    // the step it ended in (points sit on a grid aligned to the step: 5 s at 1 h).
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    let charts;
    for (;;) {
      charts = await (await api('GET', '/api/v1/tickets/charts?range=1h')).json();
      if (charts.latency_p50_seconds.some((v) => v !== null && v > 0)) break;
      if (Date.now() > deadline) throw new Error(`the job's processing time was never charted: ${JSON.stringify(charts.latency_p50_seconds.filter((v) => v !== null))}`);
      await page.waitForTimeout(1000);
    }
    assert.equal(charts.source, 'history');
    assert.ok(charts.success_rate.some((v) => v === 1), 'the completed job counts as a success');
    await page.locator('button[data-range="1h"]').click();
    await page.locator('#charts-loading').waitFor({ state: 'hidden' });
    await docShot('charts');
  });

  step('an operator sees the dashboard, history, workers and charts but not tenants or operations', async () => {
    for (const [username, role] of [['browser-op', 'operator'], ['browser-user', 'user']]) {
      const made = await api('POST', '/api/v1/users', { username, password: `${username}-password`, role });
      assert.equal(made.status(), 201, await made.text());
    }
    await h.context.clearCookies();
    await h.signIn('browser-op', 'browser-op-password');
    await page.locator('#admin-nav').waitFor();
    for (const route of ['dashboard', 'charts', 'history', 'workers']) {
      assert.equal(await navLink(route).count(), 1, `an operator sees ${route}`);
      await open(route);
    }
    await page.locator('#workers-table tbody tr[data-worker-id]').first().waitFor();
    assert.equal(await page.locator('#workers-table button[data-action="restart"]').count(), 0, 'restart is for admins');
    for (const route of ['tenants', 'operations', 'users']) {
      assert.equal(await navLink(route).count(), 0, `an operator does not see ${route}`);
    }
    for (const [method, path] of [
      ['GET', '/api/v1/tenants'],
      ['POST', '/api/v1/tickets/queue/clear'],
      ['PUT', '/api/v1/tickets/processing'],
    ]) {
      assert.equal((await api(method, path, method === 'GET' ? undefined : {})).status(), 403, `${method} ${path} as operator`);
    }
  });

  step('a user sees none of these pages and every API behind them answers 403', async () => {
    await h.context.clearCookies();
    await h.signIn('browser-user', 'browser-user-password');
    await page.locator('[data-testid="status-text"]').waitFor();
    assert.equal(await page.locator('#admin-nav').isVisible(), false);
    for (const path of [
      '/api/v1/tenants',
      '/api/v1/tickets/dashboard',
      '/api/v1/tickets/charts?range=24h',
      '/api/v1/tickets/workers',
      '/api/v1/enhancements',
      '/api/v1/enhancements/export.csv',
      '/api/v1/admin/audit-log',
    ]) {
      assert.equal((await api('GET', path)).status(), 403, `GET ${path} as a user`);
    }
    await page.goto(`${h.baseUrl}/admin/dashboard`);
    await page.locator('[data-testid="status-text"]').waitFor();
    assert.equal(await page.locator('#dashboard-page').isVisible(), false, 'the dashboard never shows to a user');
  });

  step('the page ran without errors or CSP violations', async () => {
    assert.deepEqual(h.problems, []);
  });
});
