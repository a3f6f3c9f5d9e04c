// Generated from services/gateway/src/dto.rs (and the csp-domain types it
// carries) by scripts/check-generated.sh --update.
// Do not edit: change the Rust type and regenerate.

/** Embedded JSON: an object whose members the server does not type. */
export type JsonObject = { [key in string]?: unknown };

export type Role = "admin" | "operator" | "user";

export type SessionStatus = "preparing" | "ready" | "failed" | "idle" | "ended";

export type StatusReason = "resume" | "restart" | "idle_timeout" | "shutdown" | "crashed" | "start_failed" | "duration_limit";

export type ToolStatus = "complete" | "error" | "denied";

export type AuditStatus = "success" | "error" | "denied";

export type ErrorCode = "bad_frame" | "unknown_type" | "frame_too_large" | "empty_message" | "unauthenticated" | "bad_credentials" | "forbidden" | "session_not_found" | "not_found" | "at_capacity" | "too_many_sessions" | "session_unavailable" | "queue_full" | "agent_crashed" | "agent_start_failed" | "response_interrupted" | "rate_limited" | "unavailable" | "session_expiring" | "duration_limit" | "session_restarting" | "session_restarted" | "resume_failed" | "model_unavailable" | "model_api_failed" | "model_stalled" | "server_shutting_down" | "budget_exceeded" | "permission_denied" | "account_deactivated" | "budget_warning" | "permissions_changed" | "invalid_request" | "username_taken" | "plugin_not_found" | "plugin_not_activatable" | "invalid_plugin_config" | "too_many_login_attempts" | "unsupported_media_type" | "tenant_not_found" | "tenant_exists" | "invalid_tenant" | "webhook_signature_invalid" | "webhook_rate_limited" | "invalid_webhook" | "payload_too_large" | "enhancement_not_found" | "worker_not_found" | "internal";

export type Named<T> = T | string;

export type FrameAction = { label: string, href: string, };

export type StreamFrame = { seq: number, } & ({ "type": "session", status: SessionStatus, session_id: string,
/**
 * Label of the model in use, e.g. "offline demo model".
 */
model?: string, reason?: StatusReason, } | { "type": "user_message", text: string,
/**
 * Echo of the client's `client_id`, so a tab can match its local copy.
 */
client_id?: string, } | { "type": "delta", text: string, } | { "type": "thinking", text: string, } | { "type": "tool_use", tool_use_id: string, name: string, input: unknown, } | { "type": "tool_result", tool_use_id: string, status: ToolStatus, duration_ms: number, content: string, } | { "type": "result", cost_usd: number, total_cost_usd: number, is_error: boolean,
/**
 * Absent from events stored before it existed (history).
 */
interrupted?: boolean,
/**
 * Absent from events stored before it existed (history).
 */
duration_ms?: number, } | { "type": "error", code: ErrorCode, message: string, action?: FrameAction, } | { "type": "notice", code: ErrorCode, message: string, action?: FrameAction,
/**
 * `session_expiring` only: whole minutes left, rounded up.
 */
minutes_left?: number, });

export type ConnectionFrame = { "type": "error", code: ErrorCode, message: string, } | { "type": "pong" } | { "type": "server_shutting_down", message: string, grace_seconds: number, };

export type ClientFrame = { "type": "send", text: string,
/**
 * Echoed in the `user_message` event (at most 128 bytes of UTF-8; a
 * longer one is dropped, not echoed).
 */
client_id?: string | null, } | { "type": "interrupt" } | { "type": "ping" };

export type LoginRequest = { username: string, password: string, };

export type NewUser = { username: string, password: string, role: string,
/**
 * Absent or null: no cap.
 */
monthly_cost_cap_usd?: number | null, };

export type UserPatch = { role?: string,
/**
 * `Some(None)`: clear the cap.
 */
monthly_cost_cap_usd?: number | null, is_active?: boolean, };

export type PluginConfigUpdate = { config: JsonObject, };

export type ErrorBody = { error: ErrorDetail, };

export type ErrorDetail = { code: ErrorCode, message: string, action: string, };

export type Live = { status: string, };

export type Started = { status: string, startup_duration_ms: number, };

export type NotStarted = { status: string, reason: string, };

export type Ready = { status: string, active_sessions: number, max_sessions: number, pool_depth: number, circuit_breaker_state: string,
/**
 * A warning an operator must see: `off` means agents run unconfined.
 */
agent_sandbox: Sandbox, };

