import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import * as api from '../src/api';
import {
  activation,
  configBody,
  configFields,
  type FieldInput,
  pendingText,
  PluginsPage,
  pluginsElements,
  problemFile,
  problemLocation,
  problemText,
  rescanSummary,
  statusText,
} from '../src/plugins';
import type { Plugin, PluginConfigSchema, PluginProblem, PluginTool } from '../src/protocol';
import { appDocument, settle } from './page';

const XSS = '<img src=x onerror="globalThis.pwned=1">';

function plugin(name: string, more: Partial<Plugin> = {}): Plugin {
  return {
    name,
    version: '1.0.0',
    plugin_type: 'mcp',
    description: `The ${name} plugin`,
    status: 'ready',
    active: false,
    required_role: 'operator',
    dir: `/srv/plugins/${name}`,
    tools: [],
    network: [],
    config_schema: null,
    config: null,
    secrets: {},
    errors: [],
    updated_at: '2026-11-22T10:00:00.000Z',
    ...more,
  };
}

/** A problem as the page must tolerate it: `null` where the gateway sends "". */
function problem(more: { [K in keyof PluginProblem]?: PluginProblem[K] | null } = {}): PluginProblem {
  return {
    file: '/srv/plugins/slack/plugin.json',
    line: 12,
    column: 5,
    field: 'version',
    message: "Expected comma after 'version' field",
    suggestion: "Add a ',' at the end of line 11.",
    ...more,
  } as PluginProblem;
}

const SCHEMA: PluginConfigSchema = {
  type: 'object',
  properties: {
    greeting: { type: 'string', default: 'hi', description: 'Said first' },
    mode: { type: 'string', enum: ['fast', 'safe'], default: 'safe' },
    retries: { type: 'integer', minimum: 0 },
    ratio: { type: 'number' },
    verbose: { type: 'boolean', default: true },
    api_token: { type: 'string', secret: true, description: 'Token for the API' },
    webhook_secret: { type: 'string', secret: true },
  },
  required: ['api_token', 'mode'],
};

/** Reads a field map the way the page reads its inputs. */
function from(inputs: Record<string, FieldInput>): (key: string) => FieldInput | undefined {
  return (key) => (Object.hasOwn(inputs, key) ? inputs[key] : undefined);
}

