// The chat as data: frames in, items out. Pure (no DOM, no I/O) so every rule
// of the protocol that the UI depends on is unit-tested here.
//
// Items are mutated in place and carry a `rev` that grows on every change; the
// renderer compares revs to touch only the elements that changed, which is
// what keeps a streaming bubble from flickering.

import type { FrameAction, ServerFrame, SessionStatus, StreamFrame, ToolStatus } from './protocol';
import { isStreamFrame } from './protocol';

/**
 * Where a locally typed message stands. `sending`: written to the socket with
 * no turn in flight; `queued`: waiting behind a turn (or for the socket);
 * `failed`: refused or never delivered; `delivered`: its `user_message` came.
 */
export type Delivery = 'sending' | 'queued' | 'failed' | 'delivered';

interface ItemBase {
  /** Stable key for the renderer; a confirmed local message keeps its echo's id. */
  readonly id: string;
  rev: number;
}

export interface UserItem extends ItemBase {
  kind: 'user';
  text: string;
  clientId: string | null;
  delivery: Delivery;
  /** Handed to the socket; such a message is never sent twice. */
  written: boolean;
  failure: string | null;
}

export interface AssistantItem extends ItemBase {
  kind: 'assistant';
  text: string;
  streaming: boolean;
  costUsd: number | null;
  interrupted: boolean;
  error: string | null;
  /** The link offered with `error`, shown only if it is same-origin. */
  errorAction: FrameAction | null;
}

export interface ThinkingItem extends ItemBase {
  kind: 'thinking';
  text: string;
  streaming: boolean;
}

/** `denied`: csp refused the call; `content` holds the reason. */
export type ToolState = 'executing' | ToolStatus;

export interface ToolItem extends ItemBase {
  kind: 'tool';
  toolUseId: string;
  name: string;
  input: unknown;
  status: ToolState;
  durationMs: number | null;
  content: string | null;
}

export interface NoticeItem extends ItemBase {
  kind: 'notice';
  /** The frame's `code`; null for client-side notices. */
  code: string | null;
  text: string;
  tone: 'info' | 'error';
  action: FrameAction | null;
}

export type Item = UserItem | AssistantItem | ThinkingItem | ToolItem | NoticeItem;

export interface ChatState {
  sessionId: string | null;
  sessionStatus: SessionStatus | null;
  /** `reason` of the latest `session` frame (e.g. `resume`, `restart`, `idle_timeout`). */
  sessionReason: string | null;
  model: string | null;
  /** Highest `seq` applied: the `after_seq` of the next reattach. */
  lastSeq: number;
  /** The conversation as the server ordered it. */
  items: Item[];
  /** Local echoes not yet confirmed; always shown after `items`. */
  pending: UserItem[];
  /** A turn is in flight: between `user_message` and `result`/`error`. */
  turnActive: boolean;
  /**
   * Latest error or notice text since the last turn boundary, shown when the
   * session fails or ends (the `session` frame itself carries no reason).
   */
  statusMessage: string | null;
  /** The `session_expiring` warning, until the process is replaced or the session ends. */
  expiring: string | null;
  /**
   * The server's `server_shutting_down` message, shown as a banner until the
   * session is `ready` again on a later connection (or is over for good).
   */
  shutdown: string | null;
  /** A connection opened after `shutdown` was set: the next `ready` clears it. */
  shutdownReconnected: boolean;
  /** Bumped whenever a field outside `items`/`pending` changes. */
  rev: number;
  nextLocal: number;
}

export type Outcome = 'applied' | 'duplicate' | 'gap' | 'ignored';

export function createState(sessionId: string | null = null): ChatState {
  return {
    sessionId,
    sessionStatus: null,
    sessionReason: null,
    model: null,
    lastSeq: 0,
    items: [],
    pending: [],
    turnActive: false,
    statusMessage: null,
    expiring: null,
    shutdown: null,
    shutdownReconnected: false,
    rev: 0,
    nextLocal: 0,
  };
}

