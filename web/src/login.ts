// The sign-in form. The gateway answers with an HttpOnly cookie; on failure
// the form shows the gateway's own message ("Wrong username or password.").

import * as api from './api';
import { ApiError } from './api';
import type { User } from './protocol';

export interface LoginElements {
  form: HTMLFormElement;
  username: HTMLInputElement;
  password: HTMLInputElement;
  error: HTMLElement;
  submit: HTMLButtonElement;
}

export function loginElements(root: HTMLElement): LoginElements {
  const get = <T extends HTMLElement>(testid: string): T => {
    const found = root.querySelector<T>(`[data-testid="${testid}"]`);
    if (!found) throw new Error(`login page: missing [data-testid="${testid}"]`);
    return found;
  };
  return {
    form: get<HTMLFormElement>('login-form'),
    username: get<HTMLInputElement>('login-username'),
    password: get<HTMLInputElement>('login-password'),
    error: get('login-error'),
    submit: get<HTMLButtonElement>('login-submit'),
  };
}

/** Wires the form; `onSignedIn` runs after a successful login. */
export function setupLogin(el: LoginElements, onSignedIn: (user: User) => void): void {
  el.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void submit();
  });

  async function submit(): Promise<void> {
    const username = el.username.value.trim();
    const password = el.password.value;
    if (!username || !password) {
      showError('Enter your username and password.');
      return;
    }
    el.submit.disabled = true;
    showError(null);
    try {
      const { user } = await api.login(username, password);
      el.password.value = '';
      onSignedIn(user);
    } catch (err) {
      showError(err instanceof ApiError ? err.message : 'Sign-in failed. Please try again.');
      el.password.select();
    } finally {
      el.submit.disabled = false;
    }
  }

  function showError(message: string | null): void {
    el.error.hidden = message === null;
    el.error.textContent = message ?? '';
  }
}