describe('plugin helpers', () => {
  it('names every status, and shows an unknown one as it is', () => {
    assert.equal(statusText('needs_config'), 'Needs configuration');
    assert.equal(statusText('activated'), 'Activated');
    assert.equal(statusText('errored'), 'Errored');
    assert.equal(statusText('registered'), 'Registered');
    assert.equal(statusText('removed'), 'Removed');
    assert.equal(statusText('discovered'), 'discovered', 'the server sends no such status');
    assert.equal(statusText('quarantined'), 'quarantined');
    assert.equal(statusText('constructor'), 'constructor', 'not a property of some object');
  });

  it('offers activation only where the gateway allows it, saying why not', () => {
    assert.deepEqual(activation({ active: false, status: 'ready', plugin_type: 'mcp' }), { action: 'activate', blocked: null });
    assert.deepEqual(activation({ active: false, status: 'configured', plugin_type: 'mcp' }), { action: 'activate', blocked: null });
    assert.deepEqual(activation({ active: false, status: 'errored', plugin_type: 'mcp' }), {
      action: 'activate',
      blocked: 'Fix the problems in plugin.json first.',
    });
    assert.deepEqual(activation({ active: false, status: 'needs_config', plugin_type: 'mcp' }), {
      action: 'activate',
      blocked: 'Save its configuration first.',
    });
    assert.deepEqual(activation({ active: false, status: 'ready', plugin_type: 'skill' }), {
      action: 'activate',
      blocked: 'Only MCP plugins can be activated; this one is a skill plugin.',
    });
    assert.deepEqual(activation({ active: true, status: 'activated', plugin_type: 'mcp' }), { action: 'deactivate', blocked: null });
    assert.equal(activation({ active: false, status: 'activated', plugin_type: 'mcp' }).action, 'deactivate', 'the status says it runs');
  });

  it('locates problems by line and column, relative to the plugin directory', () => {
    assert.equal(problemLocation({ line: 12, column: 5 }), 'Line 12, column 5');
    assert.equal(problemLocation({ line: 3, column: 0 }), 'Line 3');
    assert.equal(problemLocation({ line: 0, column: 0 }), '');
    assert.equal(problemFile('/srv/plugins/slack/plugin.json', '/srv/plugins/slack'), 'plugin.json');
    assert.equal(problemFile('/srv/plugins/slack/plugin.json', '/srv/plugins/slack/'), 'plugin.json');
    assert.equal(problemFile('/srv/plugins/slackbot/plugin.json', '/srv/plugins/slack'), '/srv/plugins/slackbot/plugin.json');
    assert.equal(problemFile('plugin.json', ''), 'plugin.json');
    assert.equal(problemText(problem()), "Line 12, column 5: Expected comma after 'version' field (Add a ',' at the end of line 11.)");
    assert.equal(problemText(problem({ line: 1, column: 1, suggestion: null, message: "Missing required field 'version'" })), "Line 1, column 1: Missing required field 'version'");
    assert.equal(problemText(problem({ line: 1, column: 1, suggestion: '', message: 'Not an object' })), 'Line 1, column 1: Not an object', 'the gateway sends "" for none');
  });

  it('warns about a pending error only on an active plugin', () => {
    const errors = [problem({ line: 7, column: 18, message: 'Field \'plugin_type\' must be one of tool, mcp, skill, endpoint (found "mcpp")', suggestion: null })];
    assert.equal(
      pendingText({ status: 'activated', errors }),
      'Running the last valid version; fix plugin.json: Line 7, column 18: Field \'plugin_type\' must be one of tool, mcp, skill, endpoint (found "mcpp")',
    );
    assert.match(pendingText({ status: 'activated', errors: [...errors, problem(), problem()] }) ?? '', / \(and 2 more\)$/);
    assert.equal(pendingText({ status: 'activated', errors: [] }), null);
    assert.equal(pendingText({ status: 'errored', errors }), null, 'an inactive plugin just shows its problems');
  });

  it('summarizes a rescan', () => {
    assert.equal(rescanSummary({ added: ['a', 'b'], changed: ['c'], removed: ['d'] }), 'Added: a, b · Changed: c · Removed: d');
    assert.equal(rescanSummary({ added: [], changed: ['c'], removed: [] }), 'Changed: c');
    assert.equal(rescanSummary({ added: [], changed: [], removed: [] }), 'No changes');
  });
});

