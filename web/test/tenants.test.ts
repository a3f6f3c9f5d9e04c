import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../src/api';
import { mayOpen, routeFor } from '../src/nav';
import type { ConnectionTestBody, ImportProgress, ImportRequest, NewTenant, Tenant, TenantPatch, ToolTypeInfo } from '../src/protocol';
import type { Timers } from '../src/refresh';
import {
  createBody,
  fieldProblem,
  filterTenants,
  importPercent,
  importText,
  isToolUrl,
  patchBody,
  SECRET_KEPT,
  serverFieldError,
  TENANT_ID_RULE,
  TenantsPage,
  tenantsElements,
  uploadType,
  validateTenantForm,
} from '../src/tenants';
import { appDocument, settle } from './page';

const SDP: ToolTypeInfo = {
  tool_type: 'servicedesk_plus',
  display_name: 'ServiceDesk Plus',
  fields: [
    { name: 'servicedesk_url', label: 'ServiceDesk Plus URL', required: true, secret: false, kind: 'url', choices: [] },
    { name: 'servicedesk_auth', label: 'Authentication', required: false, secret: false, kind: 'choice', choices: ['authtoken', 'zoho_oauth'] },
    { name: 'api_key', label: 'API key', required: true, secret: true, kind: 'credential', choices: [] },
  ],
};

const ZENDESK: ToolTypeInfo = {
  tool_type: 'zendesk',
  display_name: 'Zendesk',
  fields: [
    { name: 'zendesk_subdomain', label: 'Subdomain', required: true, secret: false, kind: 'text', choices: [] },
    { name: 'zendesk_email', label: 'Agent e-mail', required: true, secret: false, kind: 'email', choices: [] },
    { name: 'zendesk_api_token', label: 'API token', required: true, secret: true, kind: 'credential', choices: [] },
  ],
};

function tenant(id: string, more: Partial<Tenant> = {}): Tenant {
  return {
    tenant_id: id,
    name: `${id} MSP`,
    tool_type: 'servicedesk_plus',
    servicedesk_url: `https://sdp.${id}.example`,
    servicedesk_auth: 'authtoken',
    api_key: '[REDACTED]',
    jira_url: null,
    jira_email: null,
    jira_api_token: null,
    jira_project_key: null,
    jira_issue_type: null,
    zendesk_subdomain: null,
    zendesk_email: null,
    zendesk_api_token: null,
    zendesk_url: null,
    kb_api_url: null,
    enhancement_preferences: { sources: ['ticket_history', 'kb', 'ip_inventory'], note_format: 'html', max_words: 500, mask_pii: false },
    monthly_budget_usd: null,
    is_active: true,
    dedicated_queue: false,
    created_at: '2026-10-01T08:00:00Z',
    updated_at: '2026-10-01T08:00:00Z',
    webhook_url: `https://csp.example/webhook/servicedesk_plus/${id}`,
    ...more,
  } as Tenant;
}

function progress(more: Partial<ImportProgress> = {}): ImportProgress {
  return {
    tenant_id: 'acme',
    state: 'running',
    pages: 0,
    imported: 0,
    skipped: 0,
    total: null,
    error: null,
    started_at: '2026-10-01T08:00:00Z',
    finished_at: null,
    from: '2026-07-03T08:00:00Z',
    to: '2026-10-01T08:00:00Z',
    ...more,
  };
}

const PREFS = { sources: ['ticket_history', 'kb', 'ip_inventory'] as const, noteFormat: 'html' as const, maxWords: 500, maskPii: false };

