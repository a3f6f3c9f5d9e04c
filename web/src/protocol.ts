// Wire shapes of docs/websocket-protocol.md. Every body and frame is
// generated from the Rust types (services/gateway/src/dto.rs and the
// csp-domain types it carries) into ./generated/api.ts, which
// scripts/check-generated.sh keeps fresh; this module re-exports them and
// adds what only the client needs.

import type { ConnectionFrame, LoginUser, StreamFrame } from './generated/api';

export type {
  AdminUser,
  AppConfig,
  AuditEntry,
  AuditPage,
  AuditStatus,
  Budget,
  ChartRange,
  Charts,
  ChartSource,
  ChatTenant,
  ChatTenantList,
  ClientFrame,
  ConfigsReloaded,
  ConnectionFrame,
  Dashboard,
  DashboardDependency,
  Enhancement,
  EnhancementPage,
  EnhancementStatus,
  ErrorBody,
  ErrorCode,
  FrameAction,
  History,
  JsonObject,
  Login,
  LoginRequest,
  LoginUser,
  Me,
  Named,
  NewUser,
  Plugin,
  PluginConfigUpdate,
  PluginList,
  PluginProblem,
  PluginRescan,
  PluginTool,
  Processing,
  ProcessingUpdate,
  QueueCleared,
  Role,
  Sandbox,
  SessionList,
  SessionStatus,
  SessionSummary,
  TenantFeedback,
  TenantList,
  ConnectionTest,
  ConnectionTestBody,
  ContextSource,
  CreatedTenant,
  EnhancementPreferences,
  EnhancementPreferencesInput,
  ImportProgress,
  ImportRequest,
  ImportStarted,
  ImportState,
  NewTenant,
  Tenant,
  TenantPatch,
  ToolField,
  ToolFieldKind,
  ToolTypeInfo,
  ToolTypeList,
  Upserted,
  WebhookSecret,
  StatusReason,
  StreamFrame,
  ToolStatus,
  UserList,
  UserPatch,
  LogLevel,
  ThroughputHour,
  WorkerList,
  WorkerLogLine,
  WorkerLogs,
  WorkerRestart,
  WorkerStatus,
  WorkerSummary,
  WorkerThroughput,
} from './generated/api';

/** Every frame the server sends: a stream frame (with `seq`) or one about the connection. */
export type ServerFrame = StreamFrame | ConnectionFrame;

/**
 * Who is signed in: the login's `user`, or `GET /api/v1/me` (whose `role`
 * is a `Role`, hence also a string).
 */
export type User = LoginUser;

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

/**
 * A plugin's `config_schema` as the form reads it. The server passes the
 * manifest's schema through as JSON (`Plugin.config_schema`), untyped.
 */
export type PluginConfigSchema = {
  type?: string;
  properties?: Record<string, PluginConfigProperty>;
  required?: string[];
};