export type NotReady = { status: string, reason: string, active_sessions: number, max_sessions: number, };

export type Sandbox = "bubblewrap" | "off";

export type AppConfig = { model_label: string, max_frame_bytes: number,
/**
 * Null when the session-pool cannot say.
 */
agent_sandbox: Sandbox | null, };

export type LoginUser = { user_id: string, username: string, role: string, };

export type Login = { token: string, expires_in: number, user: LoginUser, };

export type Me = { user_id: string, username: string, role: Role, };

export type Budget = {
/**
 * `YYYY-MM`.
 */
month: string, spent_usd: number,
/**
 * null: no cap.
 */
cap_usd: number | null,
/**
 * Whole percent of the cap spent; null without a cap.
 */
percent: number | null, };

export type AdminUser = { user_id: string, username: string, role: string,
/**
 * RFC 3339.
 */
created_at: string,
/**
 * RFC 3339, or "" for never.
 */
last_login_at: string, is_active: boolean, monthly_cost_cap_usd: number | null, current_month_spend_usd: number, };

export type UserList = { users: Array<AdminUser>, };

export type SessionSummary = { session_id: string, user_id: string,
/**
 * `unknown` when the session-pool sent a status this gateway does not know.
 */
status: Named<SessionStatus>,
/**
 * RFC 3339.
 */
created_at: string,
/**
 * RFC 3339.
 */
last_active_at: string, message_count: number, total_cost_usd: number, title: string, resume_count: number, is_resumable: boolean,
/**
 * Empty while the session has not stopped.
 */
ended_reason: Named<StatusReason>,
/**
 * The ticket-enhancement tenant the session is bound to (its agent's
 * ticket tools read only that tenant); null for none.
 */
tenant_id: string | null, };

export type SessionList = { sessions: Array<SessionSummary>, };

export type History = {
/**
 * Each message is the stored event JSON (a [`StreamFrame`] as it was
 * sent), passed through as it is.
 */
messages: Array<StreamFrame>, last_seq: number, };

export type AuditEntry = { audit_id: string, seq: number,
/**
 * RFC 3339.
 */
timestamp: string, user_id: string,
/**
 * Null when the user no longer exists.
 */
username: string | null, session_id: string, tool_name: string, sanitized_input: string, result_status: Named<AuditStatus>, execution_duration_ms: number | null, cost_usd: number | null, };

export type AuditPage = { entries: Array<AuditEntry>,
/**
 * The `before` of the next older page; null on the last page.
 */
next_before: number | null, };

export type PluginTool = { name: string, description: string, required_role: string, };

export type PluginProblem = { file: string,
/**
 * 1-based; 0 when unknown.
 */
line: number,
/**
 * 1-based; 0 when unknown.
 */
column: number,
/**
 * e.g. `capabilities.tools[1].name`.
 */
field: string, message: string, suggestion: string, };

export type Plugin = { name: string, version: string,
/**
 * `tool` | `mcp` | `skill` | `endpoint`; only `mcp` plugins can be activated.
 */
plugin_type: string, description: string,
/**
 * The plugins service's `PluginStatus` name: `registered`,
 * `needs_config`, `ready`, `configured`, `activated`, `errored`, or
 * `removed` (only in the answer to deactivating a plugin that is gone).
 */
status: string, active: boolean, required_role: string, dir: string, tools: Array<PluginTool>,
/**
 * Hosts (or host:port) the plugin talks to.
 */
network: Array<string>,
/**
 * Embedded JSON (the manifest's JSON Schema); null when it has none.
 */
config_schema: JsonObject | null,
/**
 * Embedded JSON; null when unset. A set secret shows as "[REDACTED]".
 */
config: JsonObject | null,
/**
 * Each secret field that holds a value, as `true`.
 */
secrets: { [key in string]: boolean },
/**
 * Empty unless the manifest is invalid; on an active plugin: it runs
 * its last valid manifest.
 */
errors: Array<PluginProblem>,
/**
 * RFC 3339.
 */
updated_at: string, };

export type PluginList = { plugins: Array<Plugin>, };

export type PluginRescan = { plugins: Array<Plugin>, added: Array<string>, changed: Array<string>, removed: Array<string>, };

