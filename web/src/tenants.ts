// The Tenants page (admins): every tenant in a table with search and
// filters; a form to add or edit one, built from the connector registry
// (`GET /api/v1/tool-types`: the tool's own fields, which are required,
// which are secret, which hold a URL), with a message under each field
// (what the page can check itself, and what the gateway refused — a taken
// tenant_id, a field its checks name); "Test connection" before saving;
// secrets write-only; the webhook secret shown once with a Copy button and
// the webhook URL to paste into the tool; soft delete after a confirmation;
// inventory and knowledge-base uploads (CSV or JSON); "Import history"
// with its progress, polled until it ends. A tenant with a dedicated queue
// says so in its row: its jobs wait for a worker of its own
// (`CSP_WORKER_TENANT`), which `csp dev` does not run. Server text is only
// ever set as text.

import { ApiError, type UploadKind } from './api';
import { pageElements } from './elements';
import { formatTimestamp } from './format';
import type {
  ConnectionTest,
  ConnectionTestBody,
  ContextSource,
  CreatedTenant,
  ImportProgress,
  ImportRequest,
  ImportStarted,
  NewTenant,
  Tenant,
  TenantList,
  TenantPatch,
  ToolField,
  ToolTypeInfo,
  ToolTypeList,
  Upserted,
  WebhookSecret,
} from './protocol';
import type { Timers } from './refresh';

/** What a stored secret's input says on edit. */
export const SECRET_KEPT = 'Stored — leave empty to keep';
/** What a secret's input says when none is stored. */
export const SECRET_UNSET = 'Not set';

/** The context sources a tenant may use, as the form offers them. */
export const SOURCES: readonly { value: ContextSource; label: string }[] = [
  { value: 'ticket_history', label: 'Similar resolved tickets' },
  { value: 'kb', label: 'Knowledge base' },
  { value: 'ip_inventory', label: 'IP inventory' },
];

/** How often a running import's progress is read again. */
export const IMPORT_POLL_MS = 1000;

export const TENANT_ID_RULE = "Use 2 to 63 lowercase letters, digits or '-', starting with a letter or digit.";

// ----------------------------------------------------------------- helpers

export type StatusFilter = '' | 'active' | 'deleted';

export interface TenantFilters {
  q: string;
  toolType: string;
  status: StatusFilter;
}

/** Where the tenant's tool is: its first URL field that is set, else its first text field (a Zendesk subdomain). */
export function tenantLocation(tenant: Tenant, tool: ToolTypeInfo | undefined): string {
  const value = (name: string): string => {
    const v = (tenant as unknown as Record<string, unknown>)[name];
    return typeof v === 'string' ? v : '';
  };
  const fields = tool?.fields ?? [];
  for (const kind of ['url', 'text'] as const) {
    const found = fields.find((f) => f.kind === kind && !f.secret && value(f.name));
    if (found) return value(found.name);
  }
  return '';
}

/** The tenants the filters let through, by name. Search matches the name, tenant id or URL, case-insensitively. */
export function filterTenants(tenants: readonly Tenant[], filters: TenantFilters, tools: readonly ToolTypeInfo[]): Tenant[] {
  const q = filters.q.trim().toLowerCase();
  return tenants
    .filter((t) => !filters.toolType || t.tool_type === filters.toolType)
    .filter((t) => filters.status === '' || (filters.status === 'active') === t.is_active)
    .filter((t) => {
      if (!q) return true;
      const where = tenantLocation(
        t,
        tools.find((x) => x.tool_type === t.tool_type),
      );
      return [t.name, t.tenant_id, where].some((s) => s.toLowerCase().includes(q));
    })
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }) || (a.tenant_id < b.tenant_id ? -1 : 1));
}

const SLUG = /^[a-z0-9][a-z0-9-]{1,62}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Whether `text` is an http(s) URL without credentials, query or fragment (the connectors' rule). */
export function isToolUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && !url.username && !url.password && !url.search && !text.includes('#');
}

/** What one field's value breaks, or null. `stored`: a secret is kept when left empty. */
export function fieldProblem(field: Pick<ToolField, 'label' | 'required' | 'secret' | 'kind' | 'choices'>, value: string, stored = false): string | null {
  const v = value.trim();
  if (!v) return field.required && !(field.secret && stored) ? `${field.label} is required.` : null;
  switch (field.kind) {
    case 'url':
      return isToolUrl(v) ? null : 'Enter an http or https URL without credentials, query or fragment (e.g. https://helpdesk.example.com).';
    case 'email':
      return EMAIL.test(v) ? null : 'Enter an e-mail address.';
    case 'credential':
      return /\s/.test(v) ? 'Must not contain spaces.' : null;
    case 'choice':
      return field.choices.includes(v) ? null : `Choose one of: ${field.choices.join(', ')}.`;
    default:
      return null;
  }
}

/** The form's values, by input name. */
export type FormValues = Record<string, string>;

/**
 * Every problem of the form the page can see itself, by field name:
 * `tenant_id` and `name` (on create), each of the tool's fields, the
 * knowledge-base URL and the budget.
 */
