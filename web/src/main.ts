// Entry point: decides between the sign-in form and the chat, and switches
// between them when the cookie is set or goes stale.

import './app.css';
import * as api from './api';
import { Chat, chatElements } from './chat';
import { loginElements, setupLogin } from './login';
import type { User } from './protocol';

function byId(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}

const loginView = byId('login-view');
const chatView = byId('chat-view');
const userName = byId('user-name');

const chat = new Chat(chatElements(chatView), { onSignedOut: showLogin });
setupLogin(loginElements(loginView), showChat);

byId('logout').addEventListener('click', () => {
  chat.stop();
  void api.logout().catch(() => undefined).then(showLogin);
});

function showLogin(): void {
  chatView.hidden = true;
  loginView.hidden = false;
  byId('login-username').focus();
}

function showChat(user: User): void {
  loginView.hidden = true;
  chatView.hidden = false;
  userName.textContent = user.username;
  void chat.start(new URLSearchParams(location.search).get('session'));
}

async function boot(): Promise<void> {
  try {
    showChat(await api.me());
  } catch {
    // Not signed in (401), or the gateway is unreachable: the form reports that on submit.
    showLogin();
  }
}

void boot();
