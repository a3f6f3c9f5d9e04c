// The chat page: owns the socket, the reconnect policy and the page's DOM
// outside the message list. Frames go into the reducer at once; the DOM is
// brought up to date at most once per animation frame.

import { isPlainClick, sessionFromHref } from './action';
import * as api from './api';
import { ApiError } from './api';
import { accountEffect } from './budget';
import { keyAction } from './keys';
import { createMarkdownRenderer } from './markdown';
import { MessageList, renderBanner } from './render';
import { Sidebar, type SidebarElements } from './sessions';
import {
  addLocalMessage,
  applyFrame,
  applyHistory,
  connectionOpened,
  createState,
  isSendable,
  resetConversation,
  unwritten,
} from './state';
import type { ChatState } from './state';
import { composerView, type Connection, statusView } from './status';
import type { ErrorCode, ServerFrame } from './protocol';
import { closeAction, reconnectDelay, SessionSocket, wsUrl } from './ws';

export interface ChatOptions {
  /** The user's credentials are gone: show the login page. */
  onSignedOut(): void;
  /** A live frame moved the user's spend (`budget`) or changed their role (`permissions`). */
  onAccountChange?(what: 'budget' | 'permissions'): void;
}

interface Elements {
  status: HTMLElement;
  statusText: HTMLElement;
  progress: HTMLElement;
  elapsed: HTMLElement;
  model: HTMLElement;
  /** The bound tenant's id, in the header; hidden for a session without one. */
  tenant: HTMLElement;
  messages: HTMLElement;
  input: HTMLTextAreaElement;
  form: HTMLFormElement;
  interrupt: HTMLButtonElement;
  inputError: HTMLElement;
  send: HTMLButtonElement;
  /** Offered in the composer once the session has ended. */
  startNew: HTMLButtonElement;
  /** The `server_shutting_down` banner. */
  banner: HTMLElement;
  sidebar: SidebarElements;
}

const TOO_LONG = 'That message is too long. Please shorten it and try again.';

export class Chat {
  private state: ChatState = createState();
  private socket: SessionSocket | null = null;
  private connection: Connection = 'connecting';
  /** Why the page gave up reconnecting, shown instead of the session status. */
  private connectionMessage: string | null = null;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private tick: ReturnType<typeof setInterval> | null = null;
  private preparingSince: number | null = null;
  /** `lastSeq` at which a gap already forced a reattach: a second gap there is accepted. */
  private gapRetriedAt = -1;
  private modelLabel = '';
  private maxFrameBytes = 65_536;
  private renderQueued = false;
  /** Bumped by every (re)start so stale async work from an old session does nothing. */
  private generation = 0;
  /** The tenant a new session was asked for (`/ws?tenant=`); null for none or a reopened session. */
  private tenant: string | null = null;
  private readonly list: MessageList;
  private readonly sidebar: Sidebar;

