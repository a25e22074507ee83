// app.js — the GRPCChatter page: accounts, the lobby and a room, on top of
// chatter.js. Every string a user or the services wrote is rendered with
// textContent; the page's CSP forbids inline scripts and styles.
//
// What survives a reload lives in sessionStorage (this tab only): the user
// token and name, and the current room's code, name and room token. The
// passwords, user's and room's, are kept in memory only, to renew tokens;
// after a reload the room reopens with its backlog until its token expires.

import { ApiError, AuthClient, ChatClient, RoomConnection, utf8Length } from './chatter.js';

const $ = (id) => document.getElementById(id);

const STORE_KEY = 'grpcchatter';
const BACKLOG = 50;
const NAME_RULE = /^[A-Za-z0-9_.-]{3,32}$/;

/** @type {AuthClient} */
let auth;
const chat = new ChatClient('');

// Kept in memory only, never stored: to log in again when the user token
// expires, and to join the room again when the room token does.
const secrets = { userPassword: '', roomPassword: '', createdPassword: '' };

/** @type {RoomConnection|null} */
let conn = null;
let maxBytes = 4096;
const online = new Map(); // user name → streams
let lastMessage = null; // {sender, at} of the last message shown, to group

// ---------- stored session ----------

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY) || '{}') || {};
  } catch {
    return {};
  }
}

function save(s) {
  sessionStorage.setItem(STORE_KEY, JSON.stringify(s));
}

function update(fn) {
  const s = load();
  fn(s);
  save(s);
}

// ---------- errors ----------

function showError(err) {
  const alert = $('alert');
  alert.textContent = messageOf(err);
  alert.classList.add('visible');
}

function clearError() {
  const alert = $('alert');
  alert.textContent = '';
  alert.classList.remove('visible');
}

function messageOf(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return 'Cannot reach the service. Check the connection and try again.';
    let msg = capitalize(err.message);
    if (err.retryAfter > 0) msg += ' Try again in ' + err.retryAfter + ' s.';
    return msg;
  }
  return capitalize(err && err.message ? err.message : String(err));
}

function capitalize(s) {
  s = String(s || '').trim();
  if (!s) return 'Something went wrong.';
  s = s[0].toUpperCase() + s.slice(1);
  return /[.!?]$/.test(s) ? s : s + '.';
}

// busy disables a form's submit button while its request runs.
async function busy(form, fn) {
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  form.setAttribute('aria-busy', 'true');
  try {
    await fn();
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
    form.removeAttribute('aria-busy');
  }
}

// ---------- views ----------

function show(view) {
  for (const id of ['auth-view', 'lobby-view', 'room-view']) $(id).hidden = id !== view;
  $('loading').hidden = true;
  const s = load();
  $('account').hidden = !s.userToken;
  $('account-name').textContent = s.userName || '';
  document.body.dataset.view = view.replace('-view', '');
}

function showAuth(tab = 'login') {
  show('auth-view');
  selectTab(tab);
}

function selectTab(tab) {
  const login = tab === 'login';
  $('tab-login').setAttribute('aria-selected', String(login));
  $('tab-register').setAttribute('aria-selected', String(!login));
  $('tab-login').tabIndex = login ? 0 : -1;
  $('tab-register').tabIndex = login ? -1 : 0;
  $('login-form').hidden = !login;
  $('register-form').hidden = login;
  (login ? $('login-name') : $('register-name')).focus();
}

function showLobby(focus = 'join-code') {
  show('lobby-view');
  $(focus).focus();
}

// ---------- accounts ----------

// userToken returns a user token that is still good, logging in again with
// the password in memory when it is about to expire: within 30 s, or a
// third of its life for short-lived tokens.
async function userToken() {
  const s = load();
  const exp = Date.parse(s.userTokenExpiresAt || '') || 0;
  const window = Math.min(30000, (s.userTokenLife || 0) / 3);
  if (s.userToken && (exp === 0 || exp - Date.now() > window)) return s.userToken;
  if (secrets.userPassword) {
    const r = await auth.login(s.userName, secrets.userPassword);
    update((t) => {
      t.userToken = r.token;
      t.userTokenExpiresAt = r.expiresAt;
      t.userTokenLife = lifeOf(r.expiresAt);
    });
    return r.token;
  }
  if (s.userToken && exp > Date.now()) return s.userToken;
  throw new ApiError(401, 'unauthenticated', 'your session expired: log in again');
}