describe('plugin config form model', () => {
  it('builds a field per property in schema order, with defaults where nothing is saved', () => {
    const fields = configFields(plugin('x', { config_schema: SCHEMA }));
    assert.deepEqual(
      fields.map((f) => [f.key, f.kind, f.required, f.value, f.checked, f.stored]),
      [
        ['greeting', 'text', false, 'hi', false, false],
        ['mode', 'select', true, '1', false, false],
        ['retries', 'integer', false, '', false, false],
        ['ratio', 'number', false, '', false, false],
        ['verbose', 'boolean', false, '', true, false],
        ['api_token', 'secret', true, '', false, false],
        ['webhook_secret', 'secret', false, '', false, false],
      ],
    );
    assert.equal(fields[0]?.help, 'Said first');
    assert.deepEqual(fields[1]?.options, ['fast', 'safe']);
    assert.equal(fields[2]?.minimum, 0);
    assert.equal(fields[2]?.maximum, null);
  });

  it('fills saved values over defaults and never prefills a secret', () => {
    const fields = configFields(
      plugin('x', {
        config_schema: SCHEMA,
        config: { greeting: 'hello', mode: 'fast', retries: 3, ratio: 0.5, verbose: false, api_token: '[REDACTED]' },
        secrets: { api_token: true },
      }),
    );
    const byKey = new Map(fields.map((f) => [f.key, f]));
    assert.equal(byKey.get('greeting')?.value, 'hello');
    assert.equal(byKey.get('mode')?.value, '0');
    assert.equal(byKey.get('retries')?.value, '3');
    assert.equal(byKey.get('ratio')?.value, '0.5');
    assert.equal(byKey.get('verbose')?.checked, false);
    assert.equal(byKey.get('api_token')?.value, '');
    assert.equal(byKey.get('api_token')?.stored, true);
    assert.equal(byKey.get('webhook_secret')?.stored, false);
  });

  it('keeps a saved value the enum no longer offers, and types anything else as JSON', () => {
    const fields = configFields(
      plugin('x', {
        config_schema: { properties: { mode: { type: 'string', enum: ['a', 'b'] }, hosts: { type: 'array' }, any: { title: 'Anything' } } },
        config: { mode: 'legacy', hosts: ['h1', 'h2'] },
      }),
    );
    assert.deepEqual(fields[0]?.options, ['legacy', 'a', 'b']);
    assert.equal(fields[0]?.value, '0');
    assert.deepEqual([fields[1]?.kind, fields[1]?.value], ['json', '["h1","h2"]']);
    assert.deepEqual([fields[2]?.kind, fields[2]?.label, fields[2]?.value], ['json', 'Anything', '']);
  });

  it('has no fields without a schema or its properties', () => {
    assert.deepEqual(configFields(plugin('x')), []);
    assert.deepEqual(configFields(plugin('x', { config_schema: { type: 'object' } })), []);
    assert.deepEqual(configFields(plugin('x', { config_schema: { type: 'object', properties: {} } })), []);
  });

  it('sends typed secrets, null for cleared ones, and leaves untouched ones out', () => {
    const fields = configFields(plugin('x', { config_schema: SCHEMA, secrets: { api_token: true, webhook_secret: true } }));
    const base = { greeting: { value: 'hi' }, mode: { value: '1' }, verbose: { checked: true } };
    assert.deepEqual(configBody(fields, from({ ...base, api_token: { value: '' }, webhook_secret: { value: '' } })), {
      ok: true,
      update: { config: { greeting: 'hi', mode: 'safe', verbose: true } },
    });
    assert.deepEqual(configBody(fields, from({ ...base, api_token: { value: ' s3cret ' }, webhook_secret: { value: '', clear: true } })), {
      ok: true,
      update: { config: { greeting: 'hi', mode: 'safe', verbose: true, api_token: ' s3cret ', webhook_secret: null } },
    });
  });

  it('reads numbers, refusing only what is not one', () => {
    const fields = configFields(plugin('x', { config_schema: SCHEMA }));
    const body = (retries: FieldInput, ratio: FieldInput) => configBody(fields, from({ retries, ratio }));
    assert.deepEqual(body({ value: ' 3 ' }, { value: '-0.25' }), { ok: true, update: { config: { retries: 3, ratio: -0.25, verbose: false } } });
    assert.deepEqual(body({ value: '' }, { value: '' }), { ok: true, update: { config: { verbose: false } } });
    assert.deepEqual(body({ value: '1.5' }, { value: '' }), { ok: false, key: 'retries', message: 'retries must be a whole number.' });
    assert.deepEqual(body({ value: '' }, { value: 'ten' }), { ok: false, key: 'ratio', message: 'ratio must be a number.' });
    assert.deepEqual(body({ value: '', bad: true }, { value: '' }), { ok: false, key: 'retries', message: 'retries must be a number.' });
    // Range and the like are the server's to judge.
    assert.deepEqual(body({ value: '-4' }, { value: '' }), { ok: true, update: { config: { retries: -4, verbose: false } } });
  });

  it('reads options by index and JSON as JSON', () => {
    const fields = configFields(plugin('x', { config_schema: { properties: { level: { enum: [1, 2, 3] }, hosts: { type: 'array' } } } }));
    const ok = configBody(fields, from({ level: { value: '2' }, hosts: { value: '["a"]' } }));
    assert.deepEqual(ok, { ok: true, update: { config: { level: 3, hosts: ['a'] } } });
    assert.deepEqual(configBody(fields, from({ hosts: { value: '[a' } })), {
      ok: false,
      key: 'hosts',
      message: 'hosts must be valid JSON (e.g. "text", 3, true or ["a", "b"]).',
    });
  });

  it('sends a key named __proto__ as data', () => {
    const schema = JSON.parse('{"properties":{"__proto__":{"type":"string"}}}') as PluginConfigSchema;
    const fields = configFields(plugin('x', { config_schema: schema }));
    assert.equal(fields[0]?.key, '__proto__');
    const body = configBody(fields, (key) => (key === '__proto__' ? { value: 'v' } : undefined));
    assert.ok(body.ok);
    assert.equal(JSON.stringify(body.update), '{"config":{"__proto__":"v"}}');
  });
});

interface Request {
  method: string;
  path: string;
  body: unknown;
}