describe('tenant helpers', () => {
  it('checks each field by its kind', () => {
    const [url, auth, key] = SDP.fields as [ToolTypeInfo['fields'][0], ToolTypeInfo['fields'][0], ToolTypeInfo['fields'][0]];
    assert.equal(fieldProblem(url, ''), 'ServiceDesk Plus URL is required.');
    assert.match(fieldProblem(url, 'ftp://x.example') ?? '', /http or https URL/);
    assert.match(fieldProblem(url, 'https://u:p@x.example') ?? '', /without credentials/);
    assert.equal(fieldProblem(url, 'https://sdp.acme.example/app/itdesk'), null);
    assert.equal(fieldProblem(auth, ''), null, 'optional');
    assert.match(fieldProblem(auth, 'basic') ?? '', /authtoken, zoho_oauth/);
    assert.equal(fieldProblem(key, ''), 'API key is required.');
    assert.equal(fieldProblem(key, '', true), null, 'a stored secret is kept when left empty');
    assert.equal(fieldProblem(key, 'a b'), 'Must not contain spaces.');
    const email = ZENDESK.fields[1] as ToolTypeInfo['fields'][0];
    assert.equal(fieldProblem(email, 'nobody'), 'Enter an e-mail address.');
    assert.equal(isToolUrl('https://x.example?q=1'), false);
    assert.equal(isToolUrl('http://localhost:8080'), true);
  });

  it('validates the whole form, naming each field', () => {
    assert.deepEqual(validateTenantForm(SDP, {}, 'create'), {
      tenant_id: 'Tenant id is required.',
      name: 'Name is required.',
      servicedesk_url: 'ServiceDesk Plus URL is required.',
      api_key: 'API key is required.',
    });
    const good = { tenant_id: 'acme', name: 'Acme', servicedesk_url: 'https://sdp.acme.example', api_key: 'k' };
    assert.deepEqual(validateTenantForm(SDP, good, 'create'), {});
    assert.deepEqual(validateTenantForm(SDP, { ...good, tenant_id: 'Acme Corp' }, 'create'), { tenant_id: TENANT_ID_RULE });
    assert.deepEqual(validateTenantForm(SDP, { ...good, kb_api_url: 'kb', monthly_budget_usd: '-3', max_words: '900' }, 'create'), {
      kb_api_url: 'Enter an http or https URL.',
      monthly_budget_usd: 'Enter dollars (e.g. 100 or 12.50), or leave it empty for no cap.',
      max_words: 'Enter a number of words from 1 to 500.',
    });
    // On edit the id is fixed and a stored key may stay empty.
    assert.deepEqual(validateTenantForm(SDP, { name: 'Acme', servicedesk_url: 'https://sdp.acme.example' }, 'edit', ['api_key']), {});
    assert.deepEqual(validateTenantForm(SDP, { name: 'Acme', servicedesk_url: 'https://sdp.acme.example' }, 'edit'), { api_key: 'API key is required.' });
  });

  it("maps the gateway's refusals onto their field", () => {
    const names = ['tenant_id', 'name', 'servicedesk_url', 'api_key', 'max_words'];
    assert.deepEqual(serverFieldError(new ApiError(409, 'tenant_exists', "Tenant 'acme' already exists."), names), { field: 'tenant_id', message: "Tenant 'acme' already exists." });
    assert.deepEqual(serverFieldError(new ApiError(400, 'invalid_tenant', 'servicedesk_url must be an http or https URL'), names), {
      field: 'servicedesk_url',
      message: 'servicedesk_url must be an http or https URL',
    });
    assert.equal(serverFieldError(new ApiError(400, 'invalid_tenant', 'enhancement_preferences.max_words must be between 1 and 500'), names)?.field, 'max_words');
    assert.equal(serverFieldError(new ApiError(400, 'invalid_tenant', 'Unknown tool_type'), names), null);
    assert.equal(serverFieldError(new ApiError(503, 'unavailable', 'down'), names), null);
    assert.equal(serverFieldError(new Error('x'), names), null);
  });

  it('sends what a create needs and a patch only what changed', () => {
    const body = createBody(SDP, { tenant_id: ' acme ', name: 'Acme', servicedesk_url: 'https://sdp.acme.example', servicedesk_auth: 'authtoken', api_key: 'k1', kb_api_url: '', monthly_budget_usd: '25' }, { ...PREFS, sources: ['kb'] }, false);
    assert.deepEqual(body, {
      tenant_id: 'acme',
      name: 'Acme',
      tool_type: 'servicedesk_plus',
      servicedesk_url: 'https://sdp.acme.example',
      servicedesk_auth: 'authtoken',
      api_key: 'k1',
      enhancement_preferences: { sources: ['kb'], note_format: 'html', max_words: 500, mask_pii: false },
      monthly_budget_usd: 25,
      dedicated_queue: false,
    });
    const acme = tenant('acme');
    const same = { name: acme.name, servicedesk_url: acme.servicedesk_url ?? '', servicedesk_auth: 'authtoken', api_key: '' };
    assert.deepEqual(patchBody(acme, SDP, same, { ...PREFS, sources: [...PREFS.sources] }, false), {}, 'nothing changed, the stored key kept');
    assert.deepEqual(patchBody(acme, SDP, { ...same, api_key: 'new-key', kb_api_url: 'https://kb.example' }, { ...PREFS, sources: ['ip_inventory', 'kb', 'ticket_history'], maskPii: true }, false), {
      api_key: 'new-key',
      kb_api_url: 'https://kb.example',
      enhancement_preferences: { mask_pii: true },
    });
  });

  it('sends the dedicated queue on create, and in a patch only when it changed', () => {
    const values = { tenant_id: 'acme', name: 'Acme', servicedesk_url: 'https://sdp.acme.example', api_key: 'k1' };
    assert.equal(createBody(SDP, values, { ...PREFS, sources: ['kb'] }, true).dedicated_queue, true);
    const shared = tenant('acme');
    const dedicated = tenant('acme', { dedicated_queue: true });
    const same = { name: shared.name, servicedesk_url: shared.servicedesk_url ?? '', servicedesk_auth: 'authtoken', api_key: '' };
    const prefs = { ...PREFS, sources: [...PREFS.sources] };
    assert.deepEqual(patchBody(shared, SDP, same, prefs, true), { dedicated_queue: true });
    assert.deepEqual(patchBody(dedicated, SDP, same, prefs, false), { dedicated_queue: false });
    assert.deepEqual(patchBody(dedicated, SDP, same, prefs, true), {}, 'unchanged: not sent');
    assert.deepEqual(patchBody(dedicated, SDP, { ...same, name: 'Acme Corp' }, prefs, true), { name: 'Acme Corp' });
  });

  it('filters by search, tool and status', () => {
    const list = [tenant('beta'), tenant('acme', { is_active: false }), tenant('zen', { tool_type: 'zendesk', servicedesk_url: null, zendesk_subdomain: 'zenco' })];
    const ids = (f: Partial<Parameters<typeof filterTenants>[1]>) => filterTenants(list, { q: '', toolType: '', status: '', ...f }, [SDP, ZENDESK]).map((t) => t.tenant_id);
    assert.deepEqual(ids({}), ['acme', 'beta', 'zen']);
    assert.deepEqual(ids({ status: 'active' }), ['beta', 'zen']);
    assert.deepEqual(ids({ status: 'deleted' }), ['acme']);
    assert.deepEqual(ids({ toolType: 'zendesk' }), ['zen']);
    assert.deepEqual(ids({ q: 'ZENCO' }), ['zen'], 'the URL or subdomain');
    assert.deepEqual(ids({ q: 'sdp.beta' }), ['beta']);
  });

  it('says how far an import got', () => {
    assert.equal(importPercent(progress({ imported: 150, skipped: 1, total: 1001 })), 15);
    assert.equal(importPercent(progress({ total: 0 })), 100);
    assert.equal(importPercent(progress()), null);
    assert.equal(importText(progress({ imported: 1500, total: 3000 })), 'Importing… 1,500 of 3,000 tickets imported (50%)');
    assert.equal(importText(progress({ imported: 100 })), 'Importing… 100 tickets imported');
    assert.equal(importText(progress({ state: 'completed', imported: 250, skipped: 1, total: 251 })), 'Completed: 250 tickets imported, 1 skipped.');
    assert.equal(importText(progress({ state: 'failed', imported: 0, error: 'ServiceDesk Plus rejected the api_key' })), 'Failed after 0 tickets: ServiceDesk Plus rejected the api_key');
  });

  it('uploads .csv files as CSV and the rest as JSON', () => {
    assert.equal(uploadType({ name: 'systems.CSV', type: '' }), 'text/csv');
    assert.equal(uploadType({ name: 'x', type: 'text/csv' }), 'text/csv');
    assert.equal(uploadType({ name: 'kb.json', type: 'application/json' }), 'application/json');
  });

  it('is an admin page', () => {
    assert.deepEqual(['admin', 'operator', 'user'].map((r) => mayOpen('tenants', r)), [true, false, false]);
    assert.equal(routeFor('/admin/tenants', 'admin'), 'tenants');
    assert.equal(routeFor('/admin/tenants', 'operator'), 'chat');
  });
});