function lifeOf(expiresAt) {
  return Math.max(0, (Date.parse(expiresAt || '') || 0) - Date.now());
}

async function logIn(name, password) {
  const r = await auth.login(name, password);
  secrets.userPassword = password;
  save({ userName: name, userToken: r.token, userTokenExpiresAt: r.expiresAt, userTokenLife: lifeOf(r.expiresAt) });
  clearError();
  showLobby();
}

function logOut(message) {
  leaveRoom(false);
  sessionStorage.removeItem(STORE_KEY);
  secrets.userPassword = secrets.roomPassword = secrets.createdPassword = '';
  for (const f of ['login-form', 'register-form', 'join-form', 'create-form']) $(f).reset();
  $('created').hidden = true;
  showAuth('login');
  if (message) showError(message);
  else clearError();
}

// unauthenticated handles a refused user token: back to the login form.
function handleAuthError(err) {
  if (err instanceof ApiError && err.status === 401) {
    const name = load().userName || '';
    logOut('Your session expired. Log in again.');
    $('login-name').value = name;
    $('login-password').focus();
    return true;
  }
  return false;
}

function wireAccounts() {
  $('tab-login').addEventListener('click', () => selectTab('login'));
  $('tab-register').addEventListener('click', () => selectTab('register'));
  for (const id of ['tab-login', 'tab-register']) {
    $(id).addEventListener('keydown', (e) => {
      if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
        e.preventDefault();
        const next = id === 'tab-login' ? 'register' : 'login';
        selectTab(next);
        $('tab-' + next).focus();
      }
    });
  }

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('login-name').value.trim();
    const password = $('login-password').value;
    if (!name || !password) {
      showError('Enter your user name and password.');
      return;
    }
    busy(e.target, () => logIn(name, password));
  });

  $('register-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('register-name').value.trim();
    const password = $('register-password').value;
    const confirm = $('register-confirm').value;
    const bytes = utf8Length(password);
    if (!NAME_RULE.test(name)) {
      showError('A user name is 3 to 32 letters, digits, “_”, “-” or “.”.');
      $('register-name').focus();
    } else if (bytes < 8 || bytes > 128) {
      showError('A password is 8 to 128 bytes long.');
      $('register-password').focus();
    } else if (password !== confirm) {
      showError('The passwords do not match.');
      $('register-confirm').focus();
    } else {
      busy(e.target, async () => {
        try {
          await auth.register(name, password);
        } catch (err) {
          if (err instanceof ApiError && err.status === 409) throw new Error('That user name is taken. Choose another.');
          throw err;
        }
        await logIn(name, password);
        e.target.reset();
      });
    }
  });

  $('logout').addEventListener('click', () => logOut());
}

// ---------- lobby ----------

function wireLobby() {
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const code = $('join-code').value.trim().toUpperCase();
    const password = $('join-password').value;
    if (!code || !password) {
      showError('Enter the room code and its password.');
      return;
    }
    busy(e.target, () => joinRoom(code, password));
  });

  $('create-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('create-name').value.trim();
    const password = $('create-password').value;
    if (!name || [...name].length > 64) {
      showError('A room name is 1 to 64 characters.');
      $('create-name').focus();
      return;
    }
    if (!password || utf8Length(password) > 128) {
      showError('A room password is 1 to 128 bytes long.');
      $('create-password').focus();
      return;
    }
    if (password !== $('create-confirm').value) {
      showError('The room passwords do not match.');
      $('create-confirm').focus();
      return;
    }
    busy(e.target, async () => {
      let room;
      try {
        room = await chat.createRoom(await userToken(), name, password);
      } catch (err) {
        if (handleAuthError(err)) return;
        throw err;
      }
      clearError();
      secrets.createdPassword = password;
      $('created-name').textContent = room.name || name;
      $('created-code').textContent = room.shortCode;
      $('created').hidden = false;
      $('create-password').value = $('create-confirm').value = '';
      $('enter-created').focus();
    });
  });

  $('copy-created-code').addEventListener('click', (e) => copy($('created-code').textContent, e.currentTarget));
  $('enter-created').addEventListener('click', async (e) => {
    const button = e.currentTarget;
    button.disabled = true;
    try {
      await joinRoom($('created-code').textContent, secrets.createdPassword);
      $('created').hidden = true;
      $('create-form').reset();
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  });
}