/** Whether `text` may be sent at all: whitespace-only messages never are. */
export function isSendable(text: string): boolean {
  return text.trim().length > 0;
}

/**
 * Applies one server frame. A stream frame whose `seq` was already applied is
 * a `duplicate` (replays overlap on reconnect) and changes nothing. A frame
 * that skips a `seq` is a `gap` and is not applied, so the caller can
 * reattach from `lastSeq`; history pages may legitimately skip (`allowGap`).
 */
export function applyFrame(
  state: ChatState,
  frame: ServerFrame,
  opts: { allowGap?: boolean } = {},
): Outcome {
  if (!isStreamFrame(frame)) {
    switch (frame.type) {
      case 'error':
        applyConnectionError(state, frame.code, frame.message);
        return 'applied';
      case 'server_shutting_down':
        state.shutdown = typeof frame.message === 'string' && frame.message ? frame.message : SHUTDOWN_TEXT;
        state.shutdownReconnected = false;
        state.rev++;
        return 'applied';
      default:
        return 'ignored';
    }
  }
  if (frame.seq <= state.lastSeq) return 'duplicate';
  if (!opts.allowGap && state.lastSeq > 0 && frame.seq > state.lastSeq + 1) return 'gap';
  state.lastSeq = frame.seq;
  state.rev++;
  applyStreamFrame(state, frame);
  return 'applied';
}

function applyStreamFrame(state: ChatState, frame: StreamFrame): void {
  switch (frame.type) {
    case 'session':
      applySession(state, frame.session_id, frame.status, frame.reason ?? null);
      if (frame.model) state.model = frame.model;
      return;
    case 'user_message': {
      closeStreaming(state);
      state.statusMessage = null;
      const idx =
        frame.client_id == null ? -1 : state.pending.findIndex((p) => p.clientId === frame.client_id);
      if (idx >= 0) {
        const [mine] = state.pending.splice(idx, 1) as [UserItem];
        mine.text = frame.text;
        mine.delivery = 'delivered';
        mine.failure = null;
        mine.rev++;
        state.items.push(mine);
      } else {
        state.items.push({
          kind: 'user',
          id: `s${frame.seq}`,
          rev: 0,
          text: frame.text,
          clientId: frame.client_id ?? null,
          delivery: 'delivered',
          written: true,
          failure: null,
        });
      }
      state.turnActive = true;
      // The server now holds a turn: anything else already sent waits behind it.
      for (const item of state.pending) {
        if (item.delivery === 'sending') {
          item.delivery = 'queued';
          item.rev++;
        }
      }
      return;
    }
    case 'delta':
      appendStreamed(state, 'assistant', frame.text, frame.seq);
      return;
    case 'thinking':
      appendStreamed(state, 'thinking', frame.text, frame.seq);
      return;
    case 'tool_use':
      closeStreaming(state);
      state.turnActive = true;
      state.items.push({
        kind: 'tool',
        id: `s${frame.seq}`,
        rev: 0,
        toolUseId: frame.tool_use_id,
        name: frame.name,
        input: frame.input,
        status: 'executing',
        durationMs: null,
        content: null,
      });
      return;
    case 'tool_result': {
      let card = findTool(state, frame.tool_use_id);
      if (!card) {
        // The history may start after the tool_use; still show the outcome.
        card = {
          kind: 'tool',
          id: `s${frame.seq}`,
          rev: 0,
          toolUseId: frame.tool_use_id,
          name: 'Tool',
          input: null,
          status: 'executing',
          durationMs: null,
          content: null,
        };
        state.items.push(card);
      }
      card.status = frame.status;
      card.durationMs = frame.duration_ms;
      card.content = frame.content;
      card.rev++;
      return;
    }
    case 'result': {
      closeStreaming(state);
      const target = turnTail(state, frame.seq);
      target.costUsd = frame.cost_usd;
      target.interrupted = frame.interrupted === true;
      target.rev++;
      state.turnActive = false;
      state.statusMessage = null;
      return;
    }
    case 'error': {
      state.statusMessage = frame.message;
      const action = frame.action ?? null;
      if (state.turnActive) {
        closeStreaming(state);
        const target = turnTail(state, frame.seq);
        target.error = frame.message;
        target.errorAction = action;
        target.rev++;
        state.turnActive = false;
      } else {
        if (NOT_SENT_CODES.has(frame.code)) {
          // The message that met the open circuit never became a turn: say so on it.
          const refused = state.pending.find((p) => p.written && p.delivery !== 'failed');
          if (refused) fail(refused, null);
        }
        pushNotice(state, `s${frame.seq}`, frame.message, 'error', frame.code, action);
      }
      return;
    }
    case 'notice':
      state.statusMessage = frame.message;
      if (frame.code === 'session_expiring') state.expiring = frame.message;
      pushNotice(state, `s${frame.seq}`, frame.message, 'info', frame.code, frame.action ?? null);
      return;
  }
}

