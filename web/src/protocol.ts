// Wire shapes of docs/websocket-protocol.md (mirrors crates/domain/src/event.rs).

export type SessionStatus = 'preparing' | 'ready' | 'failed' | 'ended';
export type ToolStatus = 'complete' | 'error';

/** A frame of the session stream: always carries `seq`. */
export type StreamFrame = { seq: number } & (
  | { type: 'session'; status: SessionStatus; session_id: string; model?: string }
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
  | { type: 'error'; code: string; message: string }
  | { type: 'notice'; code: string; message: string }
);

/** A frame about the connection itself: never carries `seq`. */
export type ConnectionFrame =
  | { type: 'error'; code: string; message: string }
  | { type: 'pong' };

export type ServerFrame = StreamFrame | ConnectionFrame;

export type ClientFrame =
  | { type: 'send'; text: string; client_id?: string }
  | { type: 'interrupt' }
  | { type: 'ping' };

export interface User {
  user_id: string;
  username: string;
  role: string;
}

export interface AppConfig {
  model_label: string;
  max_frame_bytes: number;
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