async function copy(text, button) {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    // No clipboard (an insecure origin): select it for the user to copy.
    const range = document.createRange();
    range.selectNodeContents(button.previousElementSibling);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    button.textContent = 'Press Ctrl+C';
  }
  setTimeout(() => (button.textContent = label), 1500);
}

async function joinRoom(code, password) {
  let r;
  try {
    r = await chat.joinRoom(await userToken(), code, password);
  } catch (err) {
    if (handleAuthError(err)) return;
    if (err instanceof ApiError && err.status === 403) throw new Error('Wrong room password.');
    if (err instanceof ApiError && err.status === 404) throw new Error('No room has the code ' + code + '.');
    throw err;
  }
  clearError();
  secrets.roomPassword = password;
  const room = { shortCode: r.shortCode || code, name: r.name, token: r.token, expiresAt: r.expiresAt };
  update((s) => (s.room = room));
  $('join-form').reset();
  enterRoom(room);
}

// ---------- room ----------

function enterRoom(room) {
  leaveRoom(false);
  show('room-view');
  $('room-name').textContent = room.name || room.shortCode;
  $('room-code').textContent = room.shortCode;
  document.title = (room.name || room.shortCode) + ' · GRPCChatter';
  $('messages').replaceChildren();
  $('outbox').replaceChildren();
  $('deleted-banner').hidden = true;
  $('confirm-delete').hidden = true;
  online.clear();
  renderOnline();
  lastMessage = null;
  setComposerEnabled(true);
  $('online-panel').open = !matchMedia('(max-width: 720px)').matches;

  const code = room.shortCode;
  const c = new RoomConnection({
    token: room.token,
    tokenExpiresAt: room.expiresAt,
    backlog: BACKLOG,
    // Without the password (after a reload) there is no renewing the room
    // token: once it expires, the page asks for the password.
    rejoin: secrets.roomPassword ? async () => {
      const r = await chat.joinRoom(await userToken(), code, secrets.roomPassword);
      update((s) => {
        if (s.room && s.room.shortCode === code) Object.assign(s.room, { token: r.token, expiresAt: r.expiresAt });
      });
      return r;
    } : undefined,
  });
  conn = c;
  const on = (type, fn) => c.addEventListener(type, (e) => conn === c && fn(e.detail));
  on('state', onState);
  on('opened', onOpened);
  on('message', onMessage);
  on('presence', onPresence);
  on('gap', (g) => addSystem('gap', 'Some messages may be missing: the service could not replay everything sent while you were away.'));
  on('sendfailed', onSendFailed);
  on('deleted', onDeleted);
  on('error', onConnError);
  c.connect();
  updateCount();
  $('message-input').focus();
}

// leaveRoom closes the room's connection; forget also drops it from the
// stored session.
function leaveRoom(forget) {
  if (conn) {
    const c = conn;
    conn = null;
    c.close();
  }
  if (forget) {
    update((s) => delete s.room);
    secrets.roomPassword = '';
  }
  document.title = 'GRPCChatter';
}

const stateText = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};

function onState(d) {
  const el = $('conn-state');
  el.dataset.state = d.state;
  let text = stateText[d.state] || d.state;
  if (d.state === 'reconnecting' && d.retryIn >= 1000) text = 'Reconnecting in ' + Math.round(d.retryIn / 1000) + ' s…';
  el.textContent = text;
  el.title = d.reason || '';
  $('online-panel').classList.toggle('stale', d.state !== 'connected');
}

function onOpened(d) {
  maxBytes = d.maxMessageBytes || maxBytes;
  updateCount();
  if (d.name) {
    $('room-name').textContent = d.name;
    update((s) => s.room && (s.room.name = d.name));
  }
  online.clear();
  for (const u of d.users) online.set(u.userName, u.streams);
  renderOnline();
  if (!d.first) addSystem('info', 'Reconnected.');
}