/** Shown when `server_shutting_down` comes without a message. */
export const SHUTDOWN_TEXT = 'The server is restarting. This page reconnects by itself.';

/**
 * Error codes that mean the user's message was refused before it became a
 * turn: the circuit is open, or the monthly budget is used up.
 */
const NOT_SENT_CODES = new Set(['model_unavailable', 'budget_exceeded']);

function applySession(state: ChatState, id: string, status: SessionStatus, reason: string | null): void {
  state.sessionId = id;
  state.sessionStatus = status;
  state.sessionReason = reason;
  switch (status) {
    case 'preparing':
      // A new process: the old one's duration warning no longer applies.
      state.expiring = null;
      state.statusMessage = null;
      return;
    case 'ready':
      state.statusMessage = null;
      if (state.shutdown !== null && state.shutdownReconnected) state.shutdown = null;
      return;
    case 'idle':
    case 'failed':
      // Resumable: the next message starts a new process. What was written but
      // not echoed died with the old one; what is still unwritten goes then.
      stopTurn(state);
      for (const item of state.pending) {
        if (item.written && item.delivery !== 'failed') {
          fail(item, 'The session stopped before it arrived. Send it again to continue.');
        }
      }
      return;
    case 'ended':
      stopTurn(state);
      state.expiring = null;
      // Nothing will come back to reconnect to.
      state.shutdown = null;
      for (const item of state.pending) {
        if (item.delivery !== 'failed') fail(item, 'This session is no longer available.');
      }
      return;
  }
}

function stopTurn(state: ChatState): void {
  closeStreaming(state);
  state.turnActive = false;
}

/**
 * A socket to the session opened. Called before any of its frames are
 * applied, so a `ready` replayed from history cannot clear the shutdown banner.
 */
export function connectionOpened(state: ChatState): void {
  if (state.shutdown !== null && !state.shutdownReconnected) {
    state.shutdownReconnected = true;
    state.rev++;
  }
}

/**
 * A rejected frame (no `seq`). Only `send` frames can be too large or empty,
 * so those codes mark the newest message still waiting as not sent. The
 * gateway refuses a `send` over the monthly budget the same way: that marks
 * the newest message too (an older one may be admitted and only waiting for
 * its turn), and the error notice says why.
 */
function applyConnectionError(state: ChatState, code: string, message: string): void {
  if (code === 'budget_exceeded') {
    const refused = [...state.pending].reverse().find((p) => p.written && p.delivery !== 'failed');
    if (refused) fail(refused, null);
  } else if (code === 'frame_too_large' || code === 'empty_message') {
    const waiting = [...state.pending].reverse().find((p) => p.written && p.delivery !== 'failed');
    if (waiting) {
      fail(waiting, message);
      return;
    }
  }
  state.nextLocal++;
  pushNotice(state, `e${state.nextLocal}`, message, 'error', code, null);
}

