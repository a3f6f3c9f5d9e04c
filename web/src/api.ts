// The gateway's REST API (docs/websocket-protocol.md). The session token lives
// in an HttpOnly cookie the gateway sets; this code never sees or stores it.

import type { AppConfig, History, SessionList, User } from './protocol';

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

/** Reads `{"error": {"code", "message"}}`, tolerating anything else. */
export function errorFrom(status: number, payload: unknown): ApiError {
  const err = (payload as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof err?.code === 'string' ? err.code : status === 401 ? 'unauthenticated' : 'internal';
  const message = typeof err?.message === 'string' && err.message ? err.message : FALLBACK_MESSAGE;
  return new ApiError(status, code, message);
}

export function login(username: string, password: string): Promise<{ user: User }> {
  return call('POST', '/api/v1/auth/login', { username, password });
}

export function logout(): Promise<void> {
  return call('POST', '/api/v1/auth/logout');
}

export function me(): Promise<User> {
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