function onMessage(m) {
  const me = load().userName;
  const list = $('messages');
  const stick = nearBottom(list);
  const at = m.sentAt ? new Date(m.sentAt) : new Date();
  const li = document.createElement('li');
  li.className = 'message';
  li.dataset.testid = 'message';
  li.dataset.seq = m.sequence;
  li.dataset.sender = m.sender;
  if (m.earlier) li.classList.add('earlier');
  const own = m.sender === me;
  if (own) li.classList.add('own');
  // Messages of one sender close together form a group with one header.
  if (lastMessage && lastMessage.sender === m.sender && at - lastMessage.at < 5 * 60 * 1000) li.classList.add('cont');
  lastMessage = { sender: m.sender, at };

  const avatar = document.createElement('span');
  avatar.className = 'avatar hue-' + hue(m.sender);
  avatar.setAttribute('aria-hidden', 'true');
  avatar.textContent = initial(m.sender);

  const meta = document.createElement('div');
  meta.className = 'meta';
  const sender = document.createElement('span');
  sender.className = 'sender';
  sender.textContent = own ? m.sender + ' (you)' : m.sender;
  const time = document.createElement('time');
  time.className = 'time';
  time.dateTime = at.toISOString();
  time.textContent = timeFormat.format(at);
  time.title = dateFormat.format(at);
  meta.append(sender, time);

  const body = document.createElement('div');
  body.className = 'body';
  body.textContent = m.body;

  li.append(avatar, meta, body);
  list.append(li);
  if (m.clientMessageId) {
    for (const o of $('outbox').querySelectorAll('li')) if (o.dataset.id === m.clientMessageId) o.remove();
  }
  if (stick || own) list.scrollTop = list.scrollHeight;
}

function onPresence(p) {
  if (p.kind === 'joined') online.set(p.userName, Math.max(online.get(p.userName) || 0, 1));
  else online.delete(p.userName);
  renderOnline();
  addSystem('presence', p.userName + (p.kind === 'joined' ? ' joined' : ' left'));
}

function onSendFailed(f) {
  for (const o of $('outbox').querySelectorAll('li')) {
    if (o.dataset.id !== f.clientMessageId) continue;
    o.classList.add('failed');
    o.querySelector('.status').textContent = 'Not sent: ' + f.reason;
    const dismiss = document.createElement('button');
    dismiss.type = 'button';
    dismiss.className = 'link-button';
    dismiss.textContent = 'Dismiss';
    dismiss.addEventListener('click', () => o.remove());
    o.append(dismiss);
  }
  showError('A message was not sent: ' + f.reason);
}

function onDeleted() {
  conn = null;
  update((s) => delete s.room);
  secrets.roomPassword = '';
  $('conn-state').dataset.state = 'closed';
  $('conn-state').textContent = 'Room deleted';
  $('online-panel').classList.add('stale');
  $('confirm-delete').hidden = true;
  $('deleted-banner').hidden = false;
  setComposerEnabled(false);
  $('back-to-lobby').focus();
}

function onConnError(d) {
  conn = null;
  onState({ state: 'closed', reason: d.reason });
  setComposerEnabled(false);
  const s = load();
  const code = s.room ? s.room.shortCode : $('room-code').textContent;
  update((t) => delete t.room);
  if (d.code === 'unauthenticated' && /log in/.test(d.reason)) {
    handleAuthError(new ApiError(401, 'unauthenticated', d.reason));
    return;
  }
  showLobby('join-password');
  $('join-code').value = code;
  let text = 'You left room ' + code + ': ' + d.reason;
  if (d.code === 'unauthenticated') text = 'Your pass for room ' + code + ' expired. Enter the room password to join again.';
  if (d.code === 'aborted') text = 'Room ' + code + ' was opened elsewhere (in another tab or on another device), so it was closed here. Enter the room password to open it here again.';
  showError(text);
}

function setComposerEnabled(on) {
  $('message-input').disabled = !on;
  $('send').disabled = !on;
  $('delete-room').disabled = !on;
}

function addSystem(kind, text) {
  const list = $('messages');
  const stick = nearBottom(list);
  const li = document.createElement('li');
  li.className = 'system';
  li.dataset.kind = kind;
  li.dataset.testid = 'system';
  li.textContent = text;
  list.append(li);
  lastMessage = null;
  if (stick) list.scrollTop = list.scrollHeight;
}

function nearBottom(el) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < 48;
}