export type EnhancementPreferencesInput = { sources?: Array<ContextSource>, note_format?: NoteFormat,
/**
 * 1 to 500.
 */
max_words?: number, mask_pii?: boolean, };

export type NewTenant = { tenant_id: string, name: string,
/**
 * `servicedesk_plus`, `jira` or `zendesk`.
 */
tool_type: string,
/**
 * ServiceDesk Plus (required).
 */
servicedesk_url?: string | null,
/**
 * ServiceDesk Plus; default `authtoken`.
 */
servicedesk_auth?: ServiceDeskAuth | null,
/**
 * ServiceDesk Plus (required): the technician key or Zoho OAuth token.
 */
api_key?: string | null,
/**
 * Jira (required): `https://<site>.atlassian.net`.
 */
jira_url?: string | null,
/**
 * Jira (required): the account the API token belongs to.
 */
jira_email?: string | null,
/**
 * Jira (required, secret).
 */
jira_api_token?: string | null,
/**
 * Jira (required): the service desk project's key.
 */
jira_project_key?: string | null,
/**
 * Jira (optional).
 */
jira_issue_type?: string | null,
/**
 * Zendesk (required): `<subdomain>.zendesk.com`.
 */
zendesk_subdomain?: string | null,
/**
 * Zendesk (required): the agent the API token belongs to.
 */
zendesk_email?: string | null,
/**
 * Zendesk (required, secret).
 */
zendesk_api_token?: string | null,
/**
 * Zendesk (optional): the API's base URL when not
 * `https://<subdomain>.zendesk.com`.
 */
zendesk_url?: string | null, kb_api_url?: string | null, enhancement_preferences?: EnhancementPreferencesInput | null, monthly_budget_usd?: number | null,
/**
 * A queue of its own (see [`Tenant::dedicated_queue`]); default false.
 */
dedicated_queue?: boolean | null, };

export type TenantPatch = { tenant_id?: string, tool_type?: string, name?: string, servicedesk_url?: string | null, servicedesk_auth?: ServiceDeskAuth | null, api_key?: string | null, jira_url?: string | null, jira_email?: string | null, jira_api_token?: string | null, jira_project_key?: string | null, jira_issue_type?: string | null, zendesk_subdomain?: string | null, zendesk_email?: string | null, zendesk_api_token?: string | null, zendesk_url?: string | null,
/**
 * null removes it.
 */
kb_api_url?: string | null,
/**
 * Merged into the tenant's: absent members keep their values.
 */
enhancement_preferences?: EnhancementPreferencesInput, is_active?: boolean,
/**
 * null: no cap.
 */
monthly_budget_usd?: number | null,
/**
 * Jobs queued from then on go to the new queue; queued ones follow
 * (a shared worker hands a dedicated tenant's job on).
 */
dedicated_queue?: boolean, };

export type ConnectionTestBody = {
/**
 * `servicedesk_plus`, `jira` or `zendesk`.
 */
tool_type: string,
/**
 * ServiceDesk Plus (required).
 */
servicedesk_url?: string | null,
/**
 * ServiceDesk Plus; default `authtoken`.
 */
servicedesk_auth?: ServiceDeskAuth | null,
/**
 * ServiceDesk Plus (required): the technician key or Zoho OAuth token.
 */
api_key?: string | null,
/**
 * Jira (required): `https://<site>.atlassian.net`.
 */
jira_url?: string | null,
/**
 * Jira (required): the account the API token belongs to.
 */
jira_email?: string | null,
/**
 * Jira (required, secret).
 */
jira_api_token?: string | null,
/**
 * Jira (required): the service desk project's key.
 */
jira_project_key?: string | null,
/**
 * Jira (optional).
 */
jira_issue_type?: string | null,
/**
 * Zendesk (required): `<subdomain>.zendesk.com`.
 */
zendesk_subdomain?: string | null,
/**
 * Zendesk (required): the agent the API token belongs to.
 */
zendesk_email?: string | null,
/**
 * Zendesk (required, secret).
 */
zendesk_api_token?: string | null,
/**
 * Zendesk (optional): the API's base URL when not
 * `https://<subdomain>.zendesk.com`.
 */
zendesk_url?: string | null, };

export type KbArticle = { title: string, summary?: string, url: string, body?: string, };

export type SystemInfo = { ip: string, hostname: string, role?: string, client?: string, location?: string, };

export type ProcessingUpdate = { paused: boolean, };