  constructor(
    private readonly el: Elements,
    private readonly opts: ChatOptions,
  ) {
    this.list = new MessageList(el.messages, createMarkdownRenderer(window));
    this.sidebar = new Sidebar(el.sidebar, {
      load: api.sessions,
      loadTenants: api.chatTenants,
      open: (id) => this.open(id),
      create: (tenant) => void this.start(null, tenant),
      changed: () => this.scheduleRender(),
    });
    el.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.submit();
    });
    el.input.addEventListener('keydown', (ev) => {
      if (keyAction(ev) === 'send') {
        ev.preventDefault();
        this.submit();
      }
    });
    el.input.addEventListener('input', () => this.showInputError(null));
    // Interrupt works wherever the focus is.
    document.addEventListener('keydown', (ev) => {
      if (!this.isActive() || keyAction(ev) !== 'interrupt') return;
      ev.preventDefault();
      this.interrupt();
    });
    el.interrupt.addEventListener('click', () => this.interrupt());
    el.startNew.addEventListener('click', () => void this.start(null, this.sidebar.selectedTenant()));
    // A notice's "[Continue in new session]" opens that session in place.
    el.messages.addEventListener('click', (ev) => {
      const link = (ev.target as Element | null)?.closest?.<HTMLAnchorElement>('a.notice-action');
      if (!link || !isPlainClick(ev)) return;
      const id = sessionFromHref(link.getAttribute('href') ?? '', location);
      if (id === null) return;
      ev.preventDefault();
      void this.start(id);
    });
    // Another tab may have started, paused or ended sessions meanwhile.
    window.addEventListener('focus', () => this.refreshSessions());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.refreshSessions();
    });
  }

  /**
   * Opens `sessionId` (history first, then the live stream) or a new
   * session, bound to `tenant` unless null; a new session's `firstMessage`
   * is sent as soon as its socket opens (the History page's "Open in chat").
   */
  async start(sessionId: string | null, tenant: string | null = null, firstMessage: string | null = null): Promise<void> {
    this.teardown();
    const generation = this.generation;
    this.state = createState(sessionId);
    this.tenant = sessionId === null ? tenant : null;
    // Queued like a message typed while connecting: `onOpen` flushes it.
    if (sessionId === null && firstMessage !== null && isSendable(firstMessage)) {
      addLocalMessage(this.state, firstMessage.trim(), newClientId(), false);
    }
    this.connection = 'connecting';
    this.connectionMessage = null;
    this.setUrl(sessionId);
    this.sidebar.setCurrent(sessionId);
    void this.sidebar.refresh();
    this.render();
    this.el.input.focus();

    const cfg = await api.config().catch(() => null);
    if (generation !== this.generation) return;
    if (cfg) {
      this.modelLabel = cfg.model_label;
      this.maxFrameBytes = cfg.max_frame_bytes;
    }
    if (sessionId !== null && !(await this.loadHistory(generation))) return;
    if (this.state.sessionStatus === 'ended') {
      // Over for good: there is nothing to attach to.
      this.connection = 'closed';
      this.scheduleRender();
      return;
    }
    this.connect();
  }

  /** Closes the socket, cancels timers and forgets the session list: on sign-out. */
  stop(): void {
    this.teardown();
    this.sidebar.clear();
  }

  /** Opens a listed session; the one already live is left as it is. */
  private open(sessionId: string): void {
    if (sessionId === this.state.sessionId && this.socket?.isOpen) return;
    void this.start(sessionId);
  }

  private refreshSessions(): void {
    if (this.isActive()) void this.sidebar.refresh();
  }

  /** Closes the socket and cancels timers of the session shown. */
  private teardown(): void {
    this.generation++;
    this.socket?.close();
    this.socket = null;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.attempt = 0;
    this.gapRetriedAt = -1;
    if (this.tick !== null) clearInterval(this.tick);
    this.tick = null;
    this.list.clear();
  }

  private isActive(): boolean {
    return !this.el.messages.closest('[hidden]');
  }

  /** Loads the persisted conversation; false when the page should not connect. */
  private async loadHistory(generation: number): Promise<boolean> {
    const id = this.state.sessionId;
    if (id === null) return true;
    try {
      const page = await api.history(id);
      if (generation !== this.generation) return false;
      applyHistory(this.state, page.messages, page.last_seq);
      this.scheduleRender();
      return true;
    } catch (err) {
      if (generation !== this.generation) return false;
      if (err instanceof ApiError && err.status === 401) {
        this.stop();
        this.opts.onSignedOut();
        return false;
      }
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
        // A stale or foreign link: say so and start over with a new session.
        this.state = createState(null);
        this.tenant = null;
        this.setUrl(null);
        this.sidebar.setCurrent(null);
        this.connectionMessage = null;
        // The REST error's code is the catalogue's, as a connection error's is.
        applyFrame(this.state, { type: 'error', code: err.code as ErrorCode, message: err.message });
        this.scheduleRender();
        return true;
      }
      // The stream replays from after_seq=0 as well; history is an optimisation.
      return true;
    }
  }

  private connect(): void {
    const generation = this.generation;
    let opened = false;
    const url = wsUrl(location, this.state.sessionId, this.state.lastSeq, this.tenant);
    this.socket = new SessionSocket(url, {
      onOpen: () => {
        opened = true;
        this.attempt = 0;
        this.connection = 'open';
        this.connectionMessage = null;
        connectionOpened(this.state);
        // A reattach replays only frames after `after_seq`, so the history may
        // hold no `session` frame; the gateway accepting it means the session is live.
        if (this.state.sessionId !== null && this.state.sessionStatus === null) this.state.sessionStatus = 'ready';
        this.flushPending();
        this.scheduleRender();
      },
      onFrame: (frame) => this.onFrame(frame),
      onClose: (code) => {
        if (generation !== this.generation) return;
        this.socket = null;
        void this.onClose(code, opened, generation);
      },
    });
  }

  private onFrame(frame: ServerFrame): void {
    const hadSession = this.state.sessionId !== null;
    const before = `${this.state.sessionId}/${this.state.sessionStatus}`;
    let outcome = applyFrame(this.state, frame);
    if (outcome === 'gap') {
      if (this.gapRetriedAt === this.state.lastSeq) {
        // Reattaching did not fill it: the server has nothing better, show what there is.
        outcome = applyFrame(this.state, frame, { allowGap: true });
      } else {
        this.gapRetriedAt = this.state.lastSeq;
        this.socket?.close();
        this.socket = null;
        this.connection = 'reconnecting';
        this.connect();
        this.scheduleRender();
        return;
      }
    }
    if (!hadSession && this.state.sessionId !== null) this.setUrl(this.state.sessionId);
    if (outcome !== 'applied') return;
    this.scheduleRender();
    const effect = accountEffect(frame);
    if (effect !== null) this.opts.onAccountChange?.(effect);
    // The list shows status and message count: refresh when either moved.
    if (`${this.state.sessionId}/${this.state.sessionStatus}` !== before || frame.type === 'result') {
      this.sidebar.setCurrent(this.state.sessionId);
      void this.sidebar.refresh();
    }
  }

  private async onClose(code: number, opened: boolean, generation: number): Promise<void> {
    const action = closeAction(code, this.state);
    if (action === 'stop' || action === 'park') {
      // A paused session reconnects when the user sends (see `submit`).
      this.connection = 'closed';
      this.scheduleRender();
      return;
    }
    this.connection = 'reconnecting';
    this.scheduleRender();
    if (action === 'reload') {
      resetConversation(this.state);
      this.list.clear();
      if (!(await this.loadHistory(generation))) return;
      if (generation === this.generation) this.connect();
      return;
    }
    // The browser hides why an upgrade failed: ask the API whether we are still signed in.
    try {
      await api.me();
      if (!opened && this.state.sessionId !== null) await api.history(this.state.sessionId);
      if (!opened && this.state.sessionId === null && this.tenant !== null) await this.checkTenant(this.tenant);
    } catch (err) {
      if (generation !== this.generation) return;
      if (err instanceof ApiError && err.status === 401) {
        this.stop();
        this.opts.onSignedOut();
        return;
      }
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
        this.connection = 'closed';
        this.connectionMessage = err.message;
        this.scheduleRender();
        return;
      }
    }
    if (generation !== this.generation) return;
    const delay = reconnectDelay(this.attempt++);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (generation === this.generation) this.connect();
    }, delay);
  }

  /**
   * A new session's tenant the gateway refused (403 before the upgrade):
   * one the user may no longer chat about. Throws the refusal for `onClose`.
   */
  private async checkTenant(tenant: string): Promise<void> {
    const list = await api.chatTenants();
    if (!list.tenants.some((t) => t.tenant_id === tenant)) {
      throw new ApiError(403, 'forbidden', `You may not chat about tenant '${tenant}'.`);
    }
  }

  /** The tenant the session shown is bound to: the one asked for, or the listed session's. */
  private boundTenant(): string | null {
    const id = this.state.sessionId;
    return this.tenant ?? (id === null ? null : this.sidebar.tenantOf(id));
  }

  private submit(): void {
    const text = this.el.input.value;
    if (!isSendable(text)) return;
    if (!composerView(this.state.sessionStatus).enabled) {
      this.showInputError('This session has ended. You can start a new session.');
      return;
    }
    const trimmed = text.trim();
    const frameBytes = new TextEncoder().encode(JSON.stringify({ type: 'send', text: trimmed, client_id: 'c-00000000000000000000000000000000' })).length;
    if (frameBytes > this.maxFrameBytes) {
      this.showInputError(TOO_LONG);
      return;
    }
    addLocalMessage(this.state, trimmed, newClientId(), this.socket?.isOpen === true);
    this.el.input.value = '';
    this.flushPending();
    this.resumeIfParked();
    this.scheduleRender();
  }

  /**
   * A paused session's socket is not reopened by itself; the user's next
   * message reattaches, the server resumes the agent, and the open socket
   * then delivers the message.
   */
  private resumeIfParked(): void {
    if (this.socket !== null || this.retryTimer !== null || this.connection !== 'closed') return;
    this.connection = 'connecting';
    this.connectionMessage = null;
    this.connect();
  }

  /** Hands every unsent local message to the socket, oldest first. */
  private flushPending(): void {
    for (const item of unwritten(this.state)) {
      const sent = this.socket?.send({ type: 'send', text: item.text, client_id: item.clientId ?? undefined });
      if (!sent) return;
      item.written = true;
    }
  }

  private interrupt(): void {
    if (!this.state.turnActive) return;
    this.socket?.send({ type: 'interrupt' });
  }

  private showInputError(message: string | null): void {
    this.el.inputError.hidden = message === null;
    this.el.inputError.textContent = message ?? '';
  }

  private setUrl(sessionId: string | null): void {
    const url = sessionId === null ? location.pathname : `${location.pathname}?session=${encodeURIComponent(sessionId)}`;
    if (url !== `${location.pathname}${location.search}`) history.replaceState(null, '', url);
  }

  private scheduleRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  private render(): void {
    const box = this.el.messages;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    this.list.render(this.state);
    if (atBottom) box.scrollTop = box.scrollHeight;
    this.renderStatus();
    renderBanner(this.el.banner, this.state.shutdown);
    this.el.model.textContent = this.state.model ?? this.modelLabel;
    const tenant = this.boundTenant();
    this.el.tenant.hidden = tenant === null;
    this.el.tenant.textContent = tenant === null ? '' : `Tenant: ${tenant}`;
    this.el.interrupt.hidden = !this.state.turnActive;
    const composer = composerView(this.state.sessionStatus);
    this.el.input.disabled = !composer.enabled;
    this.el.send.disabled = !composer.enabled;
    this.el.input.placeholder = composer.enabled ? 'Message csp' : 'This session has ended';
    this.el.startNew.hidden = !composer.startNew;
  }

  private renderStatus(): void {
    const view = statusView({
      connection: this.connection,
      session: this.state.sessionStatus,
      reason: this.state.sessionReason,
      message: this.state.statusMessage,
      connectionMessage: this.connection === 'closed' ? this.connectionMessage : null,
      expiring: this.state.expiring,
    });
    this.el.statusText.textContent = view.text;
    this.el.status.dataset.tone = view.tone;
    this.el.progress.hidden = !view.progress;
    if (view.progress) {
      this.preparingSince ??= Date.now();
      this.el.elapsed.textContent = `${Math.floor((Date.now() - this.preparingSince) / 1000)}s`;
      this.tick ??= setInterval(() => this.renderStatus(), 500);
    } else {
      this.preparingSince = null;
      if (this.tick !== null) clearInterval(this.tick);
      this.tick = null;
    }
  }
}