/** The gateway's plugin API over a fake `fetch`, so the page is tested through the real api.ts. */
function fakeGateway(initial: Plugin[]) {
  let plugins = initial;
  const requests: Request[] = [];
  const failures: { status: number; code: string; message: string }[] = [];
  let rescan: { added: string[]; changed: string[]; removed: string[]; plugins: Plugin[] } | null = null;
  const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  const replace = (next: Plugin) => {
    plugins = plugins.map((p) => (p.name === next.name ? next : p));
    return next;
  };
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const method = init?.method ?? 'GET';
    const path = String(input);
    const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as unknown) : null;
    requests.push({ method, path, body });
    const failure = failures.shift();
    if (failure) return json(failure.status, { error: { code: failure.code, message: failure.message, action: 'Try again.' } });
    if (method === 'GET' && path === '/api/v1/plugins') return json(200, { plugins });
    if (method === 'POST' && path === '/api/v1/plugins/rescan') {
      const result = rescan ?? { added: [], changed: [], removed: [], plugins };
      plugins = result.plugins;
      return json(200, result);
    }
    const match = /^\/api\/v1\/plugins\/([^/]+)\/(activate|deactivate|config)$/.exec(path);
    const current = match ? plugins.find((p) => p.name === decodeURIComponent(match[1]!)) : undefined;
    if (!match || !current) return json(404, { error: { code: 'plugin_not_found', message: 'No such plugin.' } });
    if (match[2] === 'activate') return json(200, replace({ ...current, status: 'activated', active: true }));
    if (match[2] === 'deactivate') return json(200, replace({ ...current, status: 'configured', active: false }));
    const sent = (body as { config: Record<string, unknown> }).config;
    const config: Record<string, unknown> = {};
    const secrets = { ...current.secrets };
    for (const [key, prop] of Object.entries(current.config_schema?.properties ?? {})) {
      if (prop.secret) {
        if (sent[key] === null) secrets[key] = false;
        else if (typeof sent[key] === 'string') secrets[key] = true;
        if (secrets[key]) config[key] = '[REDACTED]';
      } else if (key in sent) {
        config[key] = sent[key];
      }
    }
    return json(200, replace({ ...current, status: 'configured', config, secrets }));
  };
  return {
    fetch,
    requests,
    mutations: () => requests.filter((r) => r.method !== 'GET'),
    fail: (status: number, code: string, message: string) => failures.push({ status, code, message }),
    onRescan: (result: typeof rescan) => (rescan = result),
  };
}

const realFetch = globalThis.fetch;

function pluginsPage(initial: Plugin[]) {
  const { doc } = appDocument();
  const el = pluginsElements(doc);
  const gateway = fakeGateway(initial);
  globalThis.fetch = gateway.fetch as typeof globalThis.fetch;
  let signedOut = 0;
  const page = new PluginsPage(el, {
    list: api.plugins,
    activate: api.activatePlugin,
    deactivate: api.deactivatePlugin,
    saveConfig: api.savePluginConfig,
    rescan: api.rescanPlugins,
    onSignedOut: () => signedOut++,
  });
  const card = (name: string) => {
    const root = el.list.querySelector<HTMLElement>(`article.plugin-card[data-plugin-name="${name}"]`);
    if (!root) throw new Error(`no card for ${name}`);
    const text = (sel: string) => root.querySelector(sel)?.textContent ?? null;
    const input = <T extends HTMLElement = HTMLInputElement>(key: string) => {
      const found = root.querySelector<T>(`.plugin-config-field[data-key="${key}"] .plugin-config-input`);
      if (!found) throw new Error(`no input ${key} in ${name}`);
      return found;
    };
    return {
      root,
      text,
      input,
      clear: (key: string) => root.querySelector<HTMLInputElement>(`.plugin-config-field[data-key="${key}"] .plugin-config-clear`),
      toggle: root.querySelector<HTMLButtonElement>('button.plugin-toggle')!,
      save: root.querySelector<HTMLButtonElement>('button.plugin-config-save')!,
      problems: () => [...root.querySelectorAll<HTMLElement>('li.plugin-problem')],
    };
  };
  const names = () => [...el.list.querySelectorAll<HTMLElement>('article.plugin-card')].map((a) => a.dataset.pluginName);
  return { doc, el, page, gateway, card, names, signedOut: () => signedOut };
}

