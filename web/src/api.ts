// The gateway's REST API (docs/websocket-protocol.md). The session token lives
// in an HttpOnly cookie the gateway sets; this code never sees or stores it.

import type {
  AdminUser,
  AppConfig,
  AuditPage,
  Budget,
  ChartRange,
  Charts,
  ChatTenantList,
  ConfigsReloaded,
  Dashboard,
  Enhancement,
  EnhancementPage,
  EnhancementStatus,
  History,
  Login,
  LoginRequest,
  Me,
  NewUser,
  Plugin,
  PluginConfigUpdate,
  PluginList,
  PluginRescan,
  Processing,
  ProcessingUpdate,
  QueueCleared,
  SessionList,
  TenantList,
  ConnectionTest,
  ConnectionTestBody,
  CreatedTenant,
  ImportProgress,
  ImportRequest,
  ImportStarted,
  NewTenant,
  Tenant,
  TenantPatch,
  ToolTypeList,
  Upserted,
  WebhookSecret,
  UserList,
  UserPatch,
  LogLevel,
  WorkerList,
  WorkerLogs,
  WorkerRestart,
  WorkerThroughput,
} from './protocol';

/** A failed API call, carrying the gateway's catalogued message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const FALLBACK_MESSAGE = 'The service is temporarily unavailable. Please try again shortly.';

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'unavailable', FALLBACK_MESSAGE);
  }
  if (res.status === 204) return undefined as T;
  const payload: unknown = await res.json().catch(() => null);
  if (!res.ok) throw errorFrom(res.status, payload);
  return payload as T;
}

/** Reads `{"error": {"code", "message"}}` (an `ErrorBody`), tolerating anything else. */
export function errorFrom(status: number, payload: unknown): ApiError {
  const err = (payload as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof err?.code === 'string' ? err.code : status === 401 ? 'unauthenticated' : 'internal';
  const message = typeof err?.message === 'string' && err.message ? err.message : FALLBACK_MESSAGE;
  return new ApiError(status, code, message);
}

export function login(username: string, password: string): Promise<Login> {
  const body: LoginRequest = { username, password };
  return call('POST', '/api/v1/auth/login', body);
}

export function logout(): Promise<void> {
  return call('POST', '/api/v1/auth/logout');
}

export function me(): Promise<Me> {
  return call('GET', '/api/v1/me');
}

export function config(): Promise<AppConfig> {
  return call('GET', '/api/v1/config');
}

export function history(sessionId: string): Promise<History> {
  return call('GET', `/api/v1/sessions/${encodeURIComponent(sessionId)}/messages`);
}

/** The caller's sessions, most recently active first. */
export function sessions(): Promise<SessionList> {
  return call('GET', '/api/v1/sessions');
}

/** The tenants the caller may bind a new session to (`/ws?tenant=<id>`). */
export function chatTenants(): Promise<ChatTenantList> {
  return call('GET', '/api/v1/chat/tenants');
}

/** The caller's spend this month against their cap. */
export function budget(): Promise<Budget> {
  return call('GET', '/api/v1/me/budget');
}

/** Every user with this month's spend (admin). */
export function users(): Promise<UserList> {
  return call('GET', '/api/v1/users');
}

export function createUser(user: NewUser): Promise<AdminUser> {
  return call('POST', '/api/v1/users', user);
}

export function updateUser(userId: string, patch: UserPatch): Promise<AdminUser> {
  return call('PATCH', `/api/v1/users/${encodeURIComponent(userId)}`, patch);
}

/** The audit log's filters as the page holds them: "" means "not filtered". */
export interface AuditFilters {
  userId: string;
  /** `YYYY-MM-DD`. */
  start: string;
  /** `YYYY-MM-DD`, inclusive (the server counts a date `end` to the end of that day). */
  end: string;
}

/**
 * The audit log URL for `filters`: one page (`before` the cursor, or the
 * newest), or with `format: 'csv'` the export of every matching entry.
 * Empty filters are left out rather than sent empty.
 */
export function auditLogUrl(filters: AuditFilters, opts: { before?: number | null; format?: 'csv' } = {}): string {
  const q = new URLSearchParams();
  if (filters.userId) q.set('user_id', filters.userId);
  if (filters.start) q.set('start', filters.start);
  if (filters.end) q.set('end', filters.end);
  if (opts.before !== undefined && opts.before !== null) q.set('before', String(opts.before));
  if (opts.format) q.set('format', opts.format);
  const query = q.toString();
  return query ? `/api/v1/admin/audit-log?${query}` : '/api/v1/admin/audit-log';
}

export function auditLog(filters: AuditFilters, before: number | null): Promise<AuditPage> {
  return call('GET', auditLogUrl(filters, { before }));
}

/** Every plugin the gateway found, by name (operator). */
export function plugins(): Promise<PluginList> {
  return call('GET', '/api/v1/plugins');
}

function pluginPath(name: string, action: string): string {
  return `/api/v1/plugins/${encodeURIComponent(name)}/${action}`;
}

export function activatePlugin(name: string): Promise<Plugin> {
  return call('POST', pluginPath(name, 'activate'));
}

export function deactivatePlugin(name: string): Promise<Plugin> {
  return call('POST', pluginPath(name, 'deactivate'));
}

export function savePluginConfig(name: string, update: PluginConfigUpdate): Promise<Plugin> {
  return call('PUT', pluginPath(name, 'config'), update);
}

/** Reads the plugins directory again and says what was added, changed and removed. */
export function rescanPlugins(): Promise<PluginRescan> {
  return call('POST', '/api/v1/plugins/rescan');
}

/** Ticket enhancement's health, figures, backends and last failures (operator). */
export function dashboard(): Promise<Dashboard> {
  return call('GET', '/api/v1/tickets/dashboard');
}

/** The operations charts of a period (operator): Prometheus' series or the history's. */
export function charts(range: ChartRange): Promise<Charts> {
  return call('GET', `/api/v1/tickets/charts?range=${encodeURIComponent(range)}`);
}

/** The tickets workers from their heartbeats (operator). */
export function workers(): Promise<WorkerList> {
  return call('GET', '/api/v1/tickets/workers');
}

/** A worker's last log lines of at least `level` (operator). */
export function workerLogs(workerId: string, level: LogLevel): Promise<WorkerLogs> {
  return call('GET', `/api/v1/tickets/workers/${encodeURIComponent(workerId)}/logs?level=${encodeURIComponent(level)}`);
}

/** The jobs a worker ended per hour over 7 days (operator). */
export function workerThroughput(workerId: string): Promise<WorkerThroughput> {
  return call('GET', `/api/v1/tickets/workers/${encodeURIComponent(workerId)}/throughput`);
}

/** Drains a worker; its supervisor starts it again (admin). */
export function restartWorker(workerId: string): Promise<WorkerRestart> {
  return call('POST', `/api/v1/tickets/workers/${encodeURIComponent(workerId)}/restart`);
}

/** The history's filters as the form holds them; "" is "not filtered". */
export interface HistoryFilters {
  tenantId: string;
  status: '' | EnhancementStatus;
  /** `YYYY-MM-DD`. */
  from: string;
  /** `YYYY-MM-DD`, inclusive (the gateway counts a date `to` to the end of that day). */
  to: string;
  /** A ticket id, or words of the description. */
  q: string;
}

function historyQuery(filters: HistoryFilters): URLSearchParams {
  const q = new URLSearchParams();
  if (filters.tenantId) q.set('tenant_id', filters.tenantId);
  if (filters.status) q.set('status', filters.status);
  if (filters.from) q.set('from', filters.from);
  if (filters.to) q.set('to', filters.to);
  const text = filters.q.trim();
  if (text) q.set('q', text);
  return q;
}

/** One page of the history (`page` from 1); empty filters are left out. */
export function enhancementsUrl(filters: HistoryFilters, page: number): string {
  const q = historyQuery(filters);
  if (page > 1) q.set('page', String(page));
  const text = q.toString();
  return text ? `/api/v1/enhancements?${text}` : '/api/v1/enhancements';
}

/** The CSV of every job the filters match (no page: the export is all of them). */
export function exportUrl(filters: HistoryFilters): string {
  const text = historyQuery(filters).toString();
  return text ? `/api/v1/enhancements/export.csv?${text}` : '/api/v1/enhancements/export.csv';
}

/** A page of the enhancement history (operator). */
export function enhancements(filters: HistoryFilters, page: number): Promise<EnhancementPage> {
  return call('GET', enhancementsUrl(filters, page));
}

/** Queues a failed job again (operator); any other job is refused. */
export function retryEnhancement(jobId: string): Promise<Enhancement> {
  return call('POST', `/api/v1/enhancements/${encodeURIComponent(jobId)}/retry`);
}

/** Every tenant, active or not (admin). */
export function tenants(): Promise<TenantList> {
  return call('GET', '/api/v1/tenants');
}

function tenantPath(tenantId: string, rest = ''): string {
  return `/api/v1/tenants/${encodeURIComponent(tenantId)}${rest}`;
}

/** Every ticketing tool with its tenant fields, from the connector registry (admin). */
export function toolTypes(): Promise<ToolTypeList> {
  return call('GET', '/api/v1/tool-types');
}

/** Creates a tenant; the answer carries its webhook secret, shown this once. */
export function createTenant(body: NewTenant): Promise<CreatedTenant> {
  return call('POST', '/api/v1/tenants', body);
}

export function updateTenant(tenantId: string, patch: TenantPatch): Promise<Tenant> {
  return call('PATCH', tenantPath(tenantId), patch);
}

/** Soft delete: the tenant turns inactive, its data stays. */
export function deleteTenant(tenantId: string): Promise<Tenant> {
  return call('DELETE', tenantPath(tenantId));
}

/** A new generated webhook secret, shown this once (the previous one works 24 h more). */
export function rotateWebhookSecret(tenantId: string): Promise<WebhookSecret> {
  return call('POST', tenantPath(tenantId, '/webhook-secret'));
}

/**
 * Tests settings against their tool without saving them: a new tenant's
 * (`tenantId` null), or a saved tenant's edits, whose secret fields left
 * empty are the stored ones.
 */
export function testConnection(tenantId: string | null, body: ConnectionTestBody): Promise<ConnectionTest> {
  return call('POST', tenantId === null ? '/api/v1/tenants/test-connection' : tenantPath(tenantId, '/test-connection'), body);
}

/** Starts importing the tenant's resolved tickets into its history, or answers the import running. */
export function startImport(tenantId: string, body: ImportRequest = {}): Promise<ImportStarted> {
  return call('POST', tenantPath(tenantId, '/import'), body);
}

/** The tenant's latest import and how far it got (404 when none). */
export function importProgress(tenantId: string): Promise<ImportProgress> {
  return call('GET', tenantPath(tenantId, '/import'));
}

/** The context data a tenant's file uploads to. */
export type UploadKind = 'inventory' | 'kb-articles';

/**
 * Uploads a file's text as the tenant's inventory or knowledge base: CSV
 * (with a header row) or a JSON list, as `contentType` says. The gateway's
 * errors name the row and column.
 */
export async function uploadContext(tenantId: string, kind: UploadKind, text: string, contentType: 'text/csv' | 'application/json'): Promise<Upserted> {
  let res: Response;
  try {
    res = await fetch(tenantPath(tenantId, `/${kind}`), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { Accept: 'application/json', 'Content-Type': contentType },
      body: text,
    });
  } catch {
    throw new ApiError(0, 'unavailable', FALLBACK_MESSAGE);
  }
  const payload: unknown = await res.json().catch(() => null);
  if (!res.ok) throw errorFrom(res.status, payload);
  return payload as Upserted;
}

