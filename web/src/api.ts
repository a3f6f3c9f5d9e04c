// The gateway's REST API (docs/websocket-protocol.md). The session token lives
// in an HttpOnly cookie the gateway sets; this code never sees or stores it.

import type {
  AdminUser,
  AppConfig,
  AuditPage,
  Budget,
  ChatTenantList,
  History,
  Login,
  LoginRequest,
  Me,
  NewUser,
  Plugin,
  PluginConfigUpdate,
  PluginList,
  PluginRescan,
  SessionList,
  UserList,
  UserPatch,
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
