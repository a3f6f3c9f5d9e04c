// The plugins page (operators and admins): every plugin the gateway found in
// its plugins directory, how far it got, what it may do (tools, network),
// what is wrong with its plugin.json, and a form for its configuration
// generated from its `config_schema`. The gateway validates everything and its
// messages are shown as they are; the page only refuses numbers it cannot
// read. Every string from the server, plugin.json problems included, is
// untrusted and only ever set as text. Secrets are write-only: the server says
// whether one is stored, never what it is, so a secret is sent only when the
// operator typed a new one or asked to clear it.

import { ApiError } from './api';
import { pageElements } from './elements';
import type { Plugin, PluginConfigProperty, PluginConfigUpdate, PluginList, PluginProblem, PluginRescan } from './protocol';

// The statuses the gateway sends (`Plugin.status`: the plugins service's
// `PluginStatus` names), each with its badge's words.
const STATUS_TEXT = new Map<string, string>([
  ['registered', 'Registered'],
  ['needs_config', 'Needs configuration'],
  ['ready', 'Ready'],
  ['configured', 'Configured'],
  ['activated', 'Activated'],
  ['errored', 'Errored'],
  ['removed', 'Removed'],
]);

/** The status badge's words; an unknown status is shown as it is. */
export function statusText(status: string): string {
  return STATUS_TEXT.get(status) ?? String(status);
}

export interface Activation {
  action: 'activate' | 'deactivate';
  /** Why the button is disabled, shown beside it; null: it is not. */
  blocked: string | null;
}

/**
 * What the plugin's button does, and why it cannot yet: the gateway refuses
 * (409) to activate an errored, unconfigured or non-MCP plugin, and saying so
 * up front beats a click that fails. Deactivating is always offered.
 */
export function activation(plugin: Pick<Plugin, 'active' | 'status' | 'plugin_type'>): Activation {
  if (plugin.active === true || plugin.status === 'activated') return { action: 'deactivate', blocked: null };
  if (plugin.status === 'errored') return { action: 'activate', blocked: 'Fix the problems in plugin.json first.' };
  if (plugin.plugin_type !== 'mcp') {
    const type = typeof plugin.plugin_type === 'string' && plugin.plugin_type ? `a ${plugin.plugin_type} plugin` : 'of no known type';
    return { action: 'activate', blocked: `Only MCP plugins can be activated; this one is ${type}.` };
  }
  if (plugin.status === 'needs_config') return { action: 'activate', blocked: 'Save its configuration first.' };
  return { action: 'activate', blocked: null };
}

function positive(n: unknown): number | null {
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : null;
}

/** "Line 12, column 5" (both 1-based), "Line 12" without a column, "" without a line. */
export function problemLocation(problem: Pick<PluginProblem, 'line' | 'column'>): string {
  const line = positive(problem.line);
  if (line === null) return '';
  const column = positive(problem.column);
  return column === null ? `Line ${line}` : `Line ${line}, column ${column}`;
}

/** The file as the operator edits it: relative to the plugin's directory when it is inside it. */
export function problemFile(file: string, dir: string): string {
  const path = typeof file === 'string' ? file : '';
  const base = typeof dir === 'string' ? dir.replace(/\/+$/, '') : '';
  return base && path.startsWith(`${base}/`) ? path.slice(base.length + 1) : path;
}

/** One problem on one line: "Line 12, column 5: Expected comma after 'version' field (Add a ',' at the end of line 11.)". */
export function problemText(problem: PluginProblem): string {
  const message = typeof problem.message === 'string' ? problem.message : '';
  const head = [problemLocation(problem), message].filter(Boolean).join(': ');
  const suggestion = typeof problem.suggestion === 'string' && problem.suggestion ? problem.suggestion : '';
  return suggestion ? `${head} (${suggestion})` : head;
}

/**
 * The warning on an active plugin whose plugin.json broke since it was
 * activated: it keeps running its last valid manifest until the file is fixed.
 */
