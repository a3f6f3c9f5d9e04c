// Wire shapes of docs/websocket-protocol.md (mirrors crates/domain/src/event.rs).

/**
 * `idle` and `failed` sessions are resumable (sending a message or reopening
 * starts a new process); `ended` ones are over for good.
 */
export type SessionStatus = 'preparing' | 'ready' | 'idle' | 'failed' | 'ended';
/** `denied`: csp refused the call (role or policy); `content` is the reason. */
export type ToolStatus = 'complete' | 'error' | 'denied';

/**
 * Why a `session` frame changed state. Known values: `resume`, `restart`
 * (preparing); `idle_timeout`, `shutdown` (idle); `crashed`, `start_failed`
 * (failed); `duration_limit`, `shutdown` (ended). Open-ended on the wire.
 */
export type SessionReason = string;

/** A link offered with a notice or error, e.g. "Continue in new session". */
export interface FrameAction {
  label: string;
  /** Meant to be a same-origin relative URL; the client checks before linking it. */
  href: string;
}

/** A frame of the session stream: always carries `seq`. */
export type StreamFrame = { seq: number } & (
  | { type: 'session'; status: SessionStatus; session_id: string; model?: string; reason?: SessionReason }
  | { type: 'user_message'; text: string; client_id?: string }
  | { type: 'delta'; text: string }
  | { type: 'thinking'; text: string }
  | { type: 'tool_use'; tool_use_id: string; name: string; input: unknown }
  | {
      type: 'tool_result';
      tool_use_id: string;
      status: ToolStatus;
      duration_ms: number;
      content: string;
    }
  | {
      type: 'result';
      cost_usd: number;
      total_cost_usd: number;
      is_error: boolean;
      interrupted?: boolean;
      duration_ms?: number;
    }
  | { type: 'error'; code: string; message: string; action?: FrameAction }
  | { type: 'notice'; code: string; message: string; action?: FrameAction; minutes_left?: number }
);

/** A frame about the connection itself: never carries `seq`. */
export type ConnectionFrame =
  | { type: 'error'; code: string; message: string; action?: FrameAction }
  | { type: 'pong' }
  /** The gateway got SIGTERM: the socket stays until it closes (1012), then reattach. */
  | { type: 'server_shutting_down'; message: string; grace_seconds?: number };

export type ServerFrame = StreamFrame | ConnectionFrame;

export type ClientFrame =
  | { type: 'send'; text: string; client_id?: string }
  | { type: 'interrupt' }
  | { type: 'ping' };

/** `admin` ⊃ `operator` ⊃ `user`; kept open (`string`) so an unknown role is data, not a crash. */
export type Role = 'admin' | 'operator' | 'user';

// Response bodies generated from the gateway's Rust types
// (services/gateway/src/dto.rs; scripts/check-generated.sh keeps them fresh).
export type { AdminUser, AppConfig, Budget, Sandbox, UserList } from './generated/api';

export interface User {
  user_id: string;
  username: string;
  role: string;
}

/** Body of `POST /api/v1/users`. */
export interface NewUser {
  username: string;
  password: string;
  role: string;
  monthly_cost_cap_usd: number | null;
}

/** Body of `PATCH /api/v1/users/{id}`: only the fields to change. */
export interface UserPatch {
  role?: string;
  monthly_cost_cap_usd?: number | null;
  is_active?: boolean;
}

export type AuditStatus = 'success' | 'error' | 'denied';

/** One row of `GET /api/v1/admin/audit-log`. */
export interface AuditEntry {
  audit_id: string;
  seq: number;
  /** RFC 3339. */
  timestamp: string;
  user_id: string;
  /** null when the user no longer exists. */
  username: string | null;
  session_id: string;
  tool_name: string;
  sanitized_input: string;
  result_status: AuditStatus;
  execution_duration_ms: number | null;
  cost_usd: number | null;
}

/** A page of the audit log, newest first; `next_before` fetches the next older page. */
export interface AuditPage {
  entries: AuditEntry[];
  next_before: number | null;
}

/** One row of `GET /api/v1/sessions`. */
export interface SessionSummary {
  session_id: string;
  status: SessionStatus;
  /** RFC 3339. */
  created_at: string;
  /** RFC 3339. */
  last_active_at: string;
  message_count: number;
  total_cost_usd: number;
  title: string | null;
  resume_count: number;
  is_resumable: boolean;
}

export interface SessionList {
  sessions: SessionSummary[];
}

export interface History {
  messages: StreamFrame[];
  last_seq: number;
}

export function isStreamFrame(frame: ServerFrame): frame is StreamFrame {
  return typeof (frame as { seq?: unknown }).seq === 'number';
}

/**
 * Parses one server frame, or returns null for anything that is not an
 * object with a string `type`: a malformed frame is dropped, not fatal.
 */
export function parseServerFrame(data: string): ServerFrame | null {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  if (typeof (value as { type?: unknown }).type !== 'string') return null;
  return value as ServerFrame;
}

/**
 * How far a plugin got: discovered → validated → registered → needs_config |
 * ready → configured → activated, or errored. Kept open (`string`) so a new
 * stage shows as data, not a crash.
 */
export type PluginStatus =
  | 'discovered'
  | 'validated'
  | 'registered'
  | 'needs_config'
  | 'ready'
  | 'configured'
  | 'activated'
  | 'errored';

/** A problem in a plugin's files, pointing at where to fix it. */
export interface PluginProblem {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** e.g. `capabilities.tools[1].name`. */
  field: string | null;
  message: string;
  suggestion: string | null;
}

export interface PluginTool {
  name: string;
  description?: string | null;
  required_role?: string | null;
}

/** One property of a plugin's `config_schema` (JSON Schema, the parts the form reads). */
export interface PluginConfigProperty {
  type?: string | string[];
  title?: string;
  description?: string;
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  /** Write-only: the server never sends it back, only whether it is set. */
  secret?: boolean;
}

export interface PluginConfigSchema {
  type?: string;
  properties?: Record<string, PluginConfigProperty>;
  required?: string[];
}

/** `GET /api/v1/plugins/{name}`, and the answer to every change to a plugin. */
export interface Plugin {
  name: string;
  version: string;
  /** `tool` | `mcp` | `skill` | `endpoint`; only `mcp` plugins can be activated. */
  plugin_type: string;
  description: string;
  status: PluginStatus | string;
  active: boolean;
  required_role: string;
  dir: string;
  tools: PluginTool[];
  /** Hosts (or host:port) the plugin talks to. */
  network: string[];
  config_schema: PluginConfigSchema | null;
  /** Saved values; a set secret shows as "[REDACTED]", an unset one is absent. */
  config: Record<string, unknown> | null;
  /** Which secret fields are set. */
  secrets: Record<string, boolean>;
  /** Empty unless the manifest is invalid; on an active plugin: it runs its last valid manifest. */
  errors: PluginProblem[];
  /** RFC 3339. */
  updated_at: string;
}

export interface PluginList {
  plugins: Plugin[];
}

/** `POST /api/v1/plugins/rescan`: the list afterwards and the names that moved. */
export interface PluginRescan extends PluginList {
  added: string[];
  changed: string[];
  removed: string[];
}

/**
 * Body of `PUT /api/v1/plugins/{name}/config`. A secret omitted (or sent as
 * "[REDACTED]") keeps its stored value; null clears it.
 */
export interface PluginConfigUpdate {
  config: Record<string, unknown>;
}