export type EnhancementPreferences = {
/**
 * Any of `ticket_history`, `kb`, `ip_inventory`.
 */
sources: Array<ContextSource>, note_format: NoteFormat, max_words: number, mask_pii: boolean, };

export type Tenant = { tenant_id: string, name: string,
/**
 * `servicedesk_plus`, `jira` or `zendesk`.
 */
tool_type: string, servicedesk_url: string | null, servicedesk_auth: ServiceDeskAuth | null,
/**
 * `"[REDACTED]"` when set, null when not.
 */
api_key: "[REDACTED]" | null, jira_url: string | null, jira_email: string | null, jira_api_token: "[REDACTED]" | null, jira_project_key: string | null, jira_issue_type: string | null, zendesk_subdomain: string | null, zendesk_email: string | null, zendesk_api_token: "[REDACTED]" | null, zendesk_url: string | null,
/**
 * The tenant's external knowledge-base API; null when none.
 */
kb_api_url: string | null, enhancement_preferences: EnhancementPreferences,
/**
 * The model spend allowed per month; null: no cap.
 */
monthly_budget_usd: number | null,
/**
 * False once deleted (soft delete: its webhooks are refused).
 */
is_active: boolean,
/**
 * Its jobs go to a queue of its own (`tickets.enhance.tenant.<id>`),
 * taken only by its own workers (`csp tenants k8s`); false: the shared
 * workers'.
 */
dedicated_queue: boolean,
/**
 * RFC 3339.
 */
created_at: string,
/**
 * RFC 3339.
 */
updated_at: string,
/**
 * Where its ticketing tool posts new tickets (`<public URL>/webhook/<tool_type>/<tenant_id>`).
 */
webhook_url: string, };

export type CreatedTenant = { webhook_secret: string, tenant_id: string, name: string,
/**
 * `servicedesk_plus`, `jira` or `zendesk`.
 */
tool_type: string, servicedesk_url: string | null, servicedesk_auth: ServiceDeskAuth | null,
/**
 * `"[REDACTED]"` when set, null when not.
 */
api_key: "[REDACTED]" | null, jira_url: string | null, jira_email: string | null, jira_api_token: "[REDACTED]" | null, jira_project_key: string | null, jira_issue_type: string | null, zendesk_subdomain: string | null, zendesk_email: string | null, zendesk_api_token: "[REDACTED]" | null, zendesk_url: string | null,
/**
 * The tenant's external knowledge-base API; null when none.
 */
kb_api_url: string | null, enhancement_preferences: EnhancementPreferences,
/**
 * The model spend allowed per month; null: no cap.
 */
monthly_budget_usd: number | null,
/**
 * False once deleted (soft delete: its webhooks are refused).
 */
is_active: boolean,
/**
 * Its jobs go to a queue of its own (`tickets.enhance.tenant.<id>`),
 * taken only by its own workers (`csp tenants k8s`); false: the shared
 * workers'.
 */
dedicated_queue: boolean,
/**
 * RFC 3339.
 */
created_at: string,
/**
 * RFC 3339.
 */
updated_at: string,
/**
 * Where its ticketing tool posts new tickets (`<public URL>/webhook/<tool_type>/<tenant_id>`).
 */
webhook_url: string, };

export type TenantList = { tenants: Array<Tenant>, };

export type TenantGrant = { user_id: string,
/**
 * Null when the policy service does not know the user (or could not
 * be asked).
 */
username: string | null,
/**
 * The admin who granted it; null when not recorded.
 */
granted_by: string | null,
/**
 * RFC 3339.
 */
granted_at: string, };

export type TenantGrantList = { tenant_id: string, grants: Array<TenantGrant>, };

export type ChatTenant = { tenant_id: string, name: string,
/**
 * `servicedesk_plus`, `jira` or `zendesk`.
 */
tool_type: string, };

export type ChatTenantList = { tenants: Array<ChatTenant>, };

export type WebhookSecret = { webhook_secret: string,
/**
 * RFC 3339.
 */
previous_valid_until: string, };

export type ConnectionTest = { ok: boolean, reason?: string, };

export type ToolFieldKind = "url" | "email" | "text" | "credential" | "choice";

export type ToolField = { name: string, label: string, required: boolean,
/**
 * Write-only: a tenant shows `"[REDACTED]"` when it is set.
 */
secret: boolean, kind: ToolFieldKind,
/**
 * The values allowed for a `choice` (the first is the default); empty
 * otherwise.
 */
choices: Array<string>, };