export function validateTenantForm(tool: ToolTypeInfo, values: FormValues, mode: 'create' | 'edit', storedSecrets: readonly string[] = []): Record<string, string> {
  const errors: Record<string, string> = {};
  const get = (name: string): string => (values[name] ?? '').trim();
  if (mode === 'create') {
    if (!get('tenant_id')) errors.tenant_id = 'Tenant id is required.';
    else if (!SLUG.test(get('tenant_id'))) errors.tenant_id = TENANT_ID_RULE;
  }
  if (!get('name')) errors.name = 'Name is required.';
  for (const field of tool.fields) {
    const problem = fieldProblem(field, values[field.name] ?? '', mode === 'edit' && storedSecrets.includes(field.name));
    if (problem) errors[field.name] = problem;
  }
  if (get('kb_api_url') && !isToolUrl(get('kb_api_url'))) errors.kb_api_url = 'Enter an http or https URL.';
  const budget = get('monthly_budget_usd');
  if (budget && !(/^\d+(\.\d+)?$/.test(budget) && Number.isFinite(Number(budget)))) errors.monthly_budget_usd = 'Enter dollars (e.g. 100 or 12.50), or leave it empty for no cap.';
  const words = get('max_words');
  if (words && !(/^\d+$/.test(words) && Number(words) >= 1 && Number(words) <= 500)) errors.max_words = 'Enter a number of words from 1 to 500.';
  return errors;
}

/** The field a gateway refusal is about, with its message: a taken tenant_id, or the field its message starts with. */
export function serverFieldError(err: unknown, fieldNames: readonly string[]): { field: string; message: string } | null {
  if (!(err instanceof ApiError)) return null;
  if (err.code === 'tenant_exists') return { field: 'tenant_id', message: err.message };
  if (err.code !== 'invalid_tenant' && err.code !== 'invalid_request') return null;
  const first = /^([a-z_]+(?:\.[a-z_]+)?)\b/.exec(err.message)?.[1] ?? '';
  const field = first.startsWith('enhancement_preferences.') ? first.slice('enhancement_preferences.'.length) : first;
  return fieldNames.includes(field) ? { field, message: err.message } : null;
}

/** The preferences the form holds. */
export interface PreferenceValues {
  sources: ContextSource[];
  noteFormat: 'html' | 'markdown';
  maxWords: number;
  maskPii: boolean;
}

function toolValues(tool: ToolTypeInfo, values: FormValues, keepEmptySecrets: boolean): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const field of tool.fields) {
    const v = (values[field.name] ?? '').trim();
    if (field.secret && !v && keepEmptySecrets) continue;
    if (!v) continue;
    out[field.name] = v;
  }
  return out;
}

function dollars(text: string): number | null {
  const t = text.trim();
  return t ? Number(t) : null;
}

/** `POST /api/v1/tenants`'s body from the form. */
export function createBody(tool: ToolTypeInfo, values: FormValues, prefs: PreferenceValues, dedicatedQueue: boolean): NewTenant {
  const body: Record<string, unknown> = {
    tenant_id: (values.tenant_id ?? '').trim(),
    name: (values.name ?? '').trim(),
    tool_type: tool.tool_type,
    ...toolValues(tool, values, false),
    enhancement_preferences: { sources: prefs.sources, note_format: prefs.noteFormat, max_words: prefs.maxWords, mask_pii: prefs.maskPii },
    dedicated_queue: dedicatedQueue,
  };
  const kb = (values.kb_api_url ?? '').trim();
  if (kb) body.kb_api_url = kb;
  const budget = dollars(values.monthly_budget_usd ?? '');
  if (budget !== null) body.monthly_budget_usd = budget;
  return body as NewTenant;
}

function same(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}

/** `PATCH`'s body: only what differs from `tenant`; a secret only when one was typed. */
export function patchBody(tenant: Tenant, tool: ToolTypeInfo, values: FormValues, prefs: PreferenceValues, dedicatedQueue: boolean): TenantPatch {
  const was = tenant as unknown as Record<string, unknown>;
  const patch: Record<string, unknown> = {};
  const name = (values.name ?? '').trim();
  if (name !== tenant.name) patch.name = name;
  for (const field of tool.fields) {
    const v = (values[field.name] ?? '').trim();
    if (field.secret) {
      if (v) patch[field.name] = v;
      continue;
    }
    const before = typeof was[field.name] === 'string' ? (was[field.name] as string) : '';
    if (v !== before) patch[field.name] = v ? v : null;
  }
  const kb = (values.kb_api_url ?? '').trim();
  if (kb !== (tenant.kb_api_url ?? '')) patch.kb_api_url = kb ? kb : null;
  const budget = dollars(values.monthly_budget_usd ?? '');
  if (budget !== (tenant.monthly_budget_usd ?? null)) patch.monthly_budget_usd = budget;
  if (dedicatedQueue !== tenant.dedicated_queue) patch.dedicated_queue = dedicatedQueue;
  const p = tenant.enhancement_preferences;
  const changed: Record<string, unknown> = {};
  if (!same(prefs.sources, p.sources)) changed.sources = prefs.sources;
  if (prefs.noteFormat !== p.note_format) changed.note_format = prefs.noteFormat;
  if (prefs.maxWords !== p.max_words) changed.max_words = prefs.maxWords;
  if (prefs.maskPii !== p.mask_pii) changed.mask_pii = prefs.maskPii;
  if (Object.keys(changed).length > 0) patch.enhancement_preferences = changed;
  return patch as TenantPatch;
}