/** A client_id unique across tabs; crypto.randomUUID needs a secure context, this does not. */
function newClientId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `c-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export function chatElements(root: HTMLElement): Elements {
  const get = <T extends HTMLElement>(testid: string): T => {
    const found = root.querySelector<T>(`[data-testid="${testid}"]`);
    if (!found) throw new Error(`chat page: missing [data-testid="${testid}"]`);
    return found;
  };
  const status = get('status-line');
  return {
    status,
    statusText: get('status-text'),
    progress: get('status-progress'),
    elapsed: get('status-elapsed'),
    model: get('model-label'),
    tenant: get('session-tenant'),
    messages: get('message-list'),
    input: get<HTMLTextAreaElement>('chat-input'),
    form: get<HTMLFormElement>('composer'),
    interrupt: get<HTMLButtonElement>('interrupt-button'),
    inputError: get('input-error'),
    send: get<HTMLButtonElement>('send-button'),
    startNew: get<HTMLButtonElement>('start-new-session'),
    banner: get('banner'),
    sidebar: {
      panel: get('session-panel'),
      list: get('session-list'),
      error: get('session-list-error'),
      toggle: get<HTMLButtonElement>('sessions-toggle'),
      newSession: get<HTMLButtonElement>('new-session'),
      tenant: {
        picker: get('new-session-tenant-picker'),
        select: get<HTMLSelectElement>('new-session-tenant'),
      },
    },
  };
}