export type ToolTypeInfo = {
/**
 * `servicedesk_plus`, `jira` or `zendesk`.
 */
tool_type: string, display_name: string,
/**
 * In the order of the form.
 */
fields: Array<ToolField>, };

export type ToolTypeList = { tool_types: Array<ToolTypeInfo>, };

export type ImportRequest = { days?: number, start_date?: string, end_date?: string, };

export type ImportProgress = { tenant_id: string, state: ImportState,
/**
 * Pages read from the tool.
 */
pages: number,
/**
 * Tickets stored in the history.
 */
imported: number,
/**
 * Tickets listed that could not be taken (no resolution, say).
 */
skipped: number,
/**
 * Every ticket of the period, when the tool says; null when unknown.
 */
total: number | null,
/**
 * Why it failed; null unless failed.
 */
error: string | null,
/**
 * RFC 3339.
 */
started_at: string,
/**
 * RFC 3339; null while running.
 */
finished_at: string | null,
/**
 * The period imported (RFC 3339).
 */
from: string, to: string, };

export type ImportStarted = { started: boolean, tenant_id: string, state: ImportState,
/**
 * Pages read from the tool.
 */
pages: number,
/**
 * Tickets stored in the history.
 */
imported: number,
/**
 * Tickets listed that could not be taken (no resolution, say).
 */
skipped: number,
/**
 * Every ticket of the period, when the tool says; null when unknown.
 */
total: number | null,
/**
 * Why it failed; null unless failed.
 */
error: string | null,
/**
 * RFC 3339.
 */
started_at: string,
/**
 * RFC 3339; null while running.
 */
finished_at: string | null,
/**
 * The period imported (RFC 3339).
 */
from: string, to: string, };

export type Upserted = { upserted: number, };

export type Enhancement = { job_id: string, ticket_id: string, tenant_id: string, status: EnhancementStatus, attempts: number,
/**
 * The gathered context with per-source timings and errors; null until
 * gathered.
 */
context_gathered: JsonObject | null,
/**
 * The note as synthesised; null until there is one.
 */
llm_output: string | null, error_message: string | null, processing_time_ms: number | null, cost_usd: number,
/**
 * RFC 3339.
 */
created_at: string,
/**
 * RFC 3339; null until completed or failed.
 */
completed_at: string | null,
/**
 * Also the trace id, from the webhook to the note.
 */
correlation_id: string, subject: string, description: string, priority: string,
/**
 * The note's id in the ticketing tool; null until posted.
 */
note_id: string | null,
/**
 * A technician's latest vote on the note, from the links at its end;
 * null until someone votes.
 */
feedback: FeedbackVote | null,
/**
 * RFC 3339: when that vote was cast; null until someone votes.
 */
feedback_at: string | null, };

export type EnhancementPage = { enhancements: Array<Enhancement>,
/**
 * Jobs matching the filters, on every page.
 */
total: number,
/**
 * From 1.
 */
page: number,
/**
 * 50.
 */
per_page: number, };

export type TenantFeedback = { tenant_id: string, helpful: number, not_helpful: number,
/**
 * helpful / (helpful + not_helpful), 0 to 1; null without votes.
 */
helpful_rate: number | null, };

export type FeedbackSummary = { tenants: Array<TenantFeedback>, };

export type Processing = { paused: boolean,
/**
 * Jobs recorded and not yet finished.
 */
queue_depth: number, active_workers: number, };

export type QueueCleared = { cleared: number, };

export type ConfigsReloaded = {
/**
 * Always true (a reload that could not reach every replica is an error).
 */
reloaded: boolean, };

export type WebhookQueued = { job_id: string,
/**
 * `queued`.
 */
status: string, };

export type WebhookStored = {
/**
 * `stored`.
 */
status: string, };

export type DashboardDependency = {
/**
 * postgres, redis, nats (`csp dev`: sqlite, memory, in-process).
 */
name: string, ok: boolean,
/**
 * The round trip ("3 ms"), or why not.
 */
detail: string, };