/** The connection test's body: the tool's fields as typed (on edit, secrets left empty are the stored ones). */
export function connectionBody(tool: ToolTypeInfo, values: FormValues): ConnectionTestBody {
  return { tool_type: tool.tool_type, ...toolValues(tool, values, true) } as ConnectionTestBody;
}

/** The upload's content type, from the file's name or type: CSV, else JSON. */
export function uploadType(file: { name: string; type: string }): 'text/csv' | 'application/json' {
  return file.type === 'text/csv' || /\.csv$/i.test(file.name) ? 'text/csv' : 'application/json';
}

/** Whole percent of an import's tickets seen, when its total is known. */
export function importPercent(p: Pick<ImportProgress, 'imported' | 'skipped' | 'total'>): number | null {
  if (p.total === null) return null;
  if (p.total === 0) return 100;
  return Math.min(100, Math.floor(((p.imported + p.skipped) * 100) / p.total));
}

const COUNT = new Intl.NumberFormat('en-US');

/** An import in words: "Importing… 150 of 1,001 tickets (14%)", "Completed: 250 tickets imported, 1 skipped.", "Failed: …". */
export function importText(p: ImportProgress): string {
  const n = (x: number): string => COUNT.format(x);
  const skipped = p.skipped > 0 ? `, ${n(p.skipped)} skipped` : '';
  switch (p.state) {
    case 'running': {
      const percent = importPercent(p);
      const of = p.total === null ? '' : ` of ${n(p.total)}`;
      return `Importing… ${n(p.imported)}${of} tickets imported${skipped}${percent === null ? '' : ` (${percent}%)`}`;
    }
    case 'completed':
      return `Completed: ${n(p.imported)} tickets imported${skipped}.`;
    case 'failed':
      return `Failed after ${n(p.imported)} tickets: ${p.error ?? 'no reason given'}`;
  }
}

// -------------------------------------------------------------------- page

export interface TenantsElements {
  section: HTMLElement;
  error: HTMLElement;
  notice: HTMLElement;
  q: HTMLInputElement;
  toolFilter: HTMLSelectElement;
  statusFilter: HTMLSelectElement;
  add: HTMLButtonElement;
  body: HTMLTableSectionElement;
  empty: HTMLElement;
  form: HTMLFormElement;
  formHeading: HTMLElement;
  tenantId: HTMLInputElement;
  name: HTMLInputElement;
  toolType: HTMLSelectElement;
  toolFields: HTMLElement;
  kbUrl: HTMLInputElement;
  budget: HTMLInputElement;
  sources: HTMLElement;
  noteFormat: HTMLSelectElement;
  maxWords: HTMLInputElement;
  maskPii: HTMLInputElement;
  dedicatedQueue: HTMLInputElement;
  testButton: HTMLButtonElement;
  testResult: HTMLElement;
  save: HTMLButtonElement;
  cancel: HTMLButtonElement;
  secretPanel: HTMLElement;
  secret: HTMLElement;
  copySecret: HTMLButtonElement;
  details: HTMLElement;
  webhookUrl: HTMLElement;
  copyUrl: HTMLButtonElement;
  rotate: HTMLButtonElement;
  uploadInventory: HTMLInputElement;
  uploadKb: HTMLInputElement;
  uploadResult: HTMLElement;
  importDays: HTMLInputElement;
  importButton: HTMLButtonElement;
  importProgress: HTMLElement;
  importBar: HTMLProgressElement;
  importText: HTMLElement;
  remove: HTMLButtonElement;
}

export function tenantsElements(doc: Document): TenantsElements {
  const { get, table: tableOf } = pageElements(doc, 'tenants page');
  const { table, body } = tableOf('tenants-table');
  return {
    section: get('tenants-page'),
    error: get('tenants-error'),
    notice: get('tenants-notice'),
    q: get('tenants-q'),
    toolFilter: get('tenants-tool'),
    statusFilter: get('tenants-status'),
    add: get('tenant-new'),
    body,
    empty: get('tenants-empty'),
    form: get('tenant-form'),
    formHeading: get('tenant-form-heading'),
    tenantId: get('tenant-field-tenant_id'),
    name: get('tenant-field-name'),
    toolType: get('tenant-field-tool_type'),
    toolFields: get('tenant-tool-fields'),
    kbUrl: get('tenant-field-kb_api_url'),
    budget: get('tenant-field-monthly_budget_usd'),
    sources: get('tenant-sources'),
    noteFormat: get('tenant-field-note_format'),
    maxWords: get('tenant-field-max_words'),
    maskPii: get('tenant-field-mask_pii'),
    dedicatedQueue: get('tenant-field-dedicated_queue'),
    testButton: get('tenant-test-connection'),
    testResult: get('tenant-test-result'),
    save: get('tenant-save'),
    cancel: get('tenant-cancel'),
    secretPanel: get('tenant-secret-panel'),
    secret: get('tenant-webhook-secret'),
    copySecret: get('tenant-copy-secret'),
    details: get('tenant-details'),
    webhookUrl: get('tenant-webhook-url'),
    copyUrl: get('tenant-copy-url'),
    rotate: get('tenant-rotate-secret'),
    uploadInventory: get('tenant-upload-inventory'),
    uploadKb: get('tenant-upload-kb'),
    uploadResult: get('tenant-upload-result'),
    importDays: get('tenant-import-days'),
    importButton: get('tenant-import'),
    importProgress: get('tenant-import-progress'),
    importBar: get('tenant-import-bar'),
    importText: get('tenant-import-text'),
    remove: get('tenant-delete'),
  };
}

