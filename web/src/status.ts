// What the status line says, from the connection and the session state.

import type { SessionStatus } from './protocol';

export type Connection = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StatusView {
  text: string;
  tone: 'info' | 'ok' | 'busy' | 'error';
  /** Show the cold-start progress indicator. */
  progress: boolean;
}

export const PREPARING_TEXT = 'Preparing your session (up to 30 seconds)...';
const FAILED_TEXT = 'This session is no longer available. Start a new session to continue.';
const ENDED_TEXT = 'This session has ended. You can start a new session.';

export function statusView(
  connection: Connection,
  session: SessionStatus | null,
  message: string | null,
): StatusView {
  if (session === 'failed') return { text: message ?? FAILED_TEXT, tone: 'error', progress: false };
  if (session === 'ended') return { text: message ?? ENDED_TEXT, tone: 'error', progress: false };
  if (connection === 'reconnecting') return { text: 'Reconnecting...', tone: 'busy', progress: false };
  if (connection === 'closed') return { text: message ?? 'Disconnected.', tone: 'error', progress: false };
  if (connection === 'connecting' || session === null) {
    return { text: 'Connecting...', tone: 'busy', progress: false };
  }
  if (session === 'preparing') return { text: PREPARING_TEXT, tone: 'busy', progress: true };
  return { text: 'Ready', tone: 'ok', progress: false };
}
