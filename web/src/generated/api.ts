// Generated from services/gateway/src/dto.rs by scripts/check-generated.sh --update.
// Do not edit: change the Rust type and regenerate.

export type Sandbox = "bubblewrap" | "off";

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

export type AppConfig = { model_label: string, max_frame_bytes: number,
/**
 * Null when the session-pool cannot say.
 */
agent_sandbox: Sandbox | null, };
