// End-to-end: stored XSS never runs. Payloads go in through the public APIs
// (REST, CSV and JSON uploads, a signed webhook, the chat, the scripted
// model's answers) into every stored string a page renders; then an admin
// visits every page, opens what shows them and clicks their links. Nothing
// may run (`window.__xss` stays unset, no dialog opens, no new page opens),
// nothing may be parsed as markup (the CSP would then refuse an inline
// handler, which the harness records as a problem), and each payload must
// still show as the text it is, so a page that stops rendering a field
// fails too.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { Harness, STEP_TIMEOUT_MS, installExamplePlugin, signed } from './harness.mjs';

const TENANT = 'xss-tenant';
const TICKET_ID = 910_001;

/** What every payload runs if it ever runs: the test looks for `window.__xss`. */
const SET = 'window.__xss=1';
/**
 * A payload of every kind that fits a 200-character field: an element with
 * a handler, a script, SVG, a breakout of a double- and a single-quoted
 * attribute, escaped and raw entities, a right-to-left override and a
 * zero-width space. `tag` names the field, so its text can be found again.
 */
function shortPayload(tag) {
  return `${tag} <img src=x onerror="${SET}"><svg onload="${SET}"> "><b onmouseover=${SET}>'><script>${SET}</script> &lt;i&gt;&amp; \u202Efdp.exe\u200B`;
}
/** `shortPayload` with the ones that do not fit in 200 characters. */
function payload(tag) {
  return `${shortPayload(tag)} <iframe srcdoc="<script>parent.${SET}</script>"></iframe> <a href="javascript:${SET}">js-${tag}</a>`;
}
/** Markdown with HTML in it, as a model could answer: links to `javascript:`, raw tags, entities. */
function markdownPayload(tag) {
  return [
    `## Similar Tickets ${tag}`,
    `[click-${tag}](javascript:${SET}) and [quoted-${tag}](https://example.com/"><img src=x onerror=${SET}>)`,
    `<img src=x onerror="${SET}"> <script>${SET}</script> <svg onload="${SET}"></svg>`,
    `<iframe srcdoc="<script>parent.${SET}</script>"></iframe> &#x3C;img src=x onerror=${SET}&#x3E;`,
    `## Relevant Documentation\n\n**bold-${tag}** \u202Efdp.exe\u200B`,
    `## System Information\n\n<a href="javascript:${SET}">html-link-${tag}</a>`,
    `## Recommended Next Steps\n\n1. end-${tag}`,
  ].join('\n\n');
}

/**
 * Markup escaped as entities: a ServiceDesk Plus ticket's text is HTML, which
 * the intake turns into plain text (the tag goes, entities are decoded), so
 * these arrive as real tags in the stored subject and description.
 */
function encodedPayload(tag) {
  return `${tag} <b>bold</b> &lt;img src=x onerror="${SET}"&gt; &lt;svg onload=${SET}&gt;&lt;script&gt;${SET}&lt;/script&gt; &quot;&gt;&lt;b onmouseover=${SET}&gt;`;
}

const NOTE_MD = markdownPayload('T-NOTE');
const TENANT_NAME = shortPayload('T-TENANT');
const SUBJECT = encodedPayload('T-SUBJECT');
/**
 * The scripted model's answer to the enhancement prompt: a directive in the
 * ticket's text (the prompt's last user text), its markup as JSON escapes so
 * that the intake's HTML-to-text pass leaves it whole.
 */
const NOTE_DIRECTIVE = `MOCK${JSON.stringify({ type: 'text', text: NOTE_MD }).replace(/[<>&]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}MOCK`;
/** The inventory rows' IPs are in the description, so the worker gathers them. */
const DESCRIPTION = `${encodedPayload('T-DESC-ENC')} ${payload('T-DESC')}\nVPN gateway 10.20.30.40 and 10.20.30.41 disconnect every hour.\n${NOTE_DIRECTIVE}`;
const GREETING = shortPayload('T-GREETING');
/** Letters of a right-to-left script pass the username rule; markup does not. */
const UNICODE_USER = `xss-\u05d0\u05d1\u05d2-\u0661\u0662`;
const BASH_MARK = 'T-BASH';
const CHAT_MARK = 'T-CHAT';

