// One WebSocket to the gateway. Reconnect policy lives in the chat controller;
// this module only speaks frames and keeps the connection alive.

import type { ClientFrame, ServerFrame, SessionStatus } from './protocol';
import { parseServerFrame } from './protocol';

/** Close code the gateway uses when the replay window no longer holds `after_seq + 1`. */
export const CLOSE_REPLAY_GAP = 4409;
/** "Service restart": the gateway is going down and the session resumes on reattach. */
export const CLOSE_SERVICE_RESTART = 1012;

const PING_EVERY_MS = 25_000;

/**
 * `/ws` for a new session (`/ws?tenant=<id>` for one bound to a tenant), or
 * `/ws?session=<id>&after_seq=<n>` to reattach (a session keeps the tenant it
 * started with: the gateway refuses `tenant` on a reattach).
 */
export function wsUrl(
  loc: { protocol: string; host: string },
  sessionId: string | null,
  afterSeq: number,
  tenantId: string | null = null,
): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  const base = `${scheme}//${loc.host}/ws`;
  if (sessionId === null) {
    return tenantId ? `${base}?${new URLSearchParams({ tenant: tenantId }).toString()}` : base;
  }
  const query = new URLSearchParams({ session: sessionId, after_seq: String(afterSeq) });
  return `${base}?${query.toString()}`;
}

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential from 500 ms,
 * capped at 10 s, with jitter so that tabs dropped together do not return together.
 */
export function reconnectDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(10_000, 500 * 2 ** Math.max(0, Math.min(attempt, 10)));
  return Math.round(base * (0.75 + 0.5 * random()));
}

/**
 * What to do when the socket closed without us closing it:
 * - `stop`: the session is over for good;
 * - `reload`: the replay window lost frames, load the history and reattach;
 * - `reconnect`: reattach after a back-off (network drop, slow consumer,
 *   server restart — the new server resumes the session on reattach);
 * - `park`: the session is paused (`idle`/`failed`); reattaching would start
 *   a process nobody asked for, so wait until the user sends a message.
 */
export type CloseAction = 'stop' | 'reload' | 'reconnect' | 'park';

export function closeAction(
  code: number,
  session: { sessionId: string | null; sessionStatus: SessionStatus | null; shutdown: string | null },
): CloseAction {
  if (session.sessionStatus === 'ended') return 'stop';
  if (code === CLOSE_REPLAY_GAP && session.sessionId !== null) return 'reload';
  if (code === CLOSE_SERVICE_RESTART || session.shutdown !== null) return 'reconnect';
  if (session.sessionStatus === 'idle' || session.sessionStatus === 'failed') return 'park';
  return 'reconnect';
}

export interface SocketHandlers {
  onOpen(): void;
  onFrame(frame: ServerFrame): void;
  /** Called once when the connection ends without `close()` having been called. */
  onClose(code: number, reason: string): void;
}

export class SessionSocket {
  private readonly ws: WebSocket;
  private ping: ReturnType<typeof setInterval> | null = null;
  private closedByUs = false;

  constructor(url: string, handlers: SocketHandlers) {
    this.ws = new WebSocket(url);
    this.ws.addEventListener('open', () => {
      this.ping = setInterval(() => this.send({ type: 'ping' }), PING_EVERY_MS);
      handlers.onOpen();
    });
    this.ws.addEventListener('message', (ev: MessageEvent) => {
      if (this.closedByUs || typeof ev.data !== 'string') return;
      const frame = parseServerFrame(ev.data);
      if (frame) handlers.onFrame(frame);
    });
    this.ws.addEventListener('close', (ev: CloseEvent) => {
      this.stopPing();
      if (!this.closedByUs) handlers.onClose(ev.code, ev.reason);
    });
  }

  get isOpen(): boolean {
    return !this.closedByUs && this.ws.readyState === WebSocket.OPEN;
  }

  /** Sends a frame; false when the socket is not open (nothing was sent). */
  send(frame: ClientFrame): boolean {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Closes on purpose: no `onClose`, no further frames. */
  close(): void {
    this.closedByUs = true;
    this.stopPing();
    this.ws.close(1000);
  }

  private stopPing(): void {
    if (this.ping !== null) clearInterval(this.ping);
    this.ping = null;
  }
}
