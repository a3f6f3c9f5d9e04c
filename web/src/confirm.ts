// The typed confirmation of the operations pages' dangerous actions (pause,
// clear the queue, reload configurations, restart a worker): the action goes
// only once the admin typed YES, exactly. `TypedConfirm` drives one dialog:
// its title, text and button are the action's, its `data-` attributes name
// the action while it is open (scripts and the e2e read them), its button is
// enabled only while the field holds YES (checked again when Enter is
// pressed), Escape or Cancel closes it.

/** The word the dialogs ask for, exactly (not "yes", not " YES"). */
export const CONFIRM_WORD = 'YES';

/** Whether what was typed lets the action go: exactly YES. */
export function isConfirmed(typed: string): boolean {
  return typed === CONFIRM_WORD;
}

export interface ConfirmElements {
  dialog: HTMLElement;
  title: HTMLElement;
  body: HTMLElement;
  input: HTMLInputElement;
  confirm: HTMLButtonElement;
  cancel: HTMLButtonElement;
}

/** What the dialog says for one action. */
export interface ConfirmSpec {
  title: string;
  body: string;
  button: string;
  /** Set on the dialog's dataset while it is open for this action, removed when it closes. */
  data?: Readonly<Record<string, string>>;
}

export class TypedConfirm {
  private action: (() => Promise<void>) | null = null;
  private busy = false;
  /** Counts the openings, so an action that ends closes only its own. */
  private opened = 0;
  /** The dataset keys the open action set. */
  private dataKeys: string[] = [];

  constructor(private readonly el: ConfirmElements) {
    el.input.addEventListener('input', () => this.gate());
    el.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        void this.go();
      } else if (ev.key === 'Escape') {
        this.close();
      }
    });
    el.confirm.addEventListener('click', () => void this.go());
    el.cancel.addEventListener('click', () => this.close());
    this.close();
  }

  /** Whether the dialog is open. */
  get isOpen(): boolean {
    return this.action !== null;
  }

  /**
   * Opens the dialog for `spec`; `action` runs once YES was typed and
   * confirmed, and shows its own outcome (errors included); the dialog
   * closes when it ends.
   */
  ask(spec: ConfirmSpec, action: () => Promise<void>): void {
    this.clearData();
    this.opened++;
    this.action = action;
    this.el.title.textContent = spec.title;
    this.el.body.textContent = spec.body;
    this.el.confirm.textContent = spec.button;
    const data = Object.entries(spec.data ?? {});
    for (const [key, value] of data) this.el.dialog.dataset[key] = value;
    this.dataKeys = data.map(([key]) => key);
    this.el.input.value = '';
    this.el.dialog.hidden = false;
    this.gate();
    this.el.input.focus();
  }

  close(): void {
    this.action = null;
    this.el.dialog.hidden = true;
    this.el.input.value = '';
    this.clearData();
    this.gate();
  }

  private clearData(): void {
    for (const key of this.dataKeys) delete this.el.dialog.dataset[key];
    this.dataKeys = [];
  }

  private gate(): void {
    this.el.confirm.disabled = this.busy || this.action === null || !isConfirmed(this.el.input.value);
  }

  private async go(): Promise<void> {
    const action = this.action;
    if (action === null || this.busy || !isConfirmed(this.el.input.value)) return;
    const opened = this.opened;
    this.busy = true;
    this.gate();
    try {
      await action();
    } finally {
      this.busy = false;
      // Closed and opened for another action meanwhile (a sign-out, then a
      // new click): that one stays open.
      if (opened === this.opened) this.close();
      else this.gate();
    }
  }
}
