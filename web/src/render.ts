// The message list as DOM. Each item owns one element, created once and
// patched when the item's `rev` changes, so a streaming bubble is the only
// thing that moves while tokens arrive. Only model text goes through the
// markdown renderer; everything else (user text, tool input and output,
// notices) is set as text and can never become markup; the one link a notice
// may carry is built as an element with a checked same-origin href.

import { fillWithAction } from './action';
import { formatCost, formatDuration, formatInput, summarize, truncationNote } from './format';
import type { AssistantItem, ChatState, Item, NoticeItem, ThinkingItem, ToolItem, UserItem } from './state';

interface Mounted {
  el: HTMLElement;
  rev: number;
  /** Markdown source last rendered into the bubble, to skip identical re-parses. */
  text: string | null;
}

/** Elements inside which the cursor must not go (void or replaced). */
const NO_CURSOR_INSIDE = new Set(['BR', 'HR', 'IMG', 'INPUT']);

export class MessageList {
  private readonly mounted = new Map<string, Mounted>();

  constructor(
    private readonly root: HTMLElement,
    private readonly markdown: (source: string) => string,
  ) {}

  /** Brings the DOM in line with `state`: the conversation, then pending local messages. */
  render(state: ChatState): void {
    const doc = this.root.ownerDocument;
    const wanted = [...state.items, ...state.pending];
    const keep = new Set<string>();
    let cursor: Element | null = this.root.firstElementChild;
    for (const item of wanted) {
      keep.add(item.id);
      let m = this.mounted.get(item.id);
      if (!m) {
        m = { el: create(doc, item), rev: -1, text: null };
        this.mounted.set(item.id, m);
      }
      if (m.rev !== item.rev) {
        this.update(m, item);
        m.rev = item.rev;
      }
      if (m.el === cursor) {
        cursor = cursor.nextElementSibling;
      } else {
        this.root.insertBefore(m.el, cursor);
      }
    }
    for (const [id, m] of this.mounted) {
      if (!keep.has(id)) {
        m.el.remove();
        this.mounted.delete(id);
      }
    }
  }

  /** Drops every element, e.g. for a new session. */
  clear(): void {
    for (const m of this.mounted.values()) m.el.remove();
    this.mounted.clear();
  }

  private update(m: Mounted, item: Item): void {
    switch (item.kind) {
      case 'user':
        return updateUser(m.el, item);
      case 'assistant':
        return this.updateAssistant(m, item);
      case 'thinking':
        return updateThinking(m.el, item);
      case 'tool':
        return updateTool(m.el, item);
      case 'notice':
        return updateNotice(m.el, item);
    }
  }

  private updateAssistant(m: Mounted, item: AssistantItem): void {
    const el = m.el;
    const body = part(el, '.md');
    if (m.text !== item.text) {
      body.innerHTML = this.markdown(item.text);
      m.text = item.text;
    }
    el.dataset.streaming = String(item.streaming);
    el.setAttribute('aria-busy', String(item.streaming));
    el.querySelector('.cursor')?.remove();
    if (item.streaming) {
      const caret = el.ownerDocument.createElement('span');
      caret.className = 'cursor';
      caret.dataset.testid = 'streaming-cursor';
      caret.setAttribute('aria-hidden', 'true');
      const host = cursorHost(body);
      // A code block's text ends with a newline that would put the cursor on a line of its own.
      const tail = host.lastChild;
      if (host.tagName === 'CODE' && tail?.nodeType === 3 && tail.textContent?.endsWith('\n')) {
        tail.textContent = tail.textContent.slice(0, -1);
      }
      host.appendChild(caret);
    }
    body.hidden = item.text.length === 0 && !item.streaming;
    setOptional(el, '.interrupted', item.interrupted ? '[Response interrupted]' : null);
    const turnError = part(el, '.turn-error');
    turnError.hidden = item.error === null;
    fillWithAction(turnError, item.error ?? '', item.errorAction);
    setOptional(el, '.cost', item.costUsd === null ? null : formatCost(item.costUsd));
  }
}

