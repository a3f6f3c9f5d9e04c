// One WebSocket to the gateway. Reconnect policy lives in the chat controller;
// this module only speaks frames and keeps the connection alive.

import type { ClientFrame, ServerFrame } from './protocol';
import { parseServerFrame } from './protocol';

/** Close code the gateway uses when the replay window no longer holds `after_seq + 1`. */
export const CLOSE_REPLAY_GAP = 4409;

const PING_EVERY_MS = 25_000;

/** `/ws` for a new session, or `/ws?session=<id>&after_seq=<n>` to reattach. */
export function wsUrl(
  loc: { protocol: string; host: string },
  sessionId: string | null,
  afterSeq: number,
): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  const base = `${scheme}//${loc.host}/ws`;
  if (sessionId === null) return base;
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