export function pendingText(plugin: Pick<Plugin, 'status' | 'errors'>): string | null {
  const errors = Array.isArray(plugin.errors) ? plugin.errors : [];
  const first = errors[0];
  if (plugin.status !== 'activated' || !first) return null;
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  return `Running the last valid version; fix plugin.json: ${problemText(first)}${more}`;
}

/** "Added: a, b · Changed: c · Removed: d", leaving out what is empty; "No changes" when all are. */
export function rescanSummary(rescan: Pick<PluginRescan, 'added' | 'changed' | 'removed'>): string {
  const parts: [string, unknown][] = [
    ['Added', rescan.added],
    ['Changed', rescan.changed],
    ['Removed', rescan.removed],
  ];
  const said = parts
    .filter((part): part is [string, string[]] => Array.isArray(part[1]) && part[1].length > 0)
    .map(([label, names]) => `${label}: ${names.join(', ')}`);
  return said.length > 0 ? said.join(' · ') : 'No changes';
}

/** By name, as the gateway sends them, so a plugin changed in place stays where it was. */
export function sortPlugins(plugins: readonly Plugin[]): Plugin[] {
  return [...plugins].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The input a schema property gets: `text` (string), `select` (enum),
 * `number`, `integer`, `boolean` (checkbox), `secret` (write-only password
 * input), and `json` for anything else (arrays, objects, untyped), typed as
 * JSON rather than left out of the form.
 */
export type FieldKind = 'text' | 'select' | 'number' | 'integer' | 'boolean' | 'secret' | 'json';

/** One field of a plugin's configuration form, as its schema and saved config describe it. */
export interface ConfigField {
  key: string;
  /** The schema's `title`, or the key. */
  label: string;
  kind: FieldKind;
  required: boolean;
  /** The schema's `description`; "" for none. */
  help: string;
  /** select: the values offered, in order; the select's value is an index into them, "" for none. */
  options: unknown[];
  /** The input's first text: the saved value, else the default, else "". Always "" for a secret. */
  value: string;
  /** boolean: whether the box starts ticked. */
  checked: boolean;
  /** secret: a value is stored, and kept unless replaced or cleared. */
  stored: boolean;
  minimum: number | null;
  maximum: number | null;
}

function kindOf(prop: PluginConfigProperty): FieldKind {
  if (prop.secret === true) return 'secret';
  if (Array.isArray(prop.enum) && prop.enum.length > 0) return 'select';
  const types = Array.isArray(prop.type) ? prop.type : [prop.type];
  const type = types.find((t) => typeof t === 'string' && t !== 'null');
  switch (type) {
    case 'string':
      return 'text';
    case 'number':
      return 'number';
    case 'integer':
      return 'integer';
    case 'boolean':
      return 'boolean';
    default:
      return 'json';
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  return a === b || (typeof a === 'object' && typeof b === 'object' && JSON.stringify(a) === JSON.stringify(b));
}

function finite(n: unknown): number | null {
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}

function asText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/**
 * The form for `plugin`'s `config_schema`, in the schema's order, filled
 * from its saved config (a value the server has wins over the default). No
 * schema, or one without properties: no form.
 */
export function configFields(plugin: Pick<Plugin, 'config_schema' | 'config' | 'secrets'>): ConfigField[] {
  const schema = plugin.config_schema;
  const properties = schema && typeof schema.properties === 'object' && schema.properties !== null ? schema.properties : {};
  const required = new Set(Array.isArray(schema?.required) ? schema.required : []);
  const config = plugin.config && typeof plugin.config === 'object' ? plugin.config : {};
  const secrets = plugin.secrets && typeof plugin.secrets === 'object' ? plugin.secrets : {};
  return Object.entries(properties).map(([key, raw]) => {
    const prop: PluginConfigProperty = raw && typeof raw === 'object' ? raw : {};
    const kind = kindOf(prop);
    const saved = Object.hasOwn(config, key) ? config[key] : undefined;
    const current = saved === undefined || saved === null ? prop.default : saved;
    const field: ConfigField = {
      key,
      label: typeof prop.title === 'string' && prop.title ? prop.title : key,
      kind,
      required: required.has(key),
      help: typeof prop.description === 'string' ? prop.description : '',
      options: [],
      value: '',
      checked: false,
      stored: false,
      minimum: finite(prop.minimum),
      maximum: finite(prop.maximum),
    };
    switch (kind) {
      case 'secret':
        // Never prefilled: what the server sends for a set secret is "[REDACTED]", not the secret.
        field.stored = Object.hasOwn(secrets, key) && secrets[key] === true;
        break;
      case 'boolean':
        field.checked = current === true;
        break;
      case 'select': {
        field.options = [...(prop.enum ?? [])];
        let at = current === undefined ? -1 : field.options.findIndex((o) => sameValue(o, current));
        if (current !== undefined && at < 0) {
          // A saved value the schema no longer offers is shown, not silently replaced.
          field.options.unshift(current);
          at = 0;
        }
        field.value = at < 0 ? '' : String(at);
        break;
      }
      case 'number':
      case 'integer':
        field.value = typeof current === 'number' || typeof current === 'string' ? String(current) : '';
        break;
      case 'text':
        field.value = asText(current);
        break;
      case 'json':
        field.value = current === undefined ? '' : JSON.stringify(current);
        break;
    }
    return field;
  });
}

/** What a field's inputs hold when the form is saved. */
export interface FieldInput {
  /** The text typed or the option chosen (an index, "" for none). */
  value?: string;
  /** boolean: the box is ticked. */
  checked?: boolean;
  /** secret: "Clear" is ticked. */
  clear?: boolean;
  /** The browser could not read what was typed (a number input with letters in it). */
  bad?: boolean;
}

export type ConfigBody = { ok: true; update: PluginConfigUpdate } | { ok: false; key: string; message: string };

/**
 * The `PUT .../config` body for the form. An empty field is left out (unset);
 * a secret is sent only when typed (its new value) or cleared (null), so
 * saving the form keeps every stored secret nobody touched.
 */
export function configBody(fields: readonly ConfigField[], read: (key: string) => FieldInput | undefined): ConfigBody {
  const config: [string, unknown][] = [];
  for (const field of fields) {
    const input = read(field.key) ?? {};
    const text = typeof input.value === 'string' ? input.value : '';
    switch (field.kind) {
      case 'secret':
        if (input.clear === true) config.push([field.key, null]);
        else if (text !== '') config.push([field.key, text]);
        break;
      case 'boolean':
        config.push([field.key, input.checked === true]);
        break;
      case 'select': {
        const at = text === '' ? -1 : Number(text);
        if (Number.isInteger(at) && at >= 0 && at < field.options.length) config.push([field.key, field.options[at]]);
        break;
      }
      case 'number':
      case 'integer': {
        const trimmed = text.trim();
        if (input.bad !== true && trimmed === '') break;
        const n = trimmed === '' ? Number.NaN : Number(trimmed);
        if (!Number.isFinite(n)) return { ok: false, key: field.key, message: `${field.label} must be a number.` };
        if (field.kind === 'integer' && !Number.isInteger(n)) return { ok: false, key: field.key, message: `${field.label} must be a whole number.` };
        config.push([field.key, n]);
        break;
      }
      case 'text':
        if (text !== '') config.push([field.key, text]);
        break;
      case 'json': {
        if (text.trim() === '') break;
        try {
          config.push([field.key, JSON.parse(text)]);
        } catch {
          return { ok: false, key: field.key, message: `${field.label} must be valid JSON (e.g. "text", 3, true or ["a", "b"]).` };
        }
        break;
      }
    }
  }
  // fromEntries defines own properties, so even a key named "__proto__" is sent as a key.
  return { ok: true, update: { config: Object.fromEntries(config) } };
}

export interface PluginsElements {
  rescan: HTMLButtonElement;
  /** What the last rescan found, as a polite live region. */
  summary: HTMLElement;
  error: HTMLElement;
  empty: HTMLElement;
  list: HTMLElement;
}

export function pluginsElements(doc: Document): PluginsElements {
  const { get } = pageElements(doc, 'plugins page');
  return {
    rescan: get<HTMLButtonElement>('plugins-rescan'),
    summary: get('plugins-rescan-summary'),
    error: get('plugins-error'),
    empty: get('plugins-empty'),
    list: get('plugins-list'),
  };
}

export interface PluginsOptions {
  list(): Promise<PluginList>;
  activate(name: string): Promise<Plugin>;
  deactivate(name: string): Promise<Plugin>;
  saveConfig(name: string, update: PluginConfigUpdate): Promise<Plugin>;
  rescan(): Promise<PluginRescan>;
  /** The session cookie is gone: show the sign-in form. */
  onSignedOut(): void;
}

type Control = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

interface FieldControls {
  input: Control;
  /** secret with a stored value: the "Clear" box. */
  clear: HTMLInputElement | null;
}

interface Card {
  root: HTMLElement;
  name: HTMLElement;
  version: HTMLElement;
  type: HTMLElement;
  status: HTMLElement;
  toggle: HTMLButtonElement;
  reason: HTMLElement;
  description: HTMLElement;
  role: HTMLElement;
  network: HTMLElement;
  tools: HTMLUListElement;
  pending: HTMLElement;
  problems: HTMLUListElement;
  /** This plugin's failed action, as the server said it. */
  alert: HTMLElement;
  notice: HTMLElement;
  form: HTMLFormElement;
  fieldsBox: HTMLElement;
  save: HTMLButtonElement;
  fields: ConfigField[];
  controls: Map<string, FieldControls>;
  /** The plugin as the card was last drawn from, serialized, to skip redrawing what did not change. */
  shown: string | null;
  /** What the form was built from; it is rebuilt only when that changes, so edits survive other updates. */
  formSource: string | null;
  busy: boolean;
}

export class PluginsPage {
  private plugins: Plugin[] = [];
  private readonly cards = new Map<string, Card>();
  /** Bumped by `clear()` so answers for the previous user are dropped. */
  private generation = 0;

  constructor(
    private readonly el: PluginsElements,
    private readonly opts: PluginsOptions,
  ) {
    el.rescan.addEventListener('click', () => void this.rescan());
    // One listener for every card's controls, which come and go with the list.
    el.list.addEventListener('click', (ev) => {
      const button = (ev.target as Element | null)?.closest?.<HTMLButtonElement>('button.plugin-toggle');
      const name = button?.closest<HTMLElement>('[data-plugin-name]')?.dataset.pluginName;
      if (button && name !== undefined) void this.toggle(name);
    });
    el.list.addEventListener('submit', (ev) => {
      const form = (ev.target as Element | null)?.closest?.<HTMLFormElement>('form.plugin-config');
      const name = form?.closest<HTMLElement>('[data-plugin-name]')?.dataset.pluginName;
      if (!form || name === undefined) return;
      ev.preventDefault();
      void this.saveConfig(name);
    });
  }

  /** Opens the page: loads the list afresh (files may have changed on disk). */
  async show(): Promise<void> {
    const generation = this.generation;
    try {
      const list = await this.opts.list();
      if (generation !== this.generation) return;
      this.plugins = Array.isArray(list.plugins) ? list.plugins : [];
      this.render();
      this.clearCardMessages();
      this.showError(null);
    } catch (err) {
      if (generation !== this.generation) return;
      this.fail(err, 'The plugins could not be loaded.', (m) => this.showError(m));
    }
  }

  /** Forgets every card and message, e.g. on sign-out. */
  clear(): void {
    this.generation++;
    this.plugins = [];
    this.render();
    this.el.empty.hidden = true;
    this.showError(null);
    this.el.summary.textContent = '';
    this.el.rescan.disabled = false;
  }

  private async rescan(): Promise<void> {
    const generation = this.generation;
    this.el.rescan.disabled = true;
    this.el.summary.textContent = '';
    try {
      const result = await this.opts.rescan();
      if (generation !== this.generation) return;
      this.plugins = Array.isArray(result.plugins) ? result.plugins : [];
      this.render();
      this.clearCardMessages();
      this.showError(null);
      this.el.summary.textContent = rescanSummary(result);
    } catch (err) {
      if (generation !== this.generation) return;
      this.fail(err, 'The plugins directory could not be rescanned.', (m) => this.showError(m));
    } finally {
      if (generation === this.generation) this.el.rescan.disabled = false;
    }
  }

  private async toggle(name: string): Promise<void> {
    const plugin = this.plugins.find((p) => p.name === name);
    const card = this.cards.get(name);
    if (!plugin || !card || card.busy) return;
    const { action, blocked } = activation(plugin);
    if (blocked !== null) return;
    await this.act(card, async () => {
      const updated = await (action === 'activate' ? this.opts.activate(name) : this.opts.deactivate(name));
      this.upsert(updated, false);
      return `${action === 'activate' ? 'Activated' : 'Deactivated'} ${name}.`;
    }, `${name} could not be ${action}d.`);
  }

  private async saveConfig(name: string): Promise<void> {
    const card = this.cards.get(name);
    if (!card || card.busy) return;
    const body = configBody(card.fields, (key) => {
      const c = card.controls.get(key);
      if (!c) return undefined;
      return {
        value: c.input.value,
        checked: c.input.tagName === 'INPUT' && (c.input as HTMLInputElement).checked,
        clear: c.clear?.checked === true,
        bad: c.input.validity?.badInput === true,
      };
    });
    if (!body.ok) {
      this.showCardMessage(card, body.message, null);
      card.controls.get(body.key)?.input.focus();
      return;
    }
    await this.act(card, async () => {
      const updated = await this.opts.saveConfig(name, body.update);
      // What was saved is now the form's truth: secrets typed are cleared, "Stored" shows.
      this.upsert(updated, true);
      return `Saved the configuration of ${name}.`;
    }, `The configuration of ${name} could not be saved.`);
  }

  /** Runs one action of a card with its buttons held, and reports it in the card. */
  private async act(card: Card, run: () => Promise<string>, fallback: string): Promise<void> {
    const generation = this.generation;
    card.busy = true;
    this.updateButtons(card);
    this.showCardMessage(card, null, null);
    try {
      const done = await run();
      if (generation !== this.generation) return;
      this.showCardMessage(card, null, done);
    } catch (err) {
      if (generation !== this.generation) return;
      this.fail(err, fallback, (m) => this.showCardMessage(card, m, null));
    } finally {
      card.busy = false;
      this.updateButtons(card);
    }
  }

  /** Puts the server's copy of a plugin in the list; `resetForm` refills its form from it. */
  private upsert(plugin: Plugin, resetForm: boolean): void {
    const at = this.plugins.findIndex((p) => p.name === plugin.name);
    if (at >= 0) this.plugins[at] = plugin;
    else this.plugins.push(plugin);
    const card = this.cards.get(plugin.name);
    if (card && resetForm) card.formSource = null;
    this.render();
  }

  private render(): void {
    const doc = this.el.list.ownerDocument;
    const keep = new Set<string>();
    let cursor: Element | null = this.el.list.firstElementChild;
    for (const plugin of sortPlugins(this.plugins)) {
      if (typeof plugin.name !== 'string' || keep.has(plugin.name)) continue;
      keep.add(plugin.name);
      let card = this.cards.get(plugin.name);
      if (!card) {
        card = createCard(doc, plugin.name);
        this.cards.set(plugin.name, card);
      }
      this.updateCard(card, plugin);
      if (card.root === cursor) {
        cursor = cursor.nextElementSibling;
      } else {
        this.el.list.insertBefore(card.root, cursor);
      }
    }
    for (const [name, card] of this.cards) {
      if (!keep.has(name)) {
        card.root.remove();
        this.cards.delete(name);
      }
    }
    this.el.empty.hidden = keep.size > 0;
  }

  private updateCard(card: Card, plugin: Plugin): void {
    const shown = JSON.stringify(plugin);
    if (shown === card.shown && card.formSource !== null) return;
    card.shown = shown;
    const status = String(plugin.status);
    card.root.dataset.status = status;
    card.root.dataset.active = String(activation(plugin).action === 'deactivate');
    card.name.textContent = plugin.name;
    card.version.textContent = typeof plugin.version === 'string' && plugin.version ? plugin.version : '';
    card.type.textContent = typeof plugin.plugin_type === 'string' ? plugin.plugin_type : '';
    card.type.hidden = !card.type.textContent;
    card.status.textContent = statusText(status);
    card.status.dataset.status = status;
    card.description.textContent = typeof plugin.description === 'string' ? plugin.description : '';
    card.description.hidden = !card.description.textContent;
    card.role.textContent = typeof plugin.required_role === 'string' ? plugin.required_role : '';
    const network = Array.isArray(plugin.network) ? plugin.network.filter((h) => typeof h === 'string') : [];
    card.network.textContent = network.length > 0 ? network.join(', ') : 'None';
    fillTools(card.tools, plugin);
    const pending = pendingText(plugin);
    card.pending.hidden = pending === null;
    card.pending.textContent = pending ?? '';
    fillProblems(card.problems, plugin);
    const formSource = JSON.stringify([plugin.config_schema, plugin.config, plugin.secrets]);
    if (formSource !== card.formSource) {
      card.formSource = formSource;
      buildForm(card, plugin);
    }
    this.updateButtons(card, plugin);
  }

  private updateButtons(card: Card, plugin = this.plugins.find((p) => p.name === card.root.dataset.pluginName)): void {
    if (!plugin) return;
    const { action, blocked } = activation(plugin);
    const verb = action === 'activate' ? 'Activate' : 'Deactivate';
    card.toggle.textContent = verb;
    card.toggle.dataset.action = action;
    card.toggle.setAttribute('aria-label', `${verb} ${plugin.name}`);
    card.toggle.disabled = card.busy || blocked !== null;
    card.toggle.title = blocked ?? '';
    card.reason.textContent = blocked ?? '';
    card.reason.hidden = blocked === null;
    card.save.disabled = card.busy;
  }

  private fail(err: unknown, fallback: string, show: (message: string) => void): void {
    if (err instanceof ApiError && err.status === 401) {
      this.opts.onSignedOut();
      return;
    }
    show(err instanceof ApiError ? err.message : fallback);
  }

  /** A reopened page or a rescan starts without the last action's messages. */
  private clearCardMessages(): void {
    for (const card of this.cards.values()) this.showCardMessage(card, null, null);
  }

  private showCardMessage(card: Card, error: string | null, notice: string | null): void {
    card.alert.hidden = error === null;
    card.alert.textContent = error ?? '';
    card.notice.textContent = notice ?? '';
  }

  private showError(message: string | null): void {
    this.el.error.hidden = message === null;
    this.el.error.textContent = message ?? '';
  }
}

/** Ids tie help texts and reasons to their controls; they only need to be unique in the page. */
let nextId = 0;
function uniqueId(prefix: string): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

function make<K extends keyof HTMLElementTagNameMap>(doc: Document, tag: K, cls = '', text?: string): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function createCard(doc: Document, name: string): Card {
  const root = make(doc, 'article', 'plugin-card');
  root.dataset.pluginName = name;
  const title = make(doc, 'h2', 'plugin-title');
  const nameEl = make(doc, 'span', 'plugin-name');
  const version = make(doc, 'span', 'plugin-version');
  title.append(nameEl, ' ', version);
  root.setAttribute('aria-label', `Plugin ${name}`);
  const type = make(doc, 'span', 'plugin-type');
  const status = make(doc, 'span', 'plugin-status');
  const toggle = make(doc, 'button', 'plugin-toggle secondary');
  toggle.type = 'button';
  const reason = make(doc, 'span', 'plugin-toggle-reason');
  reason.id = uniqueId('plugin-reason');
  toggle.setAttribute('aria-describedby', reason.id);
  const actions = make(doc, 'div', 'plugin-actions');
  actions.append(reason, toggle);
  const head = make(doc, 'div', 'plugin-head');
  head.append(title, type, status, actions);

  const description = make(doc, 'p', 'plugin-description');
  const role = make(doc, 'dd', 'plugin-role');
  const network = make(doc, 'dd', 'plugin-network');
  const tools = make(doc, 'ul', 'plugin-tools');
  const toolsCell = make(doc, 'dd');
  toolsCell.append(tools);
  const meta = make(doc, 'dl', 'plugin-meta');
  for (const [label, value] of [
    ['Required role', role],
    ['Network', network],
    ['Tools', toolsCell],
  ] as const) {
    const pair = make(doc, 'div', 'plugin-meta-item');
    pair.append(make(doc, 'dt', '', label), value);
    meta.append(pair);
  }

  const pending = make(doc, 'p', 'plugin-pending');
  pending.setAttribute('role', 'note');
  pending.hidden = true;
  const problems = make(doc, 'ul', 'plugin-problems');
  problems.setAttribute('aria-label', `Problems in the plugin.json of ${name}`);
  problems.hidden = true;
  const alert = make(doc, 'p', 'form-error plugin-alert');
  alert.setAttribute('role', 'alert');
  alert.hidden = true;
  const notice = make(doc, 'p', 'admin-notice plugin-notice');
  notice.setAttribute('role', 'status');
  notice.setAttribute('aria-live', 'polite');

  const form = make(doc, 'form', 'plugin-config');
  form.noValidate = true;
  form.setAttribute('aria-label', `Configuration of ${name}`);
  form.hidden = true;
  const fieldsBox = make(doc, 'div', 'plugin-config-fields');
  const save = make(doc, 'button', 'primary plugin-config-save', 'Save configuration');
  save.type = 'submit';
  const formActions = make(doc, 'div', 'plugin-config-actions');
  formActions.append(save);
  form.append(make(doc, 'h3', '', 'Configuration'), fieldsBox, formActions);

  root.append(head, description, meta, pending, problems, alert, notice, form);
  return {
    root,
    name: nameEl,
    version,
    type,
    status,
    toggle,
    reason,
    description,
    role,
    network,
    tools,
    pending,
    problems,
    alert,
    notice,
    form,
    fieldsBox,
    save,
    fields: [],
    controls: new Map(),
    shown: null,
    formSource: null,
    busy: false,
  };
}

/** Each tool with the role it needs: its own, else the plugin's. */
function fillTools(list: HTMLUListElement, plugin: Plugin): void {
  const doc = list.ownerDocument;
  const tools = Array.isArray(plugin.tools) ? plugin.tools.filter((t) => t && typeof t.name === 'string') : [];
  if (tools.length === 0) {
    list.replaceChildren(make(doc, 'li', 'plugin-tools-none', 'None'));
    return;
  }
  list.replaceChildren(
    ...tools.map((tool) => {
      const li = make(doc, 'li', 'plugin-tool');
      li.dataset.toolName = tool.name;
      const name = make(doc, 'code', 'plugin-tool-name', tool.name);
      if (typeof tool.description === 'string' && tool.description) name.title = tool.description;
      const role = typeof tool.required_role === 'string' && tool.required_role ? tool.required_role : plugin.required_role;
      li.append(name, ' ', make(doc, 'span', 'plugin-tool-role', typeof role === 'string' ? role : ''));
      return li;
    }),
  );
}

/** Each problem as text: file, "Line N, column M", field, message, suggestion. */
function fillProblems(list: HTMLUListElement, plugin: Plugin): void {
  const doc = list.ownerDocument;
  const problems = Array.isArray(plugin.errors) ? plugin.errors.filter((p) => p && typeof p === 'object') : [];
  list.hidden = problems.length === 0;
  list.replaceChildren(
    ...problems.map((problem) => {
      const li = make(doc, 'li', 'plugin-problem');
      const where = make(doc, 'span', 'plugin-problem-where');
      const file = problemFile(problem.file, plugin.dir);
      if (file) {
        const fileEl = make(doc, 'span', 'plugin-problem-file', file);
        if (typeof problem.file === 'string') fileEl.title = problem.file;
        where.append(fileEl);
      }
      const location = problemLocation(problem);
      if (location) where.append(make(doc, 'span', 'plugin-problem-location', location));
      if (typeof problem.field === 'string' && problem.field) where.append(make(doc, 'code', 'plugin-problem-field', problem.field));
      li.append(where, make(doc, 'span', 'plugin-problem-message', typeof problem.message === 'string' ? problem.message : ''));
      if (typeof problem.suggestion === 'string' && problem.suggestion) {
        li.append(make(doc, 'span', 'plugin-problem-suggestion', problem.suggestion));
      }
      return li;
    }),
  );
}

function buildForm(card: Card, plugin: Plugin): void {
  const doc = card.root.ownerDocument;
  card.fields = configFields(plugin);
  card.controls.clear();
  card.form.hidden = card.fields.length === 0;
  card.fieldsBox.replaceChildren(
    ...card.fields.map((field) => {
      const { box, controls } = fieldBox(doc, field);
      card.controls.set(field.key, controls);
      return box;
    }),
  );
}

function fieldBox(doc: Document, field: ConfigField): { box: HTMLElement; controls: FieldControls } {
  const box = make(doc, 'div', 'plugin-config-field');
  box.dataset.key = field.key;
  box.dataset.kind = field.kind;
  const name = make(doc, 'span', 'plugin-config-label', field.label);
  if (field.required) name.append(' ', make(doc, 'span', 'plugin-config-required', 'required'));
  const input = fieldInput(doc, field);
  input.classList.add('plugin-config-input');
  input.name = field.key;
  if (field.required && field.kind !== 'boolean' && !field.stored) input.setAttribute('aria-required', 'true');
  const label = make(doc, 'label', field.kind === 'boolean' ? 'plugin-config-check' : '');
  if (field.kind === 'boolean') label.append(input, name);
  else label.append(name, input);
  box.append(label);

  let clear: HTMLInputElement | null = null;
  if (field.kind === 'secret' && field.stored) {
    clear = make(doc, 'input', 'plugin-config-clear');
    clear.type = 'checkbox';
    clear.setAttribute('aria-label', `Clear ${field.label}`);
    const clearBox = clear;
    // Clearing and typing a new value at once would be ambiguous: clearing wins, so typing is held.
    clearBox.addEventListener('change', () => {
      input.disabled = clearBox.checked;
      if (clearBox.checked) input.value = '';
    });
    const clearLabel = make(doc, 'label', 'plugin-config-check plugin-config-clear-label');
    clearLabel.append(clear, 'Clear');
    box.append(clearLabel);
  }
  if (field.help) {
    const help = make(doc, 'p', 'plugin-config-help', field.help);
    help.id = uniqueId('plugin-help');
    input.setAttribute('aria-describedby', help.id);
    box.append(help);
  }
  return { box, controls: { input, clear } };
}

function fieldInput(doc: Document, field: ConfigField): Control {
  switch (field.kind) {
    case 'select': {
      const select = make(doc, 'select');
      const none = make(doc, 'option', '', field.required ? 'Choose…' : 'Not set');
      none.value = '';
      if (!field.required || field.value === '') select.append(none);
      field.options.forEach((option, at) => {
        const el = make(doc, 'option', '', asText(option));
        el.value = String(at);
        select.append(el);
      });
      select.value = field.value;
      return select;
    }
    case 'json': {
      const area = make(doc, 'textarea');
      area.rows = 2;
      area.spellcheck = false;
      area.value = field.value;
      area.placeholder = 'JSON';
      return area;
    }
    default: {
      const input = make(doc, 'input');
      input.autocomplete = 'off';
      input.spellcheck = false;
      if (field.kind === 'secret') {
        input.type = 'password';
        // Not the sign-in password: keeps the browser from filling it in.
        input.autocomplete = 'new-password';
        if (field.stored) input.placeholder = 'Stored — leave empty to keep';
      } else if (field.kind === 'boolean') {
        input.type = 'checkbox';
        input.checked = field.checked;
      } else if (field.kind === 'number' || field.kind === 'integer') {
        input.type = 'number';
        input.step = field.kind === 'integer' ? '1' : 'any';
        if (field.minimum !== null) input.min = String(field.minimum);
        if (field.maximum !== null) input.max = String(field.maximum);
        input.value = field.value;
      } else {
        input.type = 'text';
        input.value = field.value;
      }
      return input;
    }
  }
}