describe('PluginsPage', () => {
  beforeEach(() => {
    delete (globalThis as { pwned?: unknown }).pwned;
  });
  afterEach(() => {
    globalThis.fetch = realFetch;
  });

  it('lists plugins with version, type, status, role, tools and network', async () => {
    const { el, page, card, names, gateway } = pluginsPage([
      plugin('slack', {
        status: 'activated',
        active: true,
        required_role: 'admin',
        tools: [
          { name: 'mcp__slack__send', description: 'Sends a message', required_role: 'operator' },
          { name: 'mcp__slack__read', required_role: '' } as PluginTool,
        ],
        network: ['slack.com', 'files.slack.com:443'],
      }),
      plugin('everything', { version: '2025.11.25', description: 'MCP reference server' }),
    ]);
    await page.show();
    assert.deepEqual(gateway.requests, [{ method: 'GET', path: '/api/v1/plugins', body: null }]);
    assert.deepEqual(names(), ['everything', 'slack']);
    assert.equal(el.empty.hidden, true);
    const slack = card('slack');
    assert.equal(slack.text('.plugin-name'), 'slack');
    assert.equal(slack.text('.plugin-version'), '1.0.0');
    assert.equal(slack.text('.plugin-type'), 'mcp');
    assert.equal(slack.text('.plugin-status'), 'Activated');
    assert.equal(slack.root.querySelector<HTMLElement>('.plugin-status')?.dataset.status, 'activated');
    assert.equal(slack.root.dataset.active, 'true');
    assert.equal(slack.text('.plugin-role'), 'admin');
    assert.equal(slack.text('.plugin-network'), 'slack.com, files.slack.com:443');
    assert.deepEqual(
      [...slack.root.querySelectorAll('li.plugin-tool')].map((li) => [li.querySelector('.plugin-tool-name')?.textContent, li.querySelector('.plugin-tool-role')?.textContent]),
      [
        ['mcp__slack__send', 'operator'],
        ['mcp__slack__read', 'admin'],
      ],
      "a tool without its own role needs the plugin's",
    );
    assert.equal(slack.toggle.textContent, 'Deactivate');
    assert.equal(slack.toggle.disabled, false);
    assert.equal(slack.root.querySelector('.plugin-pending')?.hasAttribute('hidden'), true);
    const everything = card('everything');
    assert.equal(everything.text('.plugin-description'), 'MCP reference server');
    assert.equal(everything.text('.plugin-network'), 'None');
    assert.equal(everything.text('.plugin-tools'), 'None');
    assert.equal(everything.toggle.textContent, 'Activate');
    assert.equal(everything.root.querySelector<HTMLFormElement>('form.plugin-config')?.hidden, true, 'no schema, no form');
  });

  it('says so when there are no plugins', async () => {
    const { el, page } = pluginsPage([]);
    await page.show();
    assert.equal(el.empty.hidden, false);
    assert.equal(el.list.children.length, 0);
  });

  it('disables activation with the reason where the gateway would refuse it', async () => {
    const { page, card, gateway } = pluginsPage([
      plugin('broken', { status: 'errored', errors: [problem()] }),
      plugin('unset', { status: 'needs_config', config_schema: SCHEMA }),
      plugin('skills', { plugin_type: 'skill' }),
    ]);
    await page.show();
    for (const [name, reason] of [
      ['broken', 'Fix the problems in plugin.json first.'],
      ['unset', 'Save its configuration first.'],
      ['skills', 'Only MCP plugins can be activated; this one is a skill plugin.'],
    ] as const) {
      const c = card(name);
      assert.equal(c.toggle.disabled, true, name);
      assert.equal(c.text('.plugin-toggle-reason'), reason);
      assert.equal(c.toggle.title, reason);
      c.toggle.click();
    }
    await settle();
    assert.deepEqual(gateway.mutations(), []);
  });

  it('activates and deactivates, and shows a refusal as the server words it', async () => {
    const { page, card, gateway } = pluginsPage([plugin('everything', { status: 'configured' })]);
    await page.show();
    card('everything').toggle.click();
    assert.equal(card('everything').toggle.disabled, true, 'held while the request runs');
    await settle();
    assert.deepEqual(gateway.mutations(), [{ method: 'POST', path: '/api/v1/plugins/everything/activate', body: null }]);
    assert.equal(card('everything').text('.plugin-status'), 'Activated');
    assert.equal(card('everything').toggle.textContent, 'Deactivate');
    assert.equal(card('everything').text('.plugin-notice'), 'Activated everything.');
    await page.show();
    assert.equal(card('everything').text('.plugin-notice'), '', 'a reopened page drops the last notice');

    card('everything').toggle.click();
    await settle();
    assert.deepEqual(gateway.mutations()[1], { method: 'POST', path: '/api/v1/plugins/everything/deactivate', body: null });
    assert.equal(card('everything').text('.plugin-status'), 'Configured');
    assert.equal(card('everything').toggle.textContent, 'Activate');

    gateway.fail(409, 'plugin_not_activatable', `Plugin 'everything' cannot be activated: ${XSS}`);
    card('everything').toggle.click();
    await settle();
    const alert = card('everything').root.querySelector<HTMLElement>('.plugin-alert')!;
    assert.equal(alert.hidden, false);
    assert.equal(alert.textContent, `Plugin 'everything' cannot be activated: ${XSS}`);
    assert.equal(card('everything').root.querySelector('img'), null);
    assert.equal(card('everything').text('.plugin-notice'), '');
    assert.equal(card('everything').toggle.disabled, false, 'the button comes back after a failure');
  });

  it('shows plugin.json problems as text, line by line', async () => {
    const { page, card, doc } = pluginsPage([
      plugin('slack', {
        status: 'errored',
        description: XSS,
        tools: [{ name: XSS, required_role: XSS } as PluginTool],
        errors: [
          problem(),
          problem({ line: 3, column: 9, field: `capabilities.tools[1].${XSS}`, message: `Tool name ${XSS} is bad`, suggestion: XSS }),
        ],
      }),
    ]);
    await page.show();
    await settle();
    const slack = card('slack');
    const [first, second] = slack.problems();
    assert.equal(first?.querySelector('.plugin-problem-file')?.textContent, 'plugin.json');
    assert.equal(first?.querySelector('.plugin-problem-file')?.getAttribute('title'), '/srv/plugins/slack/plugin.json');
    assert.equal(first?.querySelector('.plugin-problem-location')?.textContent, 'Line 12, column 5');
    assert.equal(first?.querySelector('.plugin-problem-field')?.textContent, 'version');
    assert.equal(first?.querySelector('.plugin-problem-message')?.textContent, "Expected comma after 'version' field");
    assert.equal(first?.querySelector('.plugin-problem-suggestion')?.textContent, "Add a ',' at the end of line 11.");
    assert.equal(second?.querySelector('.plugin-problem-location')?.textContent, 'Line 3, column 9');
    assert.equal(second?.querySelector('.plugin-problem-message')?.textContent, `Tool name ${XSS} is bad`);
    assert.equal(second?.querySelector('.plugin-problem-suggestion')?.textContent, XSS);
    assert.equal(slack.text('.plugin-description'), XSS);
    assert.equal(slack.text('.plugin-tool-name'), XSS);
    assert.equal(doc.querySelector('#plugins-list img'), null, 'server strings never become markup');
    assert.equal((globalThis as { pwned?: unknown }).pwned, undefined);
    assert.equal(slack.text('.plugin-status'), 'Errored');
    assert.equal(slack.root.querySelector('.plugin-pending')?.hasAttribute('hidden'), true);
  });

  it('warns that an active plugin runs its last valid version', async () => {
    const { page, card } = pluginsPage([
      plugin('slack', { status: 'activated', active: true, errors: [problem({ line: 2, column: 3, message: `Unknown field ${XSS}`, suggestion: null })] }),
    ]);
    await page.show();
    const pending = card('slack').root.querySelector<HTMLElement>('.plugin-pending')!;
    assert.equal(pending.hidden, false);
    assert.equal(pending.textContent, `Running the last valid version; fix plugin.json: Line 2, column 3: Unknown field ${XSS}`);
    assert.equal(pending.querySelector('img'), null);
    assert.equal(card('slack').problems().length, 1);
    assert.equal(card('slack').toggle.textContent, 'Deactivate');
    assert.equal(card('slack').toggle.disabled, false);
  });

  it('builds the config form from the schema', async () => {
    const { page, card } = pluginsPage([
      plugin('slack', { status: 'configured', config_schema: SCHEMA, config: { retries: 2, api_token: '[REDACTED]' }, secrets: { api_token: true } }),
    ]);
    await page.show();
    const slack = card('slack');
    assert.deepEqual(
      [...slack.root.querySelectorAll<HTMLElement>('.plugin-config-field')].map((f) => [f.dataset.key, f.dataset.kind]),
      [
        ['greeting', 'text'],
        ['mode', 'select'],
        ['retries', 'integer'],
        ['ratio', 'number'],
        ['verbose', 'boolean'],
        ['api_token', 'secret'],
        ['webhook_secret', 'secret'],
      ],
    );
    assert.equal(slack.input('greeting').value, 'hi', 'the default when nothing is saved');
    assert.equal(slack.input('greeting').type, 'text');
    const mode = slack.input<HTMLSelectElement>('mode');
    assert.deepEqual([...mode.options].map((o) => o.textContent), ['fast', 'safe'], 'a required select with a value offers no "none"');
    assert.equal(mode.selectedOptions[0]?.textContent, 'safe');
    assert.equal(slack.input('retries').type, 'number');
    assert.equal(slack.input('retries').value, '2');
    assert.equal(slack.input('retries').step, '1');
    assert.equal(slack.input('retries').min, '0');
    assert.equal(slack.input('verbose').type, 'checkbox');
    assert.equal(slack.input('verbose').checked, true);
    const token = slack.input('api_token');
    assert.equal(token.type, 'password');
    assert.equal(token.value, '', 'a secret is never prefilled');
    assert.equal(token.placeholder, 'Stored — leave empty to keep');
    assert.ok(slack.clear('api_token'), 'a stored secret can be cleared');
    assert.equal(slack.input('webhook_secret').placeholder, '');
    assert.equal(slack.clear('webhook_secret'), null, 'nothing stored, nothing to clear');
    const tokenField = slack.root.querySelector('.plugin-config-field[data-key="api_token"]')!;
    assert.equal(tokenField.querySelector('.plugin-config-required')?.textContent, 'required');
    assert.equal(tokenField.querySelector('.plugin-config-help')?.textContent, 'Token for the API');
    assert.equal(token.getAttribute('aria-describedby'), tokenField.querySelector('.plugin-config-help')?.id);
    assert.equal(slack.root.querySelector('.plugin-config-field[data-key="greeting"] .plugin-config-required'), null);
  });

  it('saves the config without the secrets nobody touched', async () => {
    const { page, card, gateway } = pluginsPage([
      plugin('slack', {
        status: 'configured',
        config_schema: SCHEMA,
        config: { greeting: 'hi', mode: 'safe', verbose: true, api_token: '[REDACTED]', webhook_secret: '[REDACTED]' },
        secrets: { api_token: true, webhook_secret: true },
      }),
    ]);
    await page.show();
    card('slack').input('greeting').value = 'hello';
    card('slack').input('retries').value = '4';
    card('slack').save.click();
    await settle();
    assert.deepEqual(gateway.mutations(), [
      { method: 'PUT', path: '/api/v1/plugins/slack/config', body: { config: { greeting: 'hello', mode: 'safe', retries: 4, verbose: true } } },
    ]);
    assert.equal(card('slack').text('.plugin-notice'), 'Saved the configuration of slack.');
    assert.equal(card('slack').input('greeting').value, 'hello');

    card('slack').input('api_token').value = 'xoxb-new';
    const clear = card('slack').clear('webhook_secret')!;
    clear.checked = true;
    clear.dispatchEvent(new clear.ownerDocument.defaultView!.Event('change'));
    assert.equal(card('slack').input('webhook_secret').disabled, true, 'clearing holds the input');
    card('slack').save.click();
    await settle();
    assert.deepEqual((gateway.mutations()[1]?.body as { config: Record<string, unknown> }).config, {
      greeting: 'hello',
      mode: 'safe',
      retries: 4,
      verbose: true,
      api_token: 'xoxb-new',
      webhook_secret: null,
    });
    // The form is refilled from the answer: the new secret is stored, not shown; the cleared one is gone.
    assert.equal(card('slack').input('api_token').value, '');
    assert.equal(card('slack').input('api_token').placeholder, 'Stored — leave empty to keep');
    assert.equal(card('slack').input('webhook_secret').placeholder, '');
    assert.equal(card('slack').input('webhook_secret').disabled, false);
    assert.equal(card('slack').clear('webhook_secret'), null);
  });

  it('refuses a number it cannot read, and shows the server refusal as it is', async () => {
    const { page, card, gateway } = pluginsPage([plugin('slack', { status: 'needs_config', config_schema: SCHEMA })]);
    await page.show();
    card('slack').input('retries').value = '2.5';
    card('slack').save.click();
    await settle();
    assert.deepEqual(gateway.mutations(), []);
    assert.equal(card('slack').text('.plugin-alert'), 'retries must be a whole number.');

    card('slack').input('retries').value = '2';
    gateway.fail(400, 'invalid_plugin_config', `Invalid configuration: api_token is required; ${XSS}`);
    card('slack').save.click();
    await settle();
    assert.equal(gateway.mutations().length, 1);
    assert.equal(card('slack').text('.plugin-alert'), `Invalid configuration: api_token is required; ${XSS}`);
    assert.equal(card('slack').root.querySelector('img'), null);
    assert.equal(card('slack').input('retries').value, '2', 'edits survive a refusal');
    assert.equal(card('slack').save.disabled, false);
    assert.equal(card('slack').text('.plugin-status'), 'Needs configuration');

    card('slack').input('api_token').value = 't0ken';
    card('slack').save.click();
    await settle();
    assert.equal(card('slack').root.querySelector<HTMLElement>('.plugin-alert')?.hidden, true);
    assert.equal(card('slack').text('.plugin-status'), 'Configured');
    assert.equal(card('slack').toggle.disabled, false, 'configured: it can be activated now');
  });

  it('keeps unsaved config edits while the plugin or another one changes', async () => {
    const { page, card } = pluginsPage([
      plugin('alpha', { status: 'configured' }),
      plugin('slack', { status: 'configured', config_schema: SCHEMA }),
    ]);
    await page.show();
    card('slack').input('greeting').value = 'typing…';
    card('slack').input('api_token').value = 'half-typed';
    card('alpha').toggle.click();
    await settle();
    assert.equal(card('alpha').text('.plugin-status'), 'Activated');
    card('slack').toggle.click();
    await settle();
    assert.equal(card('slack').text('.plugin-status'), 'Activated');
    assert.equal(card('slack').input('greeting').value, 'typing…');
    assert.equal(card('slack').input('api_token').value, 'half-typed');
  });

  it('empties a secret input once saved, even when the answer looks the same', async () => {
    const { page, card, gateway } = pluginsPage([
      plugin('slack', { status: 'configured', config_schema: SCHEMA, config: { mode: 'safe', verbose: true, api_token: '[REDACTED]' }, secrets: { api_token: true } }),
    ]);
    await page.show();
    card('slack').input('greeting').value = '';
    card('slack').input('api_token').value = 'rotated';
    card('slack').save.click();
    await settle();
    assert.deepEqual((gateway.mutations()[0]?.body as { config: unknown }).config, { mode: 'safe', verbose: true, api_token: 'rotated' });
    assert.equal(card('slack').input('api_token').value, '');
    assert.equal(card('slack').input('api_token').placeholder, 'Stored — leave empty to keep');
  });

  it('rescans and reports what changed', async () => {
    const { el, page, gateway, names } = pluginsPage([plugin('old'), plugin('slack')]);
    await page.show();
    gateway.onRescan({ added: ['a', 'b'], changed: ['slack'], removed: ['old'], plugins: [plugin('a'), plugin('b'), plugin('slack', { version: '1.1.0' })] });
    el.rescan.click();
    assert.equal(el.rescan.disabled, true);
    await settle();
    assert.deepEqual(gateway.mutations(), [{ method: 'POST', path: '/api/v1/plugins/rescan', body: null }]);
    assert.equal(el.summary.textContent, 'Added: a, b · Changed: slack · Removed: old');
    assert.deepEqual(names(), ['a', 'b', 'slack']);
    assert.equal(el.list.querySelector('[data-plugin-name="slack"] .plugin-version')?.textContent, '1.1.0');
    assert.equal(el.rescan.disabled, false);

    gateway.onRescan(null);
    el.rescan.click();
    await settle();
    assert.equal(el.summary.textContent, 'No changes');

    gateway.fail(503, 'unavailable', `Rescan failed ${XSS}`);
    el.rescan.click();
    await settle();
    assert.equal(el.error.hidden, false);
    assert.equal(el.error.textContent, `Rescan failed ${XSS}`);
    assert.equal(el.error.querySelector('img'), null);
  });

  it('signs out on 401 and forgets everything on clear', async () => {
    const { el, page, gateway, signedOut, names } = pluginsPage([plugin('slack')]);
    await page.show();
    gateway.fail(401, 'unauthenticated', 'Please sign in.');
    el.rescan.click();
    await settle();
    assert.equal(signedOut(), 1);
    assert.equal(el.error.hidden, true);
    page.clear();
    assert.deepEqual(names(), []);
    assert.equal(el.summary.textContent, '');
  });
});
