// What the status line and the composer show, from the connection and the session state.

import type { SessionStatus } from './protocol';

/**
 * `closed`: no socket and none coming by itself — the page gave up, the
 * session is over, or a paused (`idle`/`failed`) session waits for the next
 * message to reconnect.
 */
export type Connection = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StatusInput {
  connection: Connection;
  session: SessionStatus | null;
  /** `reason` of the latest `session` frame. */
  reason?: string | null;
  /** Latest error or notice text of the session, shown when it has ended. */
  message?: string | null;
  /** Why the page stopped reconnecting (e.g. the session is not the user's). */
  connectionMessage?: string | null;
  /** A `session_expiring` warning still in force. */
  expiring?: string | null;
}

export interface StatusView {
  text: string;
  tone: 'info' | 'ok' | 'busy' | 'warn' | 'error';
  /** Show the progress indicator (a process is starting). */
  progress: boolean;
}

export const PREPARING_TEXT = 'Preparing your session (up to 30 seconds)...';
export const RESUMING_TEXT = 'Restoring your session...';
export const RESTARTING_TEXT = 'Session restarting due to resource limits';
export const IDLE_TEXT = 'Paused — send a message to continue';
export const FAILED_TEXT = 'The session stopped unexpectedly. Send a message to restart it.';
export const ENDED_TEXT = 'This session has ended. You can start a new session.';

export function statusView(input: StatusInput): StatusView {
  const { connection, session } = input;
  if (session === 'ended') return { text: input.message ?? ENDED_TEXT, tone: 'error', progress: false };
  if (connection === 'closed' && input.connectionMessage) {
    return { text: input.connectionMessage, tone: 'error', progress: false };
  }
  if (connection === 'reconnecting') return { text: 'Reconnecting...', tone: 'busy', progress: false };
  // Paused sessions read the same whether or not a socket is open: the next message resumes them.
  if (session === 'failed') return { text: FAILED_TEXT, tone: 'error', progress: false };
  if (session === 'idle') return { text: IDLE_TEXT, tone: 'info', progress: false };
  if (connection === 'closed') return { text: 'Disconnected.', tone: 'error', progress: false };
  if (connection === 'connecting' || session === null) {
    return { text: 'Connecting...', tone: 'busy', progress: false };
  }
  if (session === 'preparing') return { text: preparingText(input.reason ?? null), tone: 'busy', progress: true };
  if (input.expiring) return { text: input.expiring, tone: 'warn', progress: false };
  return { text: 'Ready', tone: 'ok', progress: false };
}

function preparingText(reason: string | null): string {
  if (reason === 'resume') return RESUMING_TEXT;
  if (reason === 'restart') return RESTARTING_TEXT;
  return PREPARING_TEXT;
}

export interface ComposerView {
  /** The text box and Send accept input. */
  enabled: boolean;
  /** Offer "Start a new session" in place of sending. */
  startNew: boolean;
}

/** Only an `ended` session refuses messages; a paused or failed one resumes on the next. */
export function composerView(session: SessionStatus | null): ComposerView {
  return session === 'ended' ? { enabled: false, startNew: true } : { enabled: true, startNew: false };
}