function renderOnline() {
  const me = load().userName;
  const names = [...online.keys()].sort((a, b) => a.localeCompare(b));
  const items = names.map((name) => {
    const li = document.createElement('li');
    li.dataset.user = name;
    const avatar = document.createElement('span');
    avatar.className = 'avatar small hue-' + hue(name);
    avatar.setAttribute('aria-hidden', 'true');
    avatar.textContent = initial(name);
    const label = document.createElement('span');
    label.className = 'user-name';
    label.textContent = name;
    li.append(avatar, label);
    if (name === me) {
      const you = document.createElement('span');
      you.className = 'you';
      you.textContent = 'you';
      li.append(you);
    }
    return li;
  });
  $('online').replaceChildren(...items);
  $('online-count').textContent = String(names.length);
}

function hue(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 8;
}

function initial(name) {
  return (name.match(/[A-Za-z0-9]/) || ['?'])[0].toUpperCase();
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

function updateCount() {
  const n = utf8Length($('message-input').value);
  const el = $('byte-count');
  el.textContent = n + ' / ' + maxBytes;
  const over = n > maxBytes;
  el.classList.toggle('over', over);
  $('message-input').setAttribute('aria-invalid', String(over));
  $('send').disabled = $('message-input').disabled || over;
}

function sendMessage() {
  const input = $('message-input');
  // A pasted lone surrogate has no UTF-8 form: it becomes U+FFFD.
  const body = typeof input.value.toWellFormed === 'function' ? input.value.toWellFormed() : input.value;
  if (!conn || body.trim() === '') return;
  if (utf8Length(body) > maxBytes) {
    showError('The message is ' + utf8Length(body) + ' bytes; the limit is ' + maxBytes + '.');
    return;
  }
  let id;
  try {
    id = conn.send(body);
  } catch (err) {
    showError(err);
    return;
  }
  const li = document.createElement('li');
  li.dataset.id = id;
  li.dataset.testid = 'pending';
  const text = document.createElement('span');
  text.className = 'body';
  text.textContent = body;
  const status = document.createElement('span');
  status.className = 'status';
  status.textContent = 'Sending…';
  li.append(text, status);
  $('outbox').append(li);
  input.value = '';
  updateCount();
  const list = $('messages');
  list.scrollTop = list.scrollHeight;
}

function wireRoom() {
  const input = $('message-input');
  input.addEventListener('input', updateCount);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendMessage();
    }
  });
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    sendMessage();
    input.focus();
  });
  $('copy-room-code').addEventListener('click', (e) => copy($('room-code').textContent, e.currentTarget));
  $('leave').addEventListener('click', () => {
    leaveRoom(true);
    clearError();
    showLobby();
  });
  $('delete-room').addEventListener('click', () => {
    $('confirm-delete').hidden = false;
    $('delete-cancel').focus();
  });
  $('delete-cancel').addEventListener('click', () => {
    $('confirm-delete').hidden = true;
    $('delete-room').focus();
  });
  $('delete-confirm').addEventListener('click', async (e) => {
    const button = e.currentTarget;
    button.disabled = true;
    try {
      await chat.deleteRoom(await userToken(), $('room-code').textContent);
      clearError();
      // The room's stream tells: see onDeleted.
    } catch (err) {
      if (!handleAuthError(err)) showError(err);
      $('confirm-delete').hidden = true;
    } finally {
      button.disabled = false;
    }
  });
  $('back-to-lobby').addEventListener('click', () => {
    leaveRoom(true);
    showLobby();
  });
}

// ---------- start ----------

async function authUrl() {
  const fallback = location.protocol + '//' + location.hostname + ':8080';
  try {
    const resp = await fetch('/config.json', { cache: 'no-store' });
    if (!resp.ok) return fallback;
    const cfg = await resp.json();
    return cfg.authUrl || fallback;
  } catch {
    return fallback;
  }
}

async function start() {
  auth = new AuthClient(await authUrl());
  wireAccounts();
  wireLobby();
  wireRoom();
  const s = load();
  const exp = Date.parse(s.userTokenExpiresAt || '') || 0;
  if (!s.userToken || (exp > 0 && exp <= Date.now())) {
    const name = s.userName;
    sessionStorage.removeItem(STORE_KEY);
    showAuth('login');
    if (name) {
      $('login-name').value = name;
      showError('Your session expired. Log in again.');
    }
    return;
  }
  if (s.room && s.room.token) enterRoom(s.room);
  else showLobby();
}

start().then(() => document.body.setAttribute('data-ready', 'true'));