export type Dashboard = { status: Health,
/**
 * Why, in words; null when healthy.
 */
reason: string | null, paused: boolean,
/**
 * Jobs recorded and not yet finished.
 */
queue_depth: number,
/**
 * Jobs that ended in the last 24 hours.
 */
completed_24h: number, failed_24h: number,
/**
 * completed / (completed + failed), 0 to 1; null when none ended.
 */
success_rate_24h: number | null,
/**
 * The 95th percentile of their processing time; null when none ended.
 */
p95_latency_ms_24h: number | null,
/**
 * Workers with a heartbeat that are not unresponsive.
 */
active_workers: number,
/**
 * The last 10 failed jobs, newest first.
 */
recent_failures: Array<Enhancement>,
/**
 * The store, the cache and the queue.
 */
dependencies: Array<DashboardDependency>,
/**
 * Technicians' votes of the last 30 days, per tenant with votes.
 */
feedback: Array<TenantFeedback>, };

export type Charts = { range: ChartRange,
/**
 * Prometheus (`CSP_PROMETHEUS_URL`) or the platform's own history.
 */
source: ChartSource,
/**
 * Why the data is not fresh from its source ("Prometheus unreachable
 * since …: showing data from …"); null when it is.
 */
warning: string | null,
/**
 * RFC 3339: when the data was read from its source.
 */
generated_at: string, step_seconds: number,
/**
 * The trailing window of each point's success rate and percentiles.
 */
window_seconds: number,
/**
 * Unix seconds, oldest first.
 */
timestamps: Array<number>,
/**
 * Jobs pending or processing.
 */
queue_depth: Array<number | null>,
/**
 * completed / (completed + failed), 0 to 1.
 */
success_rate: Array<number | null>,
/**
 * Processing time of ended jobs, seconds.
 */
latency_p50_seconds: Array<number | null>, latency_p95_seconds: Array<number | null>, latency_p99_seconds: Array<number | null>, };

export type WorkerSummary = { worker_id: string, hostname: string,
/**
 * RFC 3339.
 */
started_at: string,
/**
 * RFC 3339: its last heartbeat.
 */
last_seen_at: string, status: WorkerStatus, active_jobs: number,
/**
 * Since the process started.
 */
completed_jobs: number, failed_jobs: number,
/**
 * Of every core of its machine, 0 to 100.
 */
cpu_percent: number,
/**
 * Of its machine's memory, 0 to 100.
 */
memory_percent: number,
/**
 * Jobs completed in the last minute.
 */
jobs_per_minute: number, };

export type WorkerList = { workers: Array<WorkerSummary>, };

export type WorkerLogLine = { level: LogLevel, text: string, };

export type WorkerLogs = { worker_id: string,
/**
 * The level asked for (`debug`: every line).
 */
level: LogLevel, lines: Array<WorkerLogLine>, };

export type ThroughputHour = {
/**
 * RFC 3339: the hour's start.
 */
start: string, completed: number, failed: number, };

export type WorkerThroughput = { worker_id: string, hours: Array<ThroughputHour>, };

export type WorkerRestart = { worker_id: string,
/**
 * Its status when the command was written.
 */
status: WorkerStatus, };

/** Where an enhancement job stands (csp-domain `EnhancementStatus`). */
export type EnhancementStatus = "pending" | "processing" | "completed" | "failed";

/** A technician's vote on a note (csp-domain `FeedbackVote`). */
export type FeedbackVote = "helpful" | "not_helpful";

/** A context source a tenant may use (csp-domain `ContextSource`). */
export type ContextSource = "ticket_history" | "kb" | "ip_inventory";

/** How notes are written (csp-domain `NoteFormat`). */
export type NoteFormat = "html" | "markdown";

/** How csp signs in to a tenant's ServiceDesk Plus. */
export type ServiceDeskAuth = "authtoken" | "zoho_oauth";

/** The pipeline's health on the dashboard (csp-domain `Health`). */
export type Health = "healthy" | "degraded" | "down";

/** Where a history import stands (csp-domain `ImportState`). */
export type ImportState = "running" | "completed" | "failed";

/** How far back the charts look (csp-domain `ChartRange`). */
export type ChartRange = "1h" | "6h" | "24h" | "7d";

/** Where the charts' data comes from (csp-domain `ChartSource`). */
export type ChartSource = "prometheus" | "history";

/** Where a tickets worker stands (csp-domain `WorkerStatus`). */
export type WorkerStatus = "active" | "idle" | "draining" | "unresponsive";

/** The level of a worker's log line, most severe first (csp-domain `LogLevel`). */
export type LogLevel = "error" | "warn" | "info" | "debug";