/** Whether the workers take jobs, and the queue's depth (operator). */
export function processing(): Promise<Processing> {
  return call('GET', '/api/v1/tickets/processing');
}

/** Pauses or resumes the workers (admin). */
export function setProcessing(paused: boolean): Promise<Processing> {
  const body: ProcessingUpdate = { paused };
  return call('PUT', '/api/v1/tickets/processing', body);
}

/** Every pending job becomes failed as `cleared` (admin). */
export function clearQueue(): Promise<QueueCleared> {
  return call('POST', '/api/v1/tickets/queue/clear');
}

/** Every replica reads the tenant configurations again (admin). */
export function reloadConfigs(): Promise<ConfigsReloaded> {
  return call('POST', '/api/v1/tickets/configs/reload');
}

/** The audit actions of the operations page, as the tickets service writes them. */
export const OPERATION_ACTIONS = ['tickets.pause', 'tickets.resume', 'tickets.clear_queue', 'tickets.reload_configs', 'tickets.retry', 'tickets.restart_worker'] as const;

/** The audit log filtered to the operations, newest first (admin). */
export function operationsUrl(): string {
  return `/api/v1/admin/audit-log?${new URLSearchParams({ tool_name: OPERATION_ACTIONS.join(',') }).toString()}`;
}

export function operationsLog(): Promise<AuditPage> {
  return call('GET', operationsUrl());
}
