// End-to-end: the real `csp dev` binary serving web/dist, driven by a real
// Chromium. Nothing of ours is mocked; the model is csp's scripted offline
// model ("run <cmd>" becomes a Bash tool call, MOCK{...}MOCK scripts a reply).
//
// CSP_BIN overrides the binary (default: target/debug/csp of this repo),
// CHROMIUM_BIN the browser (default: /usr/bin/chromium). The plugin steps
// need the example plugin's MCP server: `scripts/setup.sh plugins`.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { Harness, STEP_TIMEOUT_MS, installExamplePlugin } from './harness.mjs';

const SLOW_TEXT = Array.from({ length: 60 }, (_, i) => `word${i + 1}`).join(' ');
const SLOW_REPLY = `MOCK${JSON.stringify({ type: 'text', text: SLOW_TEXT, chunks: 60, chunk_delay_ms: 150 })}MOCK`;
const PLUGIN_SECRET = `browser-demo-token-${randomBytes(8).toString('hex')}`;
const ECHO_CALL = `MOCK${JSON.stringify({ type: 'tool_use', name: 'mcp__everything__echo', input: { message: 'hello from the browser' } })}MOCK`;
const XSS_REPLY = `MOCK${JSON.stringify({ type: 'text', text: '<img src=x onerror="window.__xss=1"> **bold**' })}MOCK`;

const sel = {
  status: '[data-testid="status-text"]',
  input: '[data-testid="chat-input"]',
  user: '[data-testid="user-message"]',
  assistant: '[data-testid="assistant-message"]',
  toolCard: '[data-testid="tool-card"]',
  cost: '[data-testid="cost-footer"]',
  interrupted: '[data-testid="interrupted-marker"]',
  pluginCard: 'article.plugin-card[data-plugin-name="everything"]',
};

const h = new Harness();
const step = h.step.bind(h);
const screenshot = (name) => h.screenshot(name);
/** Page errors and CSP violations: the app must produce none. */
const browserProblems = h.problems;
/** @type {import('playwright-core').Page} */
let page;
let baseUrl = '';
let password = '';
/** The plugins directory `csp dev` watches; empty at start. */
let pluginsDir = '';

/** Types a message and sends it with Enter, as a user would. */
async function send(text) {
  const input = page.locator(sel.input);
  await input.fill(text);
  await input.press('Enter');
}

/** Resolves when at least `n` turns show a cost footer. */
async function waitForFinishedTurns(n) {
  await page.waitForFunction(
    ([selector, count]) =>
      [...document.querySelectorAll(selector)].filter((el) => !el.hidden && el.textContent.startsWith('$')).length >= count,
    [sel.cost, n],
    { timeout: STEP_TIMEOUT_MS },
  );
}

async function finishedTurns() {
  return page.locator(`${sel.cost}:visible`).count();
}