export interface TenantsOptions {
  list(): Promise<TenantList>;
  toolTypes(): Promise<ToolTypeList>;
  create(body: NewTenant): Promise<CreatedTenant>;
  update(tenantId: string, patch: TenantPatch): Promise<Tenant>;
  remove(tenantId: string): Promise<Tenant>;
  rotateSecret(tenantId: string): Promise<WebhookSecret>;
  testConnection(tenantId: string | null, body: ConnectionTestBody): Promise<ConnectionTest>;
  upload(tenantId: string, kind: UploadKind, text: string, contentType: 'text/csv' | 'application/json'): Promise<Upserted>;
  startImport(tenantId: string, body: ImportRequest): Promise<ImportStarted>;
  importProgress(tenantId: string): Promise<ImportProgress>;
  copy(text: string): Promise<void>;
  confirm(message: string): boolean;
  onSignedOut(): void;
  timers?: Timers;
}

const WINDOW_TIMERS: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** The form's static fields, by name (the tool's own are built per tool). */
const STATIC_FIELDS = ['tenant_id', 'name', 'tool_type', 'kb_api_url', 'monthly_budget_usd', 'note_format', 'max_words'] as const;

export class TenantsPage {
  private tenants: Tenant[] = [];
  private tools: ToolTypeInfo[] = [];
  /** The tenant being edited; null while adding (or no form). */
  private editing: Tenant | null = null;
  private generation = 0;
  private pollTimer: unknown = null;
  private readonly timers: Timers;