const h = new Harness();
const step = h.step.bind(h);
/** @type {import('playwright-core').Page} */
let page;
let toolUrl = '';
let webhookSecret = '';
/** The job of the webhook as the API answers it: its text is what the pages must show. */
let job;
/** Pages other than ours that opened: a followed `javascript:` or `target=_blank` link would show here. */
const popups = [];

const api = h.api.bind(h);

/** Fails unless `res` has `status`, with its body in the message. */
async function expectStatus(res, status, what) {
  assert.equal(res.status(), status, `${what}: ${await res.text()}`);
}

/** Neither the canary nor a dialog nor a CSP refusal: what every page must keep. */
async function assertNothingRan(where) {
  assert.equal(await page.evaluate(() => window.__xss), undefined, `a payload ran on ${where}`);
  assert.deepEqual(h.problems, [], `problems on ${where}`);
  assert.deepEqual(popups, [], `pages opened from ${where}`);
}

/** Resolves once `locator`'s text (whitespace as rendered) contains `text` exactly. */
async function showsText(locator, text) {
  await locator.filter({ hasText: text }).first().waitFor();
  const rendered = await locator.filter({ hasText: text }).first().innerText();
  assert.ok(rendered.includes(text), `expected ${JSON.stringify(text)} in ${JSON.stringify(rendered)}`);
}

/** Polls the job of the webhook through the API until it is final. */
async function finishedJob() {
  const deadline = Date.now() + 2 * STEP_TIMEOUT_MS;
  for (;;) {
    const res = await api('GET', `/api/v1/enhancements?tenant_id=${TENANT}`);
    await expectStatus(res, 200, 'listing the enhancements');
    const found = (await res.json()).enhancements.find((e) => e.ticket_id === String(TICKET_ID));
    if (found && (found.status === 'completed' || found.status === 'failed')) return found;
    if (Date.now() > deadline) throw new Error(`the webhook's job never ended: ${JSON.stringify(found)}`);
    await page.waitForTimeout(500);
  }
}