/** The sum of every sample of a metric on `/metrics`, read with the signed-in admin's cookie. */
async function metric(name) {
  const res = await page.request.get(`${baseUrl}/metrics`);
  assert.equal(res.status(), 200, `GET /metrics: ${res.status()}`);
  return (await res.text())
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

describe('chat in a real browser', { timeout: 10 * 60_000 }, () => {
  before(async () => {
    try {
      pluginsDir = join(await h.tempDir('csp-browser-plugins-'), 'plugins');
      await mkdir(pluginsDir);
      await h.startDev(['--plugins-dir', pluginsDir]);
      ({ baseUrl, password } = h);
      page = await h.launchBrowser();
    } catch (err) {
      await h.cleanup();
      throw err;
    }
  });

  after(() => h.cleanup());

  step('a wrong password shows the gateway message', async () => {
    await page.goto(`${baseUrl}/`);
    await page.locator('[data-testid="login-username"]').fill('admin');
    await page.locator('[data-testid="login-password"]').fill(`${password}-wrong`);
    await page.locator('[data-testid="login-submit"]').click();
    await page.locator('[data-testid="login-error"]', { hasText: 'Wrong username or password.' }).waitFor();
  });

  step('signs in and reaches Ready', async () => {
    await page.locator('[data-testid="login-password"]').fill(password);
    await page.locator('[data-testid="login-submit"]').click();
    await page.locator(sel.status, { hasText: /^Ready$/ }).waitFor({ timeout: 90_000 });
    assert.notEqual((await page.locator('[data-testid="model-label"]').textContent())?.trim(), '');
    await page.waitForURL(/\?session=[^&]+/);
  });

  step('hello streams an answer with a cost footer', async () => {
    await send('hello');
    // The local echo shows at once.
    await page.locator(sel.user, { hasText: 'hello' }).first().waitFor();
    await waitForFinishedTurns(1);
    const answer = page.locator(sel.assistant).last();
    assert.notEqual((await answer.locator('[data-testid="assistant-text"]').innerText()).trim(), '');
    assert.match(await answer.locator(sel.cost).innerText(), /^\$\d+(\.\d+)?$/);
    assert.equal(await answer.getAttribute('data-streaming'), 'false');
    assert.equal(await page.locator('[data-testid="streaming-cursor"]').count(), 0);
  });

  step('a Bash tool call shows a card that completes with the output', async () => {
    const turns = await finishedTurns();
    await send('run echo hello-from-browser');
    const card = page.locator(sel.toolCard).last();
    await card.waitFor();
    assert.equal((await card.locator('[data-testid="tool-name"]').innerText()).trim(), 'Bash');
    await page.locator(`${sel.toolCard}[data-status="complete"]`).last().waitFor();
    assert.match(await card.locator('[data-testid="tool-status"]').innerText(), /^Complete \(\d+\.\d+s\)$/);
    await card.locator('[data-testid="tool-toggle"]').click();
    await card.locator('[data-testid="tool-result"]', { hasText: 'hello-from-browser' }).waitFor();
    assert.match(await card.locator('[data-testid="tool-input"]').innerText(), /echo hello-from-browser/);
    await waitForFinishedTurns(turns + 1);
    await screenshot('tool-card-complete');
  });

  step('Ctrl+Shift+X interrupts a streaming reply', async () => {
    const bubbles = await page.locator(sel.assistant).count();
    await send(SLOW_REPLY);
    const streaming = page.locator(`${sel.assistant}[data-streaming="true"]`).nth(0);
    await streaming.locator('[data-testid="assistant-text"]', { hasText: /word1/ }).waitFor();
    assert.ok((await page.locator(sel.assistant).count()) > bubbles);
    assert.equal(await page.locator('[data-testid="streaming-cursor"]').count(), 1);
    await page.keyboard.press('Control+Shift+X');
    const marker = page.locator(`${sel.interrupted}:visible`).last();
    await marker.waitFor();
    assert.equal((await marker.innerText()).trim(), '[Response interrupted]');
    const partial = await page.locator(sel.assistant).last().locator('[data-testid="assistant-text"]').innerText();
    assert.ok(!partial.includes('word60'), 'the reply stopped before its end');
    assert.equal(await page.locator('[data-testid="streaming-cursor"]').count(), 0);
  });

  step('the session keeps working after an interrupt', async () => {
    const turns = await finishedTurns();
    await send('hello again');
    await waitForFinishedTurns(turns + 1);
    const last = page.locator(sel.assistant).last();
    assert.notEqual((await last.locator('[data-testid="assistant-text"]').innerText()).trim(), '');
    assert.equal(await last.locator(sel.interrupted).isVisible(), false);
  });

  step('model output is sanitized', async () => {
    const turns = await finishedTurns();
    await send(XSS_REPLY);
    await waitForFinishedTurns(turns + 1);
    const last = page.locator(sel.assistant).last();
    assert.equal((await last.locator('strong').innerText()).trim(), 'bold');
    assert.equal(await page.locator('[data-testid="message-list"] img').count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  });

  step('a reload shows the same conversation once', async () => {
    const before = await page.evaluate((s) => [...document.querySelectorAll(s)].map((e) => e.textContent), sel.user);
    const cards = await page.locator(sel.toolCard).count();
    await page.reload();
    await page.locator(sel.status, { hasText: /^Ready$/ }).waitFor();
    await page.locator(sel.user, { hasText: 'hello-from-browser' }).waitFor();
    const afterReload = await page.evaluate((s) => [...document.querySelectorAll(s)].map((e) => e.textContent), sel.user);
    assert.deepEqual(afterReload, before);
    assert.equal(await page.locator(sel.toolCard).count(), cards);
    assert.equal(await page.locator(`${sel.toolCard}[data-status="complete"]`).count(), cards);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  });

  step('a model API failure shows the catalogued message and the session stays usable', async () => {
    const turns = await finishedTurns();
    await send('MOCK{"type":"http_error","status":500,"headers":{"x-should-retry":"false"}}MOCK');
    // The catalogue's text for `model_api_failed`, in the reply it ended.
    const error = page.locator('[data-testid="turn-error"]:visible', { hasText: 'The AI service could not answer' }).last();
    await error.waitFor({ timeout: STEP_TIMEOUT_MS });
    const text = await page.locator('[data-testid="message-list"]').innerText();
    assert.doesNotMatch(text, /API Error|HTTP 500|Internal server error/);
    await send('MOCK{"type":"text","text":"still here"}MOCK');
    await page.locator('[data-testid="assistant-text"]', { hasText: 'still here' }).waitFor({ timeout: STEP_TIMEOUT_MS });
    await waitForFinishedTurns(turns + 1);
    await screenshot('model-api-failure');
  });

  step('the session list reopens an earlier session', async () => {
    const current = page.locator('#session-list a.session-item[aria-current="page"]');
    await current.waitFor();
    const firstId = await current.getAttribute('data-session-id');
    const newSession = page.locator('#new-session');
    if (!(await newSession.isVisible())) await page.locator('#sessions-toggle').click();
    await newSession.click();
    await page.locator(sel.status, { hasText: /^Ready$/ }).waitFor({ timeout: 90_000 });
    await page.waitForFunction(() => document.querySelectorAll('#session-list a.session-item').length >= 2, null, {
      timeout: STEP_TIMEOUT_MS,
    });
    assert.equal(await page.locator(sel.user, { hasText: 'hello-from-browser' }).count(), 0);
    const earlier = page.locator(`#session-list a.session-item[data-session-id="${firstId}"]`);
    if (!(await earlier.isVisible())) await page.locator('#sessions-toggle').click();
    await earlier.click();
    await page.locator(sel.user, { hasText: 'hello-from-browser' }).first().waitFor({ timeout: STEP_TIMEOUT_MS });
    await page.locator(sel.status, { hasText: /^Ready$/ }).waitFor({ timeout: 90_000 });
    assert.match(page.url(), new RegExp(`session=${firstId}`));
    await screenshot('session-list');
  });

  step('the budget indicator shows this month\'s spend', async () => {
    await page.locator('#budget', { hasText: /this month/ }).waitFor({ timeout: STEP_TIMEOUT_MS });
  });

  step('an admin creates a user and changes their role on the Users page', async () => {
    await page.locator('#nav-users').click();
    await page.locator('#users-table').waitFor();
    await page.locator('#new-user-username').fill('browser-bob');
    await page.locator('#new-user-password').fill('browser-bob-password');
    await page.locator('#new-user-role').selectOption('user');
    await page.locator('#new-user-cap').fill('25');
    await page.locator('#new-user-submit').click();
    const row = page.locator('tr[data-username="browser-bob"]');
    await row.waitFor({ timeout: STEP_TIMEOUT_MS });
    await row.locator('select.user-role').selectOption('operator');
    await row.locator('button.user-save').click();
    await page.waitForFunction(
      () => document.querySelector('tr[data-username="browser-bob"] select.user-role')?.value === 'operator',
      null,
      { timeout: STEP_TIMEOUT_MS },
    );
    await screenshot('admin-users');
  });

  step('the audit log lists tool calls and admin actions', async () => {
    await page.locator('#admin-nav-audit').click();
    await page.locator('#audit-table').waitFor();
    // The Bash call of this run and the user just created are both logged.
    await page.locator('tr.audit-row', { hasText: 'Bash' }).first().waitFor({ timeout: STEP_TIMEOUT_MS });
    await page.locator('tr.audit-row', { hasText: 'admin.user.create' }).first().waitFor({ timeout: STEP_TIMEOUT_MS });
    assert.match((await page.locator('#audit-export').getAttribute('href')) ?? '', /format=csv/);
    await screenshot('admin-audit');
    await page.locator('#nav-chat').click();
    await page.locator(sel.status, { hasText: /^Ready$/ }).waitFor({ timeout: 90_000 });
  });

  /** The example plugin's directory once installed; its plugin.json is broken by a later step. */
  let pluginDir = '';
  /** `csp_prewarm_rebuilds_total` just before activation. */
  let rebuildsBefore = 0;

  step('the Plugins page lists only the built-in tickets plugin before any is installed', async () => {
    await page.locator('#nav-plugins').click();
    await page.locator('#plugins-page').waitFor();
    await page.waitForURL(/\/admin\/plugins$/);
    await page.locator('article.plugin-card[data-plugin-name="tickets"]').waitFor();
    assert.equal(await page.locator('#plugins-list article.plugin-card').count(), 1);
    assert.equal(await page.locator('#plugins-empty').isVisible(), false);
    assert.equal(await page.locator('#plugins-error').isVisible(), false);
  });

  step('a plugin dropped in while csp runs shows up on Rescan and needs configuration', async () => {
    pluginDir = await installExamplePlugin(pluginsDir);
    await page.locator('#plugins-rescan').click();
    // "Added: everything", or "No changes" when the file watcher was first.
    await page.locator('#plugins-rescan-summary', { hasText: /Added: everything|No changes/ }).waitFor();
    const card = page.locator(sel.pluginCard);
    await card.waitFor();
    assert.equal(await card.getAttribute('data-status'), 'needs_config');
    assert.equal(await card.getAttribute('data-active'), 'false');
    assert.equal(await card.locator('.plugin-status').getAttribute('data-status'), 'needs_config');
    assert.equal(await page.locator('#plugins-empty').isVisible(), false);
    assert.deepEqual(
      await card.locator('li.plugin-tool').evaluateAll((items) => items.map((li) => li.dataset.toolName)),
      ['mcp__everything__echo', 'mcp__everything__get-sum', 'mcp__everything__get-tiny-image', 'mcp__everything__get-env'],
    );
    const toggle = card.locator('button.plugin-toggle');
    assert.equal(await toggle.getAttribute('data-action'), 'activate');
    assert.ok(await toggle.isDisabled(), 'an unconfigured plugin cannot be activated');
    assert.equal((await card.locator('.plugin-toggle-reason').innerText()).trim(), 'Save its configuration first.');
  });

  step('saving the configuration stores the secret write-only', async () => {
    const card = page.locator(sel.pluginCard);
    const secret = card.locator('.plugin-config-input[name="demo_token"]');
    assert.equal(await secret.getAttribute('type'), 'password');
    assert.equal(await secret.inputValue(), '');
    assert.equal(await card.locator('.plugin-config-input[name="greeting"]').inputValue(), 'hello');
    await secret.fill(PLUGIN_SECRET);
    await card.locator('button.plugin-config-save').click();
    await card.locator('.plugin-notice', { hasText: 'Saved the configuration of everything.' }).waitFor();
    assert.equal(await card.getAttribute('data-status'), 'configured');
    assert.equal(await card.locator('.plugin-alert').isVisible(), false);

    await page.reload();
    await page.locator(`${sel.pluginCard}[data-status="configured"]`).waitFor();
    const reloaded = page.locator(sel.pluginCard).locator('.plugin-config-input[name="demo_token"]');
    assert.equal(await reloaded.getAttribute('type'), 'password');
    assert.equal(await reloaded.inputValue(), '', 'a stored secret is never prefilled');
    assert.match((await reloaded.getAttribute('placeholder')) ?? '', /Stored/);
    assert.equal(await page.locator(sel.pluginCard).locator('.plugin-config-clear').count(), 1);
    assert.ok(await page.locator(sel.pluginCard).locator('button.plugin-toggle').isEnabled());
    assert.ok(!(await page.content()).includes(PLUGIN_SECRET), 'the page never holds the secret');
  });

  step('an operator activates the configured plugin', async () => {
    rebuildsBefore = await metric('csp_prewarm_rebuilds_total');
    const card = page.locator(sel.pluginCard);
    await card.locator('button.plugin-toggle[data-action="activate"]').click();
    await page.locator(`${sel.pluginCard}[data-status="activated"][data-active="true"]`).waitFor();
    await card.locator('.plugin-notice', { hasText: 'Activated everything.' }).waitFor();
    assert.equal(await card.locator('button.plugin-toggle').getAttribute('data-action'), 'deactivate');
    assert.equal(await card.locator('.plugin-pending').isVisible(), false);
    await screenshot('admin-plugins');
  });

  step("a new session calls the plugin's MCP tool and shows the server's answer", async () => {
    await page.locator('#nav-chat').click();
    await page.locator(sel.status, { hasText: /^Ready$/ }).waitFor({ timeout: 90_000 });
    // The pool swaps its warm process for one with the plugin; a session
    // opened before that would start without it.
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    while (!((await metric('csp_prewarm_rebuilds_total')) > rebuildsBefore && (await metric('csp_prewarm_pool_depth')) >= 1)) {
      assert.ok(Date.now() < deadline, 'the warm pool was not rebuilt for the activated plugin');
      await page.waitForTimeout(200);
    }
    const newSession = page.locator('#new-session');
    if (!(await newSession.isVisible())) await page.locator('#sessions-toggle').click();
    await newSession.click();
    await page.locator(sel.status, { hasText: /^Ready$/ }).waitFor({ timeout: 90_000 });
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="tool-card"]').length === 0, null, {
      timeout: STEP_TIMEOUT_MS,
    });
    await send(ECHO_CALL);
    const card = page.locator(sel.toolCard).last();
    await card.waitFor();
    assert.equal((await card.locator('[data-testid="tool-name"]').innerText()).trim(), 'mcp__everything__echo');
    await page.locator(`${sel.toolCard}[data-status="complete"]`).last().waitFor();
    await card.locator('[data-testid="tool-toggle"]').click();
    await card.locator('[data-testid="tool-result"]', { hasText: 'Echo: hello from the browser' }).waitFor();
    await waitForFinishedTurns(1);
    await screenshot('plugin-tool-card');
  });

  step('a broken plugin.json keeps the plugin running and says where it broke', async () => {
    const file = join(pluginDir, 'plugin.json');
    const text = await readFile(file, 'utf8');
    const broken = text.replace(/("version": "[^"]*"),/, '$1');
    assert.notEqual(broken, text);
    await writeFile(file, broken);
    await page.locator('#nav-plugins').click();
    await page.locator('#plugins-page').waitFor();
    await page.locator('#plugins-rescan').click();
    const card = page.locator(sel.pluginCard);
    await card.locator('.plugin-pending:visible', { hasText: 'Running the last valid version' }).waitFor();
    assert.equal(await card.getAttribute('data-status'), 'activated');
    assert.equal(await card.getAttribute('data-active'), 'true');
    const problem = card.locator('li.plugin-problem').first();
    assert.match((await problem.locator('.plugin-problem-location').innerText()).trim(), /^Line \d+, column \d+$/);
    assert.match(await problem.locator('.plugin-problem-message').innerText(), /Expected comma/);
    assert.notEqual((await problem.locator('.plugin-problem-suggestion').innerText()).trim(), '');
    await screenshot('admin-plugins-broken');
  });

  step('the page ran without errors or CSP violations', async () => {
    assert.deepEqual(browserProblems, []);
  });
});