function create(doc: Document, item: Item): HTMLElement {
  switch (item.kind) {
    case 'user':
      return html(doc, 'div', { class: 'msg user', 'data-testid': 'user-message' }, [
        html(doc, 'div', { class: 'bubble' }, [html(doc, 'div', { class: 'text' })]),
        html(doc, 'div', { class: 'delivery', 'data-testid': 'delivery' }),
      ]);
    case 'assistant':
      return html(doc, 'div', { class: 'msg assistant', 'data-testid': 'assistant-message' }, [
        html(doc, 'div', { class: 'bubble' }, [
          html(doc, 'div', { class: 'md', 'data-testid': 'assistant-text' }),
          html(doc, 'p', { class: 'interrupted', 'data-testid': 'interrupted-marker', hidden: '' }),
          html(doc, 'p', { class: 'turn-error error', 'data-testid': 'turn-error', role: 'alert', hidden: '' }),
          html(doc, 'div', { class: 'cost', 'data-testid': 'cost-footer', title: 'Cost of this turn', hidden: '' }),
        ]),
      ]);
    case 'thinking':
      return html(doc, 'details', { class: 'thinking', 'data-testid': 'thinking' }, [
        html(doc, 'summary'),
        html(doc, 'div', { class: 'thinking-text' }),
      ]);
    case 'tool':
      return createTool(doc, item);
    case 'notice':
      // The tone never changes, so it picks the element's class once: `.notice` or `.error`.
      return item.tone === 'error'
        ? html(doc, 'div', { class: 'error', 'data-testid': 'error', role: 'alert' })
        : html(doc, 'div', { class: 'notice', 'data-testid': 'notice', role: 'status' });
  }
}

function createTool(doc: Document, item: ToolItem): HTMLElement {
  const bodyId = `tool-body-${item.id}`;
  const toggle = html(
    doc,
    'button',
    { type: 'button', class: 'tool-toggle', 'data-testid': 'tool-toggle', 'aria-expanded': 'false', 'aria-controls': bodyId },
    ['Show details'],
  );
  const body = html(doc, 'div', { class: 'tool-body', id: bodyId, hidden: '' }, [
    html(doc, 'div', { class: 'tool-label' }, ['Input']),
    html(doc, 'pre', { class: 'tool-input', 'data-testid': 'tool-input' }),
    html(doc, 'div', { class: 'tool-label tool-result-label', hidden: '' }, ['Result']),
    html(doc, 'pre', { class: 'tool-result', 'data-testid': 'tool-result', hidden: '' }),
  ]);
  toggle.addEventListener('click', () => {
    const card = toggle.closest<HTMLElement>('.tool-card');
    if (card) setExpanded(card, toggle.getAttribute('aria-expanded') !== 'true');
  });
  return html(doc, 'div', { class: 'tool-card', 'data-testid': 'tool-card' }, [
    html(doc, 'div', { class: 'tool-head' }, [
      html(doc, 'span', { class: 'tool-icon', 'aria-hidden': 'true' }),
      html(doc, 'span', { class: 'tool-name', 'data-testid': 'tool-name' }),
      html(doc, 'span', { class: 'tool-status', 'data-testid': 'tool-status' }),
      toggle,
    ]),
    html(doc, 'div', { class: 'tool-summary', 'data-testid': 'tool-summary', hidden: '' }),
    body,
  ]);
}

const DELIVERY_TEXT: Record<UserItem['delivery'], string> = {
  sending: 'Sending...',
  queued: 'Queued',
  failed: 'Not sent',
  delivered: '',
};

function updateUser(el: HTMLElement, item: UserItem): void {
  part(el, '.text').textContent = item.text;
  el.dataset.delivery = item.delivery;
  const note = item.delivery === 'failed' && item.failure ? `Not sent: ${item.failure}` : DELIVERY_TEXT[item.delivery];
  setOptional(el, '.delivery', note || null);
}

function updateThinking(el: HTMLElement, item: ThinkingItem): void {
  part(el, 'summary').textContent = item.streaming ? 'Thinking...' : 'Thinking';
  part(el, '.thinking-text').textContent = item.text;
}