describe('stored XSS payloads never run in a real browser', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    try {
      const [, url] = await h.start(['mock-ticketing', '--addr', '127.0.0.1:0'], {
        ready: /listening on (http:\/\/\S+)/,
        logName: 'xss-mock-ticketing.log',
      });
      toolUrl = url;
      const seeded = await fetch(`${toolUrl}/_mock/requests`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify([{ id: TICKET_ID, subject: SUBJECT, description: DESCRIPTION, status: 'Open', priority: 'High', created_ms: Date.now() }]),
      });
      assert.ok(seeded.ok, `seeding the fake ServiceDesk Plus: ${seeded.status}`);
      const scratch = await h.tempDir('csp-browser-xss-');
      const pluginsDir = join(scratch, 'plugins');
      await mkdir(pluginsDir);
      await installExamplePlugin(pluginsDir);
      await h.startDev(['--plugins-dir', pluginsDir]);
      page = await h.launchBrowser();
      page.on('dialog', async (dialog) => {
        h.problems.push(`dialog (${dialog.type()}): ${dialog.message()}`);
        await dialog.dismiss().catch(() => undefined);
      });
      h.context.on('page', (p) => popups.push(p.url()));
    } catch (err) {
      await h.cleanup();
      throw err;
    }
  });

  after(() => h.cleanup());

  step('an admin signs in and reaches the chat', async () => {
    await h.signIn('admin', h.password);
    await page.locator('[data-testid="status-text"]', { hasText: /^Ready$/ }).waitFor({ timeout: 90_000 });
  });

  step('payloads are stored in a tenant, its context uploads, a user and a plugin config', async () => {
    const created = await api('POST', '/api/v1/tenants', {
      tenant_id: TENANT,
      name: TENANT_NAME,
      tool_type: 'servicedesk_plus',
      servicedesk_url: toolUrl,
      api_key: `sdp-${randomBytes(6).toString('hex')}`,
    });
    await expectStatus(created, 201, 'creating the tenant');
    const tenant = await created.json();
    assert.equal(tenant.name, TENANT_NAME, 'the name is stored as sent');
    webhookSecret = tenant.webhook_secret;

    const kb = await api('POST', `/api/v1/tenants/${TENANT}/kb-articles`, [
      { title: shortPayload('T-KB-JSON-TITLE'), summary: payload('T-KB-JSON-SUMMARY'), url: 'https://kb.example/vpn?q=%22%3E%3Cimg', body: `${payload('T-KB-JSON-BODY')} VPN gateway disconnects every hour` },
    ]);
    await expectStatus(kb, 200, 'uploading KB articles as JSON');
    const csvCell = (text) => `"${text.replaceAll('"', '""')}"`;
    const kbCsv = await page.request.fetch(`${h.baseUrl}/api/v1/tenants/${TENANT}/kb-articles`, {
      method: 'POST',
      headers: { Origin: h.baseUrl, 'Content-Type': 'text/csv' },
      data: `title,summary,url,body\n${csvCell(shortPayload('T-KB-CSV-TITLE'))},${csvCell(payload('T-KB-CSV-SUMMARY'))},https://kb.example/csv,${csvCell(`${payload('T-KB-CSV-BODY')} VPN disconnects`)}\n`,
    });
    await expectStatus(kbCsv, 200, 'uploading KB articles as CSV');

    const inventory = await api('POST', `/api/v1/tenants/${TENANT}/inventory`, [
      { ip: '10.20.30.40', hostname: shortPayload('T-INV-JSON-HOST'), role: shortPayload('T-INV-JSON-ROLE'), client: shortPayload('T-INV-JSON-CLIENT'), location: shortPayload('T-INV-JSON-LOC') },
    ]);
    await expectStatus(inventory, 200, 'uploading inventory as JSON');
    const inventoryCsv = await page.request.fetch(`${h.baseUrl}/api/v1/tenants/${TENANT}/inventory`, {
      method: 'POST',
      headers: { Origin: h.baseUrl, 'Content-Type': 'text/csv' },
      data: `ip,hostname,role,client,location\n10.20.30.41,${['T-INV-CSV-HOST', 'T-INV-CSV-ROLE', 'T-INV-CSV-CLIENT', 'T-INV-CSV-LOC'].map((t) => csvCell(shortPayload(t))).join(',')}\n`,
    });
    await expectStatus(inventoryCsv, 200, 'uploading inventory as CSV');

    // Markup is refused as a username (letters, digits, . _ - @ only); a
    // right-to-left one is stored and must show as written.
    await expectStatus(await api('POST', '/api/v1/users', { username: shortPayload('T-USER'), password: 'xss-user-password', role: 'user' }), 400, 'a username with markup');
    await expectStatus(await api('POST', '/api/v1/users', { username: UNICODE_USER, password: 'xss-user-password', role: 'user' }), 201, 'a right-to-left username');

    await expectStatus(await api('POST', '/api/v1/plugins/rescan', {}), 200, 'rescanning the plugins');
    const configured = await api('PUT', '/api/v1/plugins/everything/config', { config: { demo_token: payload('T-SECRET'), greeting: GREETING } });
    await expectStatus(configured, 200, "configuring the example plugin");
  });

  step('a signed webhook stores a ticket of payloads and the model answers it with one', async () => {
    const body = JSON.stringify({ ticket_id: String(TICKET_ID), subject: SUBJECT, description: DESCRIPTION, priority: 'High' });
    const res = await fetch(`${h.baseUrl}/webhook/servicedesk_plus/${TENANT}`, { method: 'POST', headers: signed(body, webhookSecret), body });
    assert.equal(res.status, 202, await res.text());
    job = await finishedJob();
    assert.equal(job.status, 'completed', `the job failed: ${job.error_message}`);
    // Entities decoded: the stored text holds real tags now.
    assert.ok(job.subject.includes(`<img src=x onerror="${SET}"> <svg onload=${SET}>`), job.subject);
    assert.ok(job.description.includes(`<script>${SET}</script>`), job.description);
    assert.match(job.llm_output ?? '', /T-NOTE/, 'the note is the scripted answer');
  });

  step('the chat shows what the user sent and what the model answered as text', async () => {
    await page.goto(`${h.baseUrl}/`);
    await page.locator('[data-testid="status-text"]', { hasText: /^Ready$/ }).waitFor({ timeout: 90_000 });
    const send = async (text, turns) => {
      await page.locator('[data-testid="chat-input"]').fill(text);
      await page.locator('[data-testid="chat-input"]').press('Enter');
      await page.waitForFunction(
        (n) => [...document.querySelectorAll('[data-testid="cost-footer"]')].filter((el) => !el.hidden && el.textContent.startsWith('$')).length >= n,
        turns,
        { timeout: STEP_TIMEOUT_MS },
      );
    };
    const reply = markdownPayload(CHAT_MARK);
    const typed = `${payload('T-USERMSG')} MOCK${JSON.stringify({ type: 'text', text: reply })}MOCK`;
    await send(typed, 1);
    await send(`run echo '<img src=x onerror=${SET}>' ${BASH_MARK}`, 2);

    await showsText(page.locator('[data-testid="user-message"]'), payload('T-USERMSG'));
    const answer = page.locator('[data-testid="assistant-message"]', { hasText: `end-${CHAT_MARK}` }).first();
    await answer.waitFor();
    const text = await answer.locator('[data-testid="assistant-text"]').innerText();
    for (const raw of [`<img src=x onerror="${SET}">`, `<script>${SET}</script>`, `<svg onload="${SET}"></svg>`, `<img src=x onerror=${SET}>`, '\u202Efdp.exe\u200B']) {
      assert.ok(text.includes(raw), `the reply shows ${JSON.stringify(raw)} as text: ${JSON.stringify(text)}`);
    }
    assert.equal((await answer.locator('strong').innerText()).trim(), `bold-${CHAT_MARK}`, 'markdown still renders');
    assert.equal(await page.locator('[data-testid="message-list"] :is(img, svg, iframe, script)').count(), 0);
    // The javascript: link keeps its text and loses its target; clicking it does nothing.
    const jsLink = answer.locator('a', { hasText: `click-${CHAT_MARK}` });
    assert.equal(await jsLink.count(), 1, 'the link text is shown');
    assert.equal(await jsLink.getAttribute('href'), null, 'a javascript: URL is dropped');
    await jsLink.click();
    const quoted = answer.locator('a', { hasText: `quoted-${CHAT_MARK}` });
    if ((await quoted.count()) > 0) assert.doesNotMatch((await quoted.getAttribute('href')) ?? '', /["<>]/);

    const card = page.locator('[data-testid="tool-card"][data-status="complete"]').last();
    await card.waitFor();
    await card.locator('[data-testid="tool-toggle"]').click();
    await showsText(card.locator('[data-testid="tool-input"]'), `<img src=x onerror=${SET}>`);
    await showsText(card.locator('[data-testid="tool-result"]'), `<img src=x onerror=${SET}> ${BASH_MARK}`);
    await assertNothingRan('the chat');
    await page.reload();
    await page.locator('[data-testid="assistant-message"]', { hasText: `end-${CHAT_MARK}` }).first().waitFor();
    await assertNothingRan('the chat after a reload');
  });

  step('Tenants shows the name as text, in the list and in the form', async () => {
    await h.openPage('tenants');
    const row = page.locator(`#tenants-table tr[data-tenant-id="${TENANT}"]`);
    await showsText(row, TENANT_NAME);
    await row.locator('button[data-action="edit"]').click();
    const name = page.locator('#tenant-form [name="name"]');
    await name.waitFor();
    assert.equal(await name.inputValue(), TENANT_NAME, 'the attribute holds the whole value');
    await assertNothingRan('Tenants');
  });

  step('Users shows the right-to-left username as written', async () => {
    await h.openPage('users');
    const row = page.locator(`#users-table tr[data-username="${UNICODE_USER}"]`);
    await showsText(row, UNICODE_USER);
    await assertNothingRan('Users');
  });

  step('Plugins shows the stored config value in its field and never the secret', async () => {
    await h.openPage('plugins');
    const card = page.locator('article.plugin-card[data-plugin-name="everything"]');
    await card.waitFor();
    assert.equal(await card.locator('.plugin-config-input[name="greeting"]').inputValue(), GREETING);
    assert.equal(await card.locator('.plugin-config-input[name="demo_token"]').inputValue(), '', 'a secret is never prefilled');
    assert.equal(await page.locator('#plugins-page').evaluate((el) => el.textContent.includes('T-SECRET')), false);
    await assertNothingRan('Plugins');
  });

  step('History shows the ticket, its gathered context and the note as text', async () => {
    await h.openPage('history');
    await page.locator('#history-apply').click();
    const row = page.locator('#history-table tbody tr[data-job-id]', { hasText: String(TICKET_ID) }).first();
    await row.locator('button[data-action="toggle"]').click();
    const details = page.locator('.history-details').first();
    await details.waitFor();
    await showsText(details.locator('dd'), job.subject);
    assert.equal(await details.locator('.history-description').innerText(), job.description);
    const note = details.locator('.history-note');
    for (const raw of [`<img src=x onerror="${SET}">`, `<script>${SET}</script>`, `<iframe srcdoc="<script>parent.${SET}</script>"></iframe>`]) {
      await showsText(note, raw);
    }
    assert.equal(await note.locator(':is(img, svg, iframe, script)').count(), 0);
    const jsLink = note.locator('a', { hasText: 'click-T-NOTE' });
    assert.equal(await jsLink.count(), 1, 'the link text is shown');
    assert.equal(await jsLink.getAttribute('href'), null, 'a javascript: URL is dropped');
    await jsLink.click();
    // The gathered context names both inventory rows and an article of each upload.
    const context = await details.evaluate((el) => el.textContent);
    for (const tag of ['T-INV-JSON-HOST', 'T-INV-CSV-HOST']) {
      assert.ok(context.includes(shortPayload(tag)), `the gathered context shows ${tag}`);
    }
    await details.locator('.history-raw summary').click();
    await showsText(details.locator('.history-raw pre'), 'T-INV-JSON-ROLE');
    await assertNothingRan('History');
  });

  step("Open in chat sends the ticket's text as the first message, shown as text", async () => {
    await page.locator('.history-details .history-chat').first().click();
    await page.waitForURL(/\?session=[^&]+/);
    const first = page.locator('[data-testid="user-message"]', { hasText: 'T-SUBJECT' }).first();
    await showsText(first, job.subject);
    await page.locator('[data-testid="cost-footer"]:visible').first().waitFor({ timeout: STEP_TIMEOUT_MS });
    assert.equal(await page.locator('[data-testid="message-list"] :is(img, svg, iframe, script)').count(), 0);
    await assertNothingRan('the chat opened from History');
  });

  step('Audit log shows the Bash command and the admin actions as text', async () => {
    await h.openPage('audit');
    await page.locator('#audit-table').waitFor();
    await showsText(page.locator('tr.audit-row', { hasText: BASH_MARK }), `<img src=x onerror=${SET}>`);
    await page.locator('tr.audit-row', { hasText: 'admin.user.create' }).first().waitFor();
    await assertNothingRan('Audit log');
  });

  step('Dashboard, Charts, Workers (with their logs) and Operations run nothing', async () => {
    await h.openPage('dashboard');
    await page.locator('#dashboard-status', { hasText: /Healthy|Degraded|Down/ }).waitFor();
    await assertNothingRan('Dashboard');
    await h.openPage('charts');
    await page.locator('#charts-loading').waitFor({ state: 'hidden' });
    await assertNothingRan('Charts');
    await h.openPage('workers');
    const worker = page.locator('#workers-table tbody tr[data-worker-id]').first();
    await worker.waitFor();
    await worker.locator('button[data-action="logs"]').click();
    await page.locator('[data-worker-logs] li.worker-log-line').first().waitFor();
    await assertNothingRan('Workers');
    await h.openPage('operations');
    await assertNothingRan('Operations');
  });

  step('every page reached from a fresh load runs nothing either', async () => {
    for (const route of ['tenants', 'users', 'plugins', 'history', 'audit', 'dashboard', 'charts', 'workers', 'operations']) {
      await page.goto(`${h.baseUrl}/admin/${route}`);
      await page.locator(`#${route}-page`).waitFor();
      await page.waitForLoadState('networkidle');
      await assertNothingRan(`/admin/${route} loaded directly`);
    }
  });
});