/** Timers the test fires by hand. */
function manualTimers(): Timers & { fire(): void; pending(): number } {
  let queue: (() => void)[] = [];
  return {
    set: (fn) => {
      queue.push(fn);
      return fn;
    },
    clear: (handle) => {
      queue = queue.filter((f) => f !== handle);
    },
    fire() {
      const now = queue;
      queue = [];
      for (const f of now) f();
    },
    pending: () => queue.length,
  };
}

function tenantsPage(initial: Tenant[]) {
  const { doc } = appDocument();
  const el = tenantsElements(doc);
  const calls = {
    creates: [] as NewTenant[],
    patches: [] as [string, TenantPatch][],
    tests: [] as [string | null, ConnectionTestBody][],
    imports: [] as [string, ImportRequest][],
    removed: [] as string[],
    copied: [] as string[],
  };
  let failCreate: ApiError | null = null;
  let confirmAnswer = true;
  const progressAnswers: ImportProgress[] = [];
  const timers = manualTimers();
  const page = new TenantsPage(el, {
    list: async () => ({ tenants: initial }),
    toolTypes: async () => ({ tool_types: [SDP, ZENDESK] }),
    create: async (body) => {
      calls.creates.push(body);
      if (failCreate) throw failCreate;
      const b = body as unknown as Record<string, string>;
      return { ...tenant(b.tenant_id ?? '', { name: b.name ?? '' }), webhook_secret: 'whsec-shown-once' };
    },
    update: async (id, patch) => {
      calls.patches.push([id, patch]);
      return tenant(id, patch as Partial<Tenant>);
    },
    remove: async (id) => {
      calls.removed.push(id);
      return tenant(id, { is_active: false });
    },
    rotateSecret: async () => ({ webhook_secret: 'whsec-rotated', previous_valid_until: '2026-10-02T08:00:00Z' }),
    testConnection: async (id, body) => {
      calls.tests.push([id, body]);
      return { ok: false, reason: 'ServiceDesk Plus at https://sdp.acme.example rejected the api_key' };
    },
    upload: async (_id, _kind, text) => ({ upserted: text.split('\n').length - 1 }),
    startImport: async (id, body) => {
      calls.imports.push([id, body]);
      return { started: true, ...progress({ tenant_id: id }) };
    },
    importProgress: async () => {
      const next = progressAnswers.shift();
      if (!next) throw new ApiError(404, 'not_found', 'no import');
      return next;
    },
    copy: async (text) => {
      calls.copied.push(text);
    },
    confirm: () => confirmAnswer,
    onSignedOut: () => undefined,
    timers,
  });
  return {
    doc,
    el,
    page,
    calls,
    timers,
    progressAnswers,
    failCreateWith: (e: ApiError) => {
      failCreate = e;
    },
    answerConfirm: (yes: boolean) => {
      confirmAnswer = yes;
    },
    field: (name: string) => doc.querySelector<HTMLInputElement>(`#tenant-form [name="${name}"]`),
    error: (name: string) => doc.getElementById(`tenant-error-${name}`),
  };
}