function setExpanded(card: HTMLElement, open: boolean): void {
  const toggle = part(card, '.tool-toggle');
  toggle.setAttribute('aria-expanded', String(open));
  toggle.textContent = open ? 'Hide details' : 'Show details';
  part(card, '.tool-body').hidden = !open;
}

function updateTool(el: HTMLElement, item: ToolItem): void {
  el.dataset.toolUseId = item.toolUseId;
  part(el, '.tool-name').textContent = item.name;
  const summary = item.content === null ? '' : summarize(item.content);
  part(el, '.tool-status').textContent = toolStatusText(item.status, item.durationMs, summary);
  part(el, '.tool-input').textContent = formatInput(item.input);
  const hasResult = item.content !== null;
  const label = part(el, '.tool-result-label');
  label.hidden = !hasResult;
  label.textContent = item.status === 'denied' ? 'Reason' : 'Result';
  const result = part(el, '.tool-result');
  result.hidden = !hasResult;
  result.textContent = item.content ?? '';
  // A failure's first line is already in the status; its full text is in the details, open.
  // A denial's reason is the point of the card, so it stays in view under "Denied".
  // A cut output says so in view: its marker is at the end of up to 256 KiB of text.
  const note = item.status === 'complete' && item.content !== null ? truncationNote(item.content) : null;
  const line = toolSummary(item.status, summary);
  setOptional(el, '.tool-summary', note === null ? line : line ? `${line} · ${note}` : note);
  if (item.status === 'error') setExpanded(el, true);
  el.dataset.status = item.status;
}

/** The card's status line: the outcome, and for a failure its first line. */
function toolStatusText(status: ToolItem['status'], durationMs: number | null, summary: string): string {
  switch (status) {
    case 'executing':
      return 'Executing...';
    case 'complete':
      return `Complete (${formatDuration(durationMs ?? 0)})`;
    case 'denied':
      return 'Denied';
    case 'error':
      return `Error: ${summary || 'The tool failed without a reason.'}`;
  }
}

/** Shown when csp denies a call without saying why. */
export const DENIED_WITHOUT_REASON = 'This tool call was not allowed.';

/** The line under the card's head: a result's first line, or why the call was denied. */
function toolSummary(status: ToolItem['status'], summary: string): string | null {
  if (status === 'denied') return summary || DENIED_WITHOUT_REASON;
  return status === 'complete' && summary ? summary : null;
}

function updateNotice(el: HTMLElement, item: NoticeItem): void {
  fillWithAction(el, item.text, item.action);
  el.dataset.tone = item.tone;
  if (item.code !== null) el.dataset.code = item.code;
}

/**
 * The shutdown banner: a live region that stays in the page (so screen
 * readers announce the text when it appears) and is empty when there is none.
 */
export function renderBanner(el: HTMLElement, message: string | null): void {
  if ((el.textContent || null) === message) return;
  el.textContent = message ?? '';
  el.dataset.active = String(message !== null);
}

/** The innermost last element, so the cursor sits at the end of the text, not on a new line. */
function cursorHost(root: HTMLElement): Element {
  let host: Element = root;
  for (;;) {
    const last = host.lastElementChild;
    if (!last || NO_CURSOR_INSIDE.has(last.tagName) || lastMeaningfulChild(host) !== last) return host;
    host = last;
  }
}

function lastMeaningfulChild(el: Element): ChildNode | null {
  let node = el.lastChild;
  while (node && node.nodeType === 3 && !node.textContent?.trim()) node = node.previousSibling;
  return node;
}

function setOptional(el: HTMLElement, selector: string, text: string | null): void {
  const target = part(el, selector);
  target.hidden = text === null;
  target.textContent = text ?? '';
}

function part(el: HTMLElement, selector: string): HTMLElement {
  const found = el.querySelector<HTMLElement>(selector);
  if (!found) throw new Error(`render: missing ${selector}`);
  return found;
}

function html(
  doc: Document,
  tag: string,
  attrs: Record<string, string> = {},
  children: (Node | string)[] = [],
): HTMLElement {
  const el = doc.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  for (const child of children) el.append(child);
  return el;
}