  constructor(
    private readonly el: TenantsElements,
    private readonly opts: TenantsOptions,
  ) {
    this.timers = opts.timers ?? WINDOW_TIMERS;
    const doc = el.section.ownerDocument;
    el.sources.replaceChildren(
      ...SOURCES.map((s) => {
        const label = doc.createElement('label');
        label.className = 'checkbox';
        const box = doc.createElement('input');
        box.type = 'checkbox';
        box.name = 'source';
        box.value = s.value;
        box.dataset.testid = `tenant-source-${s.value}`;
        label.append(box, doc.createTextNode(` ${s.label}`));
        return label;
      }),
    );
    for (const input of [el.q, el.toolFilter, el.statusFilter]) input.addEventListener('input', () => this.render());
    el.toolFilter.addEventListener('change', () => this.render());
    el.statusFilter.addEventListener('change', () => this.render());
    el.add.addEventListener('click', () => this.openCreate());
    el.cancel.addEventListener('click', () => this.closeForm());
    el.toolType.addEventListener('change', () => this.buildToolFields(null));
    el.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.save();
    });
    el.testButton.addEventListener('click', () => void this.test());
    el.copySecret.addEventListener('click', () => void this.copy(el.secret.textContent ?? '', 'Webhook secret copied.'));
    el.copyUrl.addEventListener('click', () => void this.copy(el.webhookUrl.textContent ?? '', 'Webhook URL copied.'));
    el.rotate.addEventListener('click', () => void this.rotate());
    el.remove.addEventListener('click', () => void this.remove());
    el.importButton.addEventListener('click', () => void this.startImport());
    el.uploadInventory.addEventListener('change', () => void this.upload(el.uploadInventory, 'inventory'));
    el.uploadKb.addEventListener('change', () => void this.upload(el.uploadKb, 'kb-articles'));
    el.body.addEventListener('click', (ev) => {
      const button = (ev.target as Element | null)?.closest?.<HTMLButtonElement>('button.tenant-edit');
      const id = button?.closest<HTMLElement>('tr[data-tenant-id]')?.dataset.tenantId;
      if (id) this.openEdit(id);
    });
  }

  /** Opens the page: the tools and the tenants afresh. */
  async show(): Promise<void> {
    const generation = this.generation;
    try {
      const [tools, list] = await Promise.all([this.tools.length > 0 ? Promise.resolve({ tool_types: this.tools }) : this.opts.toolTypes(), this.opts.list()]);
      if (generation !== this.generation) return;
      this.tools = tools.tool_types;
      this.tenants = list.tenants;
      this.fillToolSelects();
      this.render();
      this.showError(null);
      if (this.editing !== null) void this.loadImport(this.editing.tenant_id);
    } catch (err) {
      if (generation !== this.generation) return;
      this.fail(err, 'The tenants could not be loaded.');
    }
  }

  /** Leaves the page: a running import is no longer polled (opening the page again reads it). */
  hide(): void {
    this.stopPolling();
  }

  /** Forgets everything, e.g. on sign-out. */
  clear(): void {
    this.generation++;
    this.stopPolling();
    this.tenants = [];
    this.editing = null;
    this.render();
    this.closeForm();
    this.showError(null);
    this.showNotice(null);
  }

  // -------------------------------------------------------------- table

  private fillToolSelects(): void {
    const doc = this.el.section.ownerDocument;
    const option = (value: string, text: string): HTMLOptionElement => {
      const o = doc.createElement('option');
      o.value = value;
      o.textContent = text;
      return o;
    };
    const filter = this.el.toolFilter.value;
    this.el.toolFilter.replaceChildren(option('', 'All tools'), ...this.tools.map((t) => option(t.tool_type, t.display_name)));
    this.el.toolFilter.value = filter;
    const chosen = this.el.toolType.value;
    this.el.toolType.replaceChildren(...this.tools.map((t) => option(t.tool_type, t.display_name)));
    if (chosen) this.el.toolType.value = chosen;
  }

  private filters(): TenantFilters {
    const status = this.el.statusFilter.value;
    return { q: this.el.q.value, toolType: this.el.toolFilter.value, status: status === 'active' || status === 'deleted' ? status : '' };
  }

  private tool(toolType: string): ToolTypeInfo | undefined {
    return this.tools.find((t) => t.tool_type === toolType);
  }

  private render(): void {
    const doc = this.el.section.ownerDocument;
    const shown = filterTenants(this.tenants, this.filters(), this.tools);
    this.el.body.replaceChildren(
      ...shown.map((t) => {
        const tr = doc.createElement('tr');
        tr.dataset.tenantId = t.tenant_id;
        tr.dataset.testid = `tenant-row-${t.tenant_id}`;
        const cell = (text: string, cls?: string): HTMLTableCellElement => {
          const td = doc.createElement('td');
          td.textContent = text;
          if (cls) td.className = cls;
          return td;
        };
        const status = doc.createElement('td');
        const badge = doc.createElement('span');
        badge.className = 'status-badge';
        badge.dataset.tone = t.is_active ? 'green' : 'red';
        badge.textContent = t.is_active ? 'active' : 'deleted';
        status.append(badge);
        if (t.dedicated_queue) {
          const dedicated = doc.createElement('span');
          dedicated.className = 'status-badge tenant-dedicated';
          dedicated.dataset.tone = 'blue';
          dedicated.dataset.testid = `tenant-dedicated-${t.tenant_id}`;
          dedicated.textContent = 'dedicated';
          dedicated.title = `Own queue: its jobs wait for a worker started with CSP_WORKER_TENANT=${t.tenant_id}`;
          status.append(' ', dedicated);
        }
        const actions = doc.createElement('td');
        const edit = doc.createElement('button');
        edit.type = 'button';
        edit.className = 'tenant-edit secondary';
        edit.dataset.testid = `tenant-edit-${t.tenant_id}`;
        edit.dataset.action = 'edit';
        edit.textContent = 'Edit';
        actions.append(edit);
        const created = doc.createElement('td');
        const time = doc.createElement('time');
        time.dateTime = t.created_at;
        time.textContent = formatTimestamp(t.created_at);
        created.append(time);
        tr.append(cell(t.name), cell(t.tenant_id, 'mono'), cell(this.tool(t.tool_type)?.display_name ?? t.tool_type), cell(tenantLocation(t, this.tool(t.tool_type)), 'mono'), status, created, actions);
        return tr;
      }),
    );
    this.el.empty.hidden = shown.length > 0;
    this.el.empty.textContent = this.tenants.length === 0 ? 'No tenants yet: add one.' : 'No tenant matches the search and filters.';
  }

  private upsert(t: Tenant): void {
    const i = this.tenants.findIndex((x) => x.tenant_id === t.tenant_id);
    if (i >= 0) this.tenants[i] = t;
    else this.tenants.push(t);
    this.render();
  }

  // --------------------------------------------------------------- form

  private openCreate(): void {
    this.stopPolling();
    this.editing = null;
    this.el.form.reset();
    this.el.formHeading.textContent = 'New tenant';
    this.el.tenantId.disabled = false;
    this.el.toolType.disabled = false;
    if (!this.el.toolType.value && this.tools[0]) this.el.toolType.value = this.tools[0].tool_type;
    this.fillPreferences(null);
    this.buildToolFields(null);
    this.clearFieldErrors();
    this.el.testResult.textContent = '';
    this.el.secretPanel.hidden = true;
    this.el.details.hidden = true;
    this.el.form.hidden = false;
    this.el.tenantId.focus();
  }

  private openEdit(tenantId: string): void {
    const t = this.tenants.find((x) => x.tenant_id === tenantId);
    if (!t) return;
    this.stopPolling();
    this.editing = t;
    this.el.form.reset();
    this.el.formHeading.textContent = `Edit ${t.name}`;
    this.el.tenantId.value = t.tenant_id;
    this.el.tenantId.disabled = true;
    this.el.name.value = t.name;
    this.el.toolType.value = t.tool_type;
    this.el.toolType.disabled = true;
    this.el.kbUrl.value = t.kb_api_url ?? '';
    this.el.budget.value = t.monthly_budget_usd === null ? '' : String(t.monthly_budget_usd);
    this.el.dedicatedQueue.checked = t.dedicated_queue;
    this.fillPreferences(t);
    this.buildToolFields(t);
    this.clearFieldErrors();
    this.el.testResult.textContent = '';
    this.el.secretPanel.hidden = true;
    this.showDetails(t);
    this.el.form.hidden = false;
    void this.loadImport(t.tenant_id);
  }

  private closeForm(): void {
    this.stopPolling();
    this.editing = null;
    this.el.form.hidden = true;
    this.el.details.hidden = true;
    this.el.secretPanel.hidden = true;
    this.el.secret.textContent = '';
  }

  private fillPreferences(t: Tenant | null): void {
    const p = t?.enhancement_preferences;
    for (const box of this.el.sources.querySelectorAll<HTMLInputElement>('input[name="source"]')) {
      box.checked = p ? p.sources.includes(box.value as ContextSource) : true;
    }
    this.el.noteFormat.value = p?.note_format ?? 'html';
    this.el.maxWords.value = String(p?.max_words ?? 500);
    this.el.maskPii.checked = p?.mask_pii ?? false;
  }

  private preferences(): PreferenceValues {
    const sources = [...this.el.sources.querySelectorAll<HTMLInputElement>('input[name="source"]')].filter((b) => b.checked).map((b) => b.value as ContextSource);
    return {
      sources,
      noteFormat: this.el.noteFormat.value === 'markdown' ? 'markdown' : 'html',
      maxWords: Number(this.el.maxWords.value) || 500,
      maskPii: this.el.maskPii.checked,
    };
  }

  /** The selected tool's own fields, with `t`'s values (secrets never: only whether one is stored). */
  private buildToolFields(t: Tenant | null): void {
    const doc = this.el.section.ownerDocument;
    const tool = this.tool(this.el.toolType.value);
    const values = (t ?? {}) as unknown as Record<string, unknown>;
    this.el.toolFields.replaceChildren(
      ...(tool?.fields ?? []).map((f) => {
        const wrap = doc.createElement('div');
        wrap.className = 'tenant-field';
        const label = doc.createElement('label');
        label.htmlFor = `tenant-field-${f.name}`;
        label.textContent = f.required ? `${f.label} *` : f.label;
        let input: HTMLInputElement | HTMLSelectElement;
        if (f.kind === 'choice') {
          const select = doc.createElement('select');
          select.replaceChildren(
            ...f.choices.map((c) => {
              const o = doc.createElement('option');
              o.value = c;
              o.textContent = c;
              return o;
            }),
          );
          const v = values[f.name];
          if (typeof v === 'string' && f.choices.includes(v)) select.value = v;
          input = select;
        } else {
          const text = doc.createElement('input');
          text.autocomplete = 'off';
          text.spellcheck = false;
          if (f.secret) {
            text.type = 'password';
            text.autocomplete = 'new-password';
            text.placeholder = t === null ? '' : values[f.name] === '[REDACTED]' ? SECRET_KEPT : SECRET_UNSET;
          } else {
            text.type = f.kind === 'url' ? 'url' : f.kind === 'email' ? 'email' : 'text';
            const v = values[f.name];
            text.value = typeof v === 'string' ? v : '';
          }
          input = text;
        }
        input.id = `tenant-field-${f.name}`;
        input.name = f.name;
        input.dataset.testid = `tenant-field-${f.name}`;
        input.setAttribute('aria-describedby', `tenant-error-${f.name}`);
        wrap.append(label, input, this.errorSlot(f.name));
        return wrap;
      }),
    );
  }

  private errorSlot(name: string): HTMLElement {
    const p = this.el.section.ownerDocument.createElement('p');
    p.className = 'field-error';
    p.id = `tenant-error-${name}`;
    p.dataset.testid = `tenant-error-${name}`;
    p.dataset.fieldError = name;
    p.hidden = true;
    return p;
  }

  private values(): FormValues {
    const values: FormValues = {};
    for (const input of this.el.form.querySelectorAll<HTMLInputElement | HTMLSelectElement>('input[name], select[name]')) {
      if (input.name === 'source' || input.type === 'checkbox') continue;
      values[input.name] = input.value;
    }
    return values;
  }

  private fieldNames(): string[] {
    return [...STATIC_FIELDS, ...(this.tool(this.el.toolType.value)?.fields.map((f) => f.name) ?? [])];
  }

  private clearFieldErrors(): void {
    for (const p of this.el.form.querySelectorAll<HTMLElement>('.field-error')) {
      p.hidden = true;
      p.textContent = '';
    }
    for (const input of this.el.form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  }

  private showFieldErrors(errors: Record<string, string>): void {
    this.clearFieldErrors();
    let first: HTMLElement | null = null;
    for (const [name, message] of Object.entries(errors)) {
      const slot = this.el.form.querySelector<HTMLElement>(`#tenant-error-${name}`);
      const input = this.el.form.querySelector<HTMLElement>(`#tenant-field-${name}`);
      if (slot) {
        slot.textContent = message;
        slot.hidden = false;
      }
      input?.setAttribute('aria-invalid', 'true');
      first ??= input;
    }
    first?.focus();
  }

  /** The form checked; null (with the messages shown) when it cannot be sent. */
  private checked(): { tool: ToolTypeInfo; values: FormValues } | null {
    const tool = this.tool(this.el.toolType.value);
    if (!tool) {
      this.showError('Choose a ticketing tool.');
      return null;
    }
    const values = this.values();
    const stored = this.editing === null ? [] : tool.fields.filter((f) => f.secret && (this.editing as unknown as Record<string, unknown>)[f.name] === '[REDACTED]').map((f) => f.name);
    const errors = validateTenantForm(tool, values, this.editing === null ? 'create' : 'edit', stored);
    if (Object.keys(errors).length > 0) {
      this.showFieldErrors(errors);
      return null;
    }
    this.clearFieldErrors();
    return { tool, values };
  }

  private async save(): Promise<void> {
    const form = this.checked();
    if (!form) return;
    const generation = this.generation;
    this.el.save.disabled = true;
    this.showNotice(null);
    try {
      if (this.editing === null) {
        const created = await this.opts.create(createBody(form.tool, form.values, this.preferences(), this.el.dedicatedQueue.checked));
        if (generation !== this.generation) return;
        const { webhook_secret, ...tenant } = created;
        this.upsert(tenant);
        this.openEdit(tenant.tenant_id);
        this.showSecret(webhook_secret);
        this.showNotice(`Created ${tenant.name}. Copy the webhook secret now: it is shown this once.`);
      } else {
        const patch = patchBody(this.editing, form.tool, form.values, this.preferences(), this.el.dedicatedQueue.checked);
        if (Object.keys(patch).length === 0) {
          this.showNotice('Nothing changed.');
          return;
        }
        const updated = await this.opts.update(this.editing.tenant_id, patch);
        if (generation !== this.generation) return;
        this.upsert(updated);
        this.openEdit(updated.tenant_id);
        this.showNotice(`Saved ${updated.name}.`);
      }
      this.showError(null);
    } catch (err) {
      if (generation !== this.generation) return;
      const onField = serverFieldError(err, this.fieldNames());
      if (onField) {
        this.showFieldErrors({ [onField.field]: onField.message });
        this.showError(null);
      } else {
        this.fail(err, 'The tenant could not be saved.');
      }
    } finally {
      this.el.save.disabled = false;
    }
  }

  private async test(): Promise<void> {
    const tool = this.tool(this.el.toolType.value);
    if (!tool) return;
    const values = this.values();
    const errors: Record<string, string> = {};
    const stored = this.editing === null ? [] : tool.fields.filter((f) => (this.editing as unknown as Record<string, unknown>)[f.name] === '[REDACTED]').map((f) => f.name);
    for (const f of tool.fields) {
      const problem = fieldProblem(f, values[f.name] ?? '', stored.includes(f.name));
      if (problem) errors[f.name] = problem;
    }
    if (Object.keys(errors).length > 0) {
      this.showFieldErrors(errors);
      return;
    }
    this.clearFieldErrors();
    const generation = this.generation;
    this.el.testButton.disabled = true;
    this.el.testResult.dataset.ok = '';
    this.el.testResult.textContent = 'Testing…';
    try {
      const r = await this.opts.testConnection(this.editing?.tenant_id ?? null, connectionBody(tool, values));
      if (generation !== this.generation) return;
      this.el.testResult.dataset.ok = String(r.ok);
      this.el.testResult.textContent = r.ok ? `Connected: csp can read tickets from ${tool.display_name}.` : `Connection failed: ${r.reason ?? 'no reason given'}`;
    } catch (err) {
      if (generation !== this.generation) return;
      this.el.testResult.dataset.ok = 'false';
      this.el.testResult.textContent = err instanceof ApiError ? err.message : 'The connection could not be tested.';
      if (err instanceof ApiError && err.status === 401) this.opts.onSignedOut();
    } finally {
      this.el.testButton.disabled = false;
    }
  }

  // --------------------------------------------------- saved tenant's tools

  private showDetails(t: Tenant): void {
    this.el.webhookUrl.textContent = t.webhook_url;
    this.el.uploadResult.textContent = '';
    this.el.importProgress.hidden = true;
    this.el.remove.disabled = !t.is_active;
    this.el.importButton.disabled = !t.is_active;
    this.el.details.hidden = false;
  }

  private showSecret(secret: string): void {
    this.el.secret.textContent = secret;
    this.el.secretPanel.hidden = false;
  }

  private async copy(text: string, done: string): Promise<void> {
    if (!text) return;
    try {
      await this.opts.copy(text);
      this.showNotice(done);
    } catch {
      this.showError('Copying was refused by the browser: select the text and copy it.');
    }
  }

  private async rotate(): Promise<void> {
    const t = this.editing;
    if (!t || !this.opts.confirm(`Generate a new webhook secret for ${t.name}? The current one keeps working for 24 hours; update the ticketing tool before then.`)) return;
    const generation = this.generation;
    try {
      const r = await this.opts.rotateSecret(t.tenant_id);
      if (generation !== this.generation) return;
      this.showSecret(r.webhook_secret);
      this.showNotice(`New webhook secret for ${t.name}: copy it now, it is shown this once.`);
      this.showError(null);
    } catch (err) {
      if (generation !== this.generation) return;
      this.fail(err, 'The webhook secret could not be rotated.');
    }
  }

  private async remove(): Promise<void> {
    const t = this.editing;
    if (!t || !this.opts.confirm(`Delete tenant ${t.name} (${t.tenant_id})? Its webhooks are refused from now on; its history and data are kept, and its id cannot be reused.`)) return;
    const generation = this.generation;
    try {
      const gone = await this.opts.remove(t.tenant_id);
      if (generation !== this.generation) return;
      this.upsert(gone);
      this.closeForm();
      this.showNotice(`Deleted ${gone.name}.`);
      this.showError(null);
    } catch (err) {
      if (generation !== this.generation) return;
      this.fail(err, 'The tenant could not be deleted.');
    }
  }

  private async upload(input: HTMLInputElement, kind: UploadKind): Promise<void> {
    const t = this.editing;
    const file = input.files?.[0];
    if (!t || !file) return;
    const generation = this.generation;
    this.el.uploadResult.dataset.ok = '';
    this.el.uploadResult.textContent = `Uploading ${file.name}…`;
    try {
      const text = await file.text();
      const r = await this.opts.upload(t.tenant_id, kind, text, uploadType(file));
      if (generation !== this.generation) return;
      this.el.uploadResult.dataset.ok = 'true';
      this.el.uploadResult.textContent = `${file.name}: ${COUNT.format(r.upserted)} ${kind === 'inventory' ? 'systems' : 'articles'} stored.`;
    } catch (err) {
      if (generation !== this.generation) return;
      this.el.uploadResult.dataset.ok = 'false';
      this.el.uploadResult.textContent = `${file.name}: ${err instanceof ApiError ? err.message : 'the file could not be read.'}`;
      if (err instanceof ApiError && err.status === 401) this.opts.onSignedOut();
    } finally {
      input.value = '';
    }
  }

  // ------------------------------------------------------------- import

  private async startImport(): Promise<void> {
    const t = this.editing;
    if (!t) return;
    const days = Number(this.el.importDays.value);
    if (!Number.isInteger(days) || days < 1 || days > 36_500) {
      this.showError('Import history: enter a number of days from 1 to 36500.');
      this.el.importDays.focus();
      return;
    }
    const generation = this.generation;
    this.el.importButton.disabled = true;
    try {
      const r = await this.opts.startImport(t.tenant_id, { days });
      if (generation !== this.generation) return;
      const { started, ...progress } = r;
      this.showNotice(started ? `Importing the last ${days} days of ${t.name}'s resolved tickets.` : 'An import of this tenant is already running: showing its progress.');
      this.showImport(progress);
      this.showError(null);
    } catch (err) {
      if (generation !== this.generation) return;
      this.el.importButton.disabled = false;
      this.fail(err, 'The import could not start.');
    }
  }

  /** The tenant's latest import, if any, when its form opens. */
  private async loadImport(tenantId: string): Promise<void> {
    const generation = this.generation;
    try {
      const p = await this.opts.importProgress(tenantId);
      if (generation !== this.generation || this.editing?.tenant_id !== tenantId) return;
      this.showImport(p);
    } catch {
      // None in the last 24 hours (404), or unreadable: nothing to show.
    }
  }

  /** Shows `p`, and reads it again while it runs. */
  showImport(p: ImportProgress): void {
    this.stopPolling();
    const el = this.el;
    el.importProgress.hidden = false;
    el.importProgress.dataset.state = p.state;
    const percent = importPercent(p);
    if (p.state === 'completed') el.importBar.value = 100;
    else if (percent === null) el.importBar.removeAttribute('value');
    else el.importBar.value = percent;
    el.importText.textContent = importText(p);
    el.importButton.disabled = p.state === 'running' || !(this.editing?.is_active ?? false);
    if (p.state !== 'running') return;
    const generation = this.generation;
    const tenantId = p.tenant_id;
    this.pollTimer = this.timers.set(() => {
      this.pollTimer = null;
      void this.opts
        .importProgress(tenantId)
        .then((next) => {
          if (generation === this.generation && this.editing?.tenant_id === tenantId) this.showImport(next);
        })
        .catch((err: unknown) => {
          if (generation !== this.generation || this.editing?.tenant_id !== tenantId) return;
          // Tried again on the next tick; the last progress stays shown.
          this.showImport(p);
          el.importText.textContent = `${importText(p)} (progress unavailable: ${err instanceof ApiError ? err.message : 'try again'})`;
        });
    }, IMPORT_POLL_MS);
  }

  private stopPolling(): void {
    if (this.pollTimer !== null) this.timers.clear(this.pollTimer);
    this.pollTimer = null;
  }

  // ----------------------------------------------------------- messages

  private fail(err: unknown, fallback: string): void {
    if (err instanceof ApiError && err.status === 401) {
      this.opts.onSignedOut();
      return;
    }
    this.showError(err instanceof ApiError ? err.message : fallback);
  }

  private showError(message: string | null): void {
    this.el.error.textContent = message ?? '';
    this.el.error.hidden = message === null;
  }

  private showNotice(message: string | null): void {
    this.el.notice.textContent = message ?? '';
  }
}
