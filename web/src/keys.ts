// Keyboard shortcuts of the input bar (US-005).

export type KeyAction = 'send' | 'interrupt' | null;

/** The subset of KeyboardEvent the shortcuts depend on. */
export interface KeyLike {
  key: string;
  code?: string;
  shiftKey: boolean;
  ctrlKey: boolean;
  altKey: boolean;
  metaKey: boolean;
  isComposing?: boolean;
}

/**
 * Enter sends, Shift+Enter inserts a newline (the textarea's default),
 * Ctrl+Shift+X interrupts the turn in flight. Enter while an IME is composing
 * confirms the composition and must not send.
 */
export function keyAction(e: KeyLike): KeyAction {
  if (e.ctrlKey && e.shiftKey && !e.altKey && !e.metaKey && (e.code === 'KeyX' || e.key.toLowerCase() === 'x')) {
    return 'interrupt';
  }
  if (e.key === 'Enter' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !e.isComposing) {
    return 'send';
  }
  return null;
}
