// What every browser test needs: the real `csp` binary started on a free
// port (its own process group, so the agents it spawns go down with it), a
// real headless Chromium, a step runner that screenshots a failing step, and
// one cleanup. Nothing of ours is mocked.
//
// CSP_BIN overrides the binary (default: target/debug/csp of this repo),
// CHROMIUM_BIN the browser (default: /usr/bin/chromium).

import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = join(HERE, 'artifacts');
export const REPO = resolve(HERE, '../..');
export const CSP_BIN = process.env.CSP_BIN ?? join(REPO, 'target/debug/csp');
const CHROMIUM_BIN = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const STARTUP_TIMEOUT_MS = 120_000;
export const STEP_TIMEOUT_MS = 60_000;

/** Model credentials that must never reach a test: without them csp dev runs its scripted offline model. */
const MODEL_ENV = ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'ANTHROPIC_BASE_URL', 'CSP_MODEL'];

/**
 * One test file's world: the processes it started, its browser, its page,
 * and the problems the page reported (page errors and CSP violations: the
 * app must produce none).
 */
export class Harness {
  /** @type {import('playwright-core').Page} */
  page;
  /** @type {import('playwright-core').BrowserContext | null} */
  context = null;
  baseUrl = '';
  password = '';
  /** @type {string[]} */
  problems = [];
  /** @type {import('node:child_process').ChildProcess[]} */
  #children = [];
  /** @type {string[]} */
  #scratch = [];

  constructor() {
    // If the runner itself is torn down, leave nothing behind.
    process.on('exit', () => {
      for (const child of this.#children) killGroup(child, 'SIGKILL');
    });
  }

  /** A fresh temporary directory, removed by `cleanup`. */
  async tempDir(prefix) {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.#scratch.push(dir);
    return dir;
  }

  /**
   * Starts `csp <args>` and resolves with the first match of `ready` in its
   * standard output (its log goes to artifacts/<logName>).
   */
  async start(args, { ready, logName, env = {} }) {
    await mkdir(ARTIFACTS, { recursive: true });
    const log = createWriteStream(join(ARTIFACTS, logName));
    const child = spawn(CSP_BIN, args, {
      env: Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([k]) => !MODEL_ENV.includes(k))),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.#children.push(child);
    child.stderr.pipe(log);
    const lines = createInterface({ input: child.stdout });
    return new Promise((resolvePromise, reject) => {
      let done = false;
      const timer = setTimeout(
        () => reject(new Error(`csp ${args[0]} did not become ready within ${STARTUP_TIMEOUT_MS} ms (see artifacts/${logName})`)),
        STARTUP_TIMEOUT_MS,
      );
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`could not start ${CSP_BIN}: ${err.message}`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (!done) reject(new Error(`csp ${args[0]} exited during startup (code ${code}, signal ${signal}); see artifacts/${logName}`));
      });
      lines.on('line', (line) => {
        log.write(`${line}\n`);
        const m = ready.exec(line);
        if (m && !done) {
          done = true;
          clearTimeout(timer);
          resolvePromise(m);
        }
      });
    });
  }

  /** Starts `csp dev` on a free port with a fresh data directory; sets `baseUrl` and the admin's `password`. */
  async startDev(extraArgs = [], env = {}) {
    const dataDir = await this.tempDir('csp-browser-data-');
    this.password = randomBytes(18).toString('base64url');
    const m = await this.start(['dev', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...extraArgs], {
      ready: /listening on (http:\/\/[^\s]+)/,
      logName: 'csp.log',
      env: { ...env, CSP_ADMIN_PASSWORD: this.password },
    });
    this.baseUrl = m[1].replace(/\/$/, '');
    return dataDir;
  }

  /** Launches headless Chromium with a fresh profile and opens one page. */
  async launchBrowser() {
    const profile = await this.tempDir('csp-browser-profile-');
    this.context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_BIN,
      headless: true,
      acceptDownloads: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1100, height: 800 },
    });
    this.context.setDefaultTimeout(STEP_TIMEOUT_MS);
    this.page = this.context.pages()[0] ?? (await this.context.newPage());
    this.watch(this.page);
    return this.page;
  }

  /** Records `page`'s errors and CSP violations in `problems`. */
  watch(page) {
    page.on('pageerror', (err) => this.problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) {
        this.problems.push(`console: ${msg.text()}`);
      }
    });
  }

  /** Saves a full-page screenshot as artifacts/<name>.png (and returns its path). */
  async screenshot(name, page = this.page) {
    if (!page || page.isClosed()) return null;
    const path = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path, fullPage: true }).catch(() => undefined);
    return path;
  }

  /** Runs one step as a test; on failure saves a screenshot named after it. */
  step(name, fn) {
    it(name, async () => {
      try {
        await fn();
      } catch (err) {
        await this.screenshot(`failure-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`);
        throw err;
      }
    });
  }

  /** A state-changing API call with the signed-in cookie and a same-origin Origin header. */
  async api(method, path, data, target = this.page) {
    return target.request.fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { Origin: this.baseUrl },
      ...(data === undefined ? {} : { data }),
    });
  }

  /** The header link to `route` on the view showing (the chat's header or the admin pages'). */
  navLink(route, page = this.page) {
    return page.locator(`a[data-route="${route}"]:visible`);
  }

  /** Opens an admin page through its header link. */
  async openPage(route, page = this.page) {
    await this.navLink(route, page).click();
    await page.locator(`#${route}-page`).waitFor();
    await page.waitForURL(new RegExp(`/admin/${route}$`));
  }

  /** Signs in on the form of the page at `/`. */
  async signIn(username, password, page = this.page) {
    await page.goto(`${this.baseUrl}/`);
    await page.locator('[data-testid="login-username"]').fill(username);
    await page.locator('[data-testid="login-password"]').fill(password);
    await page.locator('[data-testid="login-submit"]').click();
  }

  /** Stops every process (SIGTERM, SIGKILL after 10 s), closes the browser, removes temporary directories. */
  async cleanup() {
    await this.context?.close().catch(() => undefined);
    this.context = null;
    for (const child of this.#children.splice(0).reverse()) await stop(child);
    for (const dir of this.#scratch.splice(0)) await rm(dir, { recursive: true, force: true });
  }
}

/** Signs a ServiceDesk Plus webhook body as the tool's trigger script does. */
export function signed(body, secret) {
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
  return { 'Content-Type': 'application/json', 'X-ServiceDesk-Timestamp': ts, 'X-ServiceDesk-Signature': `sha256=${sig}` };
}

/** The example MCP plugin, installed into a plugins directory while csp runs. */
const EXAMPLE_PLUGIN = resolve(REPO, 'examples/plugins/everything');

/**
 * Installs the example plugin into `pluginsDir` the way an operator would:
 * its directory, the installed server linked rather than copied, and
 * plugin.json written last so the watcher never sees a plugin without its
 * server. Returns the plugin's directory.
 */
export async function installExamplePlugin(pluginsDir) {
  assert.ok(
    existsSync(join(EXAMPLE_PLUGIN, 'node_modules/.bin/mcp-server-everything')),
    "the example plugin's MCP server is not installed: run scripts/setup.sh plugins",
  );
  const dir = join(pluginsDir, 'everything');
  await mkdir(dir);
  await symlink(join(EXAMPLE_PLUGIN, 'node_modules'), join(dir, 'node_modules'));
  await copyFile(join(EXAMPLE_PLUGIN, 'plugin.json'), join(dir, 'plugin.json'));
  return dir;
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}