describe('tenants page', () => {
  it('lists tenants with their tool and URL, searchable', async () => {
    const t = tenantsPage([tenant('beta'), tenant('acme')]);
    await t.page.show();
    const rows = [...t.el.body.rows].map((r) => [...r.cells].slice(0, 5).map((c) => c.textContent));
    assert.deepEqual(rows, [
      ['acme MSP', 'acme', 'ServiceDesk Plus', 'https://sdp.acme.example', 'active'],
      ['beta MSP', 'beta', 'ServiceDesk Plus', 'https://sdp.beta.example', 'active'],
    ]);
    t.el.q.value = 'beta';
    t.el.q.dispatchEvent(new t.doc.defaultView!.Event('input'));
    assert.equal(t.el.body.rows.length, 1);
    assert.deepEqual([...t.el.toolFilter.options].map((o) => o.value), ['', 'servicedesk_plus', 'zendesk']);
  });

  it("builds the form from the tool's fields and names every problem", async () => {
    const t = tenantsPage([]);
    await t.page.show();
    t.el.add.click();
    assert.equal(t.el.form.hidden, false);
    assert.ok(t.field('servicedesk_url'));
    assert.equal(t.field('api_key')?.type, 'password');
    assert.equal(t.doc.querySelectorAll('#tenant-sources input[type=checkbox]:checked').length, 3, 'every source by default');
    t.el.form.requestSubmit();
    await settle();
    assert.equal(t.calls.creates.length, 0);
    assert.equal(t.error('tenant_id')?.textContent, 'Tenant id is required.');
    assert.equal(t.error('servicedesk_url')?.hidden, false);
    assert.equal(t.error('api_key')?.textContent, 'API key is required.');
    // Another tool, its own fields.
    t.el.toolType.value = 'zendesk';
    t.el.toolType.dispatchEvent(new t.doc.defaultView!.Event('change'));
    assert.equal(t.field('servicedesk_url'), null);
    assert.ok(t.field('zendesk_subdomain'));
  });

  it('creates, shows the secret once with the webhook URL, and maps a taken id onto its field', async () => {
    const t = tenantsPage([]);
    await t.page.show();
    t.el.add.click();
    t.field('tenant_id')!.value = 'acme';
    t.field('name')!.value = 'Acme';
    t.field('servicedesk_url')!.value = 'https://sdp.acme.example';
    t.field('api_key')!.value = 'key-1';
    t.failCreateWith(new ApiError(409, 'tenant_exists', "Tenant 'acme' already exists (tenant ids are never reused, even after a delete)."));
    t.el.form.requestSubmit();
    await settle();
    assert.match(t.error('tenant_id')?.textContent ?? '', /already exists/);
    assert.equal(t.el.error.hidden, true, 'on the field, not in the banner');

    t.failCreateWith(null as unknown as ApiError);
    t.field('tenant_id')!.value = 'acme2';
    t.el.form.requestSubmit();
    await settle();
    assert.equal(t.calls.creates.length, 2);
    assert.equal(t.el.secret.textContent, 'whsec-shown-once');
    assert.equal(t.el.secretPanel.hidden, false);
    assert.equal(t.el.webhookUrl.textContent, 'https://csp.example/webhook/servicedesk_plus/acme2');
    t.el.copySecret.click();
    t.el.copyUrl.click();
    await settle();
    assert.deepEqual(t.calls.copied, ['whsec-shown-once', 'https://csp.example/webhook/servicedesk_plus/acme2']);
    assert.equal(t.el.body.rows.length, 1);
    // Now editing: the key is stored, never shown.
    assert.equal(t.field('api_key')?.value, '');
    assert.equal(t.field('api_key')?.placeholder, SECRET_KEPT);
    // Leaving: the secret is gone for good.
    t.el.cancel.click();
    assert.equal(t.el.secret.textContent, '');
  });

  it("tests an edit's settings with the stored secret and saves only what changed", async () => {
    const t = tenantsPage([tenant('acme')]);
    await t.page.show();
    t.doc.querySelector<HTMLButtonElement>('[data-testid="tenant-edit-acme"]')!.click();
    assert.equal(t.field('tenant_id')?.disabled, true);
    t.field('servicedesk_url')!.value = 'https://sdp2.acme.example';
    t.el.testButton.click();
    await settle();
    assert.deepEqual(t.calls.tests, [['acme', { tool_type: 'servicedesk_plus', servicedesk_url: 'https://sdp2.acme.example', servicedesk_auth: 'authtoken' }]]);
    assert.equal(t.el.testResult.dataset.ok, 'false');
    assert.match(t.el.testResult.textContent ?? '', /rejected the api_key/);
    t.el.form.requestSubmit();
    await settle();
    assert.deepEqual(t.calls.patches, [['acme', { servicedesk_url: 'https://sdp2.acme.example' }]]);
  });

  it('shows a dedicated queue in the row, fills it on edit and saves its change', async () => {
    const t = tenantsPage([tenant('acme', { dedicated_queue: true }), tenant('beta')]);
    await t.page.show();
    const badge = t.doc.querySelector<HTMLElement>('[data-testid="tenant-dedicated-acme"]');
    assert.equal(badge?.textContent, 'dedicated');
    assert.match(badge?.title ?? '', /CSP_WORKER_TENANT=acme/);
    assert.equal(t.el.body.rows[0]?.cells[4]?.textContent, 'active dedicated');
    assert.equal(t.doc.querySelector('[data-testid="tenant-dedicated-beta"]'), null, 'a shared-queue tenant has none');
    t.doc.querySelector<HTMLButtonElement>('[data-testid="tenant-edit-beta"]')!.click();
    assert.equal(t.el.dedicatedQueue.checked, false);
    t.doc.querySelector<HTMLButtonElement>('[data-testid="tenant-edit-acme"]')!.click();
    assert.equal(t.el.dedicatedQueue.checked, true);
    t.el.dedicatedQueue.checked = false;
    t.el.form.requestSubmit();
    await settle();
    assert.deepEqual(t.calls.patches, [['acme', { dedicated_queue: false }]]);
    assert.equal(t.doc.querySelector('[data-testid="tenant-dedicated-acme"]'), null, 'the saved row has no badge');
    // A new tenant starts on the shared queue; ticked, the create says so.
    t.el.dedicatedQueue.checked = true;
    t.el.add.click();
    assert.equal(t.el.dedicatedQueue.checked, false);
    t.field('tenant_id')!.value = 'gamma';
    t.field('name')!.value = 'Gamma';
    t.field('servicedesk_url')!.value = 'https://sdp.gamma.example';
    t.field('api_key')!.value = 'key-1';
    t.el.dedicatedQueue.checked = true;
    t.el.form.requestSubmit();
    await settle();
    assert.equal(t.calls.creates[0]?.dedicated_queue, true);
  });

  it('deletes only after the confirmation', async () => {
    const t = tenantsPage([tenant('acme')]);
    await t.page.show();
    t.doc.querySelector<HTMLButtonElement>('[data-testid="tenant-edit-acme"]')!.click();
    t.answerConfirm(false);
    t.el.remove.click();
    await settle();
    assert.deepEqual(t.calls.removed, []);
    t.answerConfirm(true);
    t.el.remove.click();
    await settle();
    assert.deepEqual(t.calls.removed, ['acme']);
    assert.equal(t.el.body.rows[0]?.cells[4]?.textContent, 'deleted');
  });

  it('imports history and polls its progress until it ends', async () => {
    const t = tenantsPage([tenant('acme')]);
    await t.page.show();
    t.doc.querySelector<HTMLButtonElement>('[data-testid="tenant-edit-acme"]')!.click();
    await settle();
    t.el.importDays.value = '30';
    t.el.importButton.click();
    await settle();
    assert.deepEqual(t.calls.imports, [['acme', { days: 30 }]]);
    assert.equal(t.el.importProgress.hidden, false);
    assert.equal(t.el.importProgress.dataset.state, 'running');
    assert.equal(t.el.importButton.disabled, true);
    t.progressAnswers.push(progress({ imported: 100, total: 250, pages: 1 }), progress({ state: 'completed', imported: 250, total: 250, pages: 3, finished_at: '2026-10-01T08:01:00Z' }));
    t.timers.fire();
    await settle();
    assert.equal(t.el.importText.textContent, 'Importing… 100 of 250 tickets imported (40%)');
    assert.equal(t.el.importBar.value, 40);
    t.timers.fire();
    await settle();
    assert.equal(t.el.importProgress.dataset.state, 'completed');
    assert.equal(t.el.importText.textContent, 'Completed: 250 tickets imported.');
    assert.equal(t.timers.pending(), 0, 'no more polling');
    assert.equal(t.el.importButton.disabled, false);
  });
});