/** Adds the local echo of a message the user just sent. */
export function addLocalMessage(
  state: ChatState,
  text: string,
  clientId: string,
  socketOpen: boolean,
): UserItem {
  state.nextLocal++;
  const item: UserItem = {
    kind: 'user',
    id: `c${state.nextLocal}`,
    rev: 0,
    text,
    clientId,
    delivery: socketOpen && !state.turnActive && state.pending.length === 0 ? 'sending' : 'queued',
    written: false,
    failure: null,
  };
  state.pending.push(item);
  return item;
}

/** Local messages still to hand to the socket, oldest first. */
export function unwritten(state: ChatState): UserItem[] {
  return state.pending.filter((p) => !p.written && p.delivery !== 'failed');
}

export function markFailed(item: UserItem, reason: string): void {
  fail(item, reason);
}

/**
 * Forgets the conversation (not the local messages still pending) before the
 * history is loaded again, e.g. after the server closed with `replay_gap`.
 */
export function resetConversation(state: ChatState): void {
  state.items = [];
  state.lastSeq = 0;
  state.turnActive = false;
  state.rev++;
}

/** Applies a history page from `GET /sessions/{id}/messages`. */
export function applyHistory(state: ChatState, messages: StreamFrame[], lastSeq: number): void {
  for (const frame of messages) applyFrame(state, frame, { allowGap: true });
  if (lastSeq > state.lastSeq) state.lastSeq = lastSeq;
  state.rev++;
}

function appendStreamed(
  state: ChatState,
  kind: 'assistant' | 'thinking',
  text: string,
  seq: number,
): void {
  state.turnActive = true;
  const last = state.items.at(-1);
  if (last && last.kind === kind && last.streaming) {
    last.text += text;
    last.rev++;
    return;
  }
  closeStreaming(state);
  if (kind === 'assistant') {
    state.items.push(newAssistant(`s${seq}`, text, true));
  } else {
    state.items.push({ kind: 'thinking', id: `s${seq}`, rev: 0, text, streaming: true });
  }
}

/** The assistant bubble that ends the current turn, created if the turn has none at its end. */
function turnTail(state: ChatState, seq: number): AssistantItem {
  const last = state.items.at(-1);
  if (last && last.kind === 'assistant') return last;
  const item = newAssistant(`s${seq}`, '', false);
  state.items.push(item);
  return item;
}

function newAssistant(id: string, text: string, streaming: boolean): AssistantItem {
  return {
    kind: 'assistant',
    id,
    rev: 0,
    text,
    streaming,
    costUsd: null,
    interrupted: false,
    error: null,
    errorAction: null,
  };
}

/** Ends every streaming item of the current turn (a notice may sit after one). */
function closeStreaming(state: ChatState): void {
  for (let i = state.items.length - 1; i >= 0; i--) {
    const item = state.items[i];
    if (!item || item.kind === 'user') return;
    if ((item.kind === 'assistant' || item.kind === 'thinking') && item.streaming) {
      item.streaming = false;
      item.rev++;
    }
  }
}

function findTool(state: ChatState, toolUseId: string): ToolItem | undefined {
  for (let i = state.items.length - 1; i >= 0; i--) {
    const item = state.items[i];
    if (item && item.kind === 'tool' && item.toolUseId === toolUseId) return item;
  }
  return undefined;
}

function pushNotice(
  state: ChatState,
  id: string,
  text: string,
  tone: 'info' | 'error',
  code: string | null,
  action: FrameAction | null,
): void {
  state.items.push({ kind: 'notice', id, rev: 0, code, text, tone, action });
}

/** `reason` null: the bubble says only "Not sent" (an error notice next to it says why). */
function fail(item: UserItem, reason: string | null): void {
  item.delivery = 'failed';
  item.failure = reason;
  item.rev++;
}
