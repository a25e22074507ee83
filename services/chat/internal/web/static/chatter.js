// chatter.js — a small browser client for GRPCChatter, with the semantics
// of the Go SDK (pkg/client): accounts on the auth service, rooms over the
// chat service's HTTP/JSON calls, and a room's live stream over a WebSocket
// that survives breaks without losing, repeating or reordering messages.
//
// No dependencies, no build step: import it as an ES module.
//
//   const auth = new AuthClient('http://127.0.0.1:8080');
//   const { token } = await auth.login('alice', 'correct horse');
//   const chat = new ChatClient();
//   const room = await chat.joinRoom(token, 'K7QX2M', 'room password');
//   const conn = new RoomConnection({ token: room.token, tokenExpiresAt: room.expiresAt,
//     rejoin: () => chat.joinRoom(token, room.shortCode, 'room password') });
//   conn.addEventListener('message', (e) => console.log(e.detail.sender, e.detail.body));
//   conn.connect();
//   conn.send('hello');

/**
 * ApiError is a refusal from the auth or chat service, or a failure to reach
 * it (status 0, code "unavailable").
 */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the service could not be reached
   * @param {string} code canonical code: invalid_argument, unauthenticated,
   *   permission_denied, not_found, already_exists, resource_exhausted,
   *   unavailable, internal, ...
   * @param {string} message the service's explanation, fit to show a person
   * @param {number} [retryAfter] seconds to wait before trying again, when given
   */
  constructor(status, code, message, retryAfter = 0) {
    super(message);
    this.name = 'ApiError';
    /** @type {number} */ this.status = status;
    /** @type {string} */ this.code = code;
    /** @type {number} */ this.retryAfter = retryAfter;
  }
}

// codeOfStatus names an HTTP status the way the chat service's errors do,
// for the auth service, whose errors carry only a message.
const codeOfStatus = {
  400: 'invalid_argument', 401: 'unauthenticated', 403: 'permission_denied', 404: 'not_found',
  409: 'already_exists', 413: 'invalid_argument', 415: 'invalid_argument', 429: 'resource_exhausted',
  500: 'internal', 503: 'unavailable', 504: 'deadline_exceeded',
};

/**
 * postJSON sends body as JSON and returns the parsed answer, or throws an
 * ApiError made from the service's error answer.
 * @param {string} url
 * @param {object} body
 * @param {string} [bearer] token for the Authorization header
 * @returns {Promise<object>}
 */
async function postJSON(url, body, bearer) {
  const headers = { 'Content-Type': 'application/json' };
  if (bearer) headers.Authorization = 'Bearer ' + bearer;
  let resp;
  try {
    resp = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, 'unavailable', 'Cannot reach the service (' + (err && err.message ? err.message : err) + ')');
  }
  let data = {};
  const text = await resp.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = {};
    }
  }
  if (resp.ok) return data;
  const retryAfter = Number.parseInt(resp.headers.get('Retry-After') || '', 10);
  throw new ApiError(
    resp.status,
    data.code || codeOfStatus[resp.status] || 'unknown',
    data.message || data.error || resp.statusText || 'HTTP ' + resp.status,
    Number.isFinite(retryAfter) ? retryAfter : 0,
  );
}

/**
 * AuthClient talks to the auth service: accounts and user tokens.
 * User names are 3 to 32 ASCII letters, digits, '_', '-' or '.', unique in
 * any letter case; passwords are 8 to 128 bytes.
 */
export class AuthClient {
  /** @param {string} baseUrl the auth service, e.g. "http://127.0.0.1:8080" */
  constructor(baseUrl) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, '');
  }

  /**
   * register creates an account. It does not log in.
   * @param {string} userName
   * @param {string} password
   * @returns {Promise<{id: number, userName: string, createdAt: string}>}
   * @throws {ApiError} 409 already_exists when the name is taken, 400 for
   *   a name or password that breaks the rules, 429 when throttled
   */
  async register(userName, password) {
    const r = await postJSON(this.baseUrl + '/register', { user_name: userName, password });
    return { id: r.id, userName: r.user_name, createdAt: r.created_at };
  }

  /**
   * login returns a user token for the chat service's room calls.
   * @param {string} userName
   * @param {string} password
   * @returns {Promise<{token: string, expiresAt: string}>}
   * @throws {ApiError} 401 unauthenticated for a wrong name or password,
   *   429 resource_exhausted (with retryAfter) after too many failures
   */
  async login(userName, password) {
    const r = await postJSON(this.baseUrl + '/login', { user_name: userName, password });
    return { token: r.token, expiresAt: r.expires_at };
  }
}

/**
 * ChatClient makes the chat service's unary calls over HTTP/JSON.
 */
export class ChatClient {
  /** @param {string} [baseUrl] the chat service's web address; '' for the page's own origin */
  constructor(baseUrl = '') {
    this.baseUrl = String(baseUrl).replace(/\/+$/, '');
  }

  #call(method, token, body) {
    return postJSON(this.baseUrl + '/grpcchatter.chat.v1.ChatService/' + method, body, token);
  }

  /**
   * createRoom creates a password-protected room owned by the user. It does
   * not join it.
   * @param {string} userToken from AuthClient.login
   * @param {string} name 1 to 64 characters
   * @param {string} password 1 to 128 bytes
   * @returns {Promise<{shortCode: string, name: string}>}
   */
  async createRoom(userToken, name, password) {
    const r = await this.#call('CreateChatRoom', userToken, { name, password });
    return { shortCode: r.shortCode || '', name: r.name || '' };
  }

  /**
   * joinRoom checks the room password and returns a room token for
   * listUsers and RoomConnection.
   * @param {string} userToken
   * @param {string} shortCode any letter case
   * @param {string} password
   * @returns {Promise<{token: string, expiresAt: string, shortCode: string, name: string}>}
   * @throws {ApiError} 403 for a wrong password, 404 for no such room,
   *   429 (with retryAfter) after too many wrong passwords
   */
  async joinRoom(userToken, shortCode, password) {
    const r = await this.#call('JoinChatRoom', userToken, { shortCode, password });
    return { token: r.token || '', expiresAt: r.expiresAt || '', shortCode: r.shortCode || '', name: r.name || '' };
  }

  /**
   * listUsers lists the users with an open stream in the room.
   * @param {string} roomToken from joinRoom
   * @param {string} shortCode
   * @returns {Promise<Array<{userName: string, streams: number}>>}
   */
  async listUsers(roomToken, shortCode) {
    const r = await this.#call('ListChatRoomUsers', roomToken, { shortCode });
    return usersOf(r.users);
  }

  /**
   * deleteRoom deletes the room; only its owner may. Open streams receive
   * a deleted event.
   * @param {string} userToken
   * @param {string} shortCode
   * @returns {Promise<void>}
   * @throws {ApiError} 403 permission_denied when the user is not the owner
   */
  async deleteRoom(userToken, shortCode) {
    await this.#call('DeleteChatRoom', userToken, { shortCode });
  }
}

function usersOf(list) {
  return (list || []).map((u) => ({ userName: u.userName || '', streams: u.streams || 0 }));
}

// seq reads a protojson uint64, which is a string and absent when zero.
function seq(v) {
  try {
    return BigInt(v || 0);
  } catch {
    return 0n;
  }
}

/** newMessageId returns a client message ID, unique per message. */
export function newMessageId() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** utf8Length is the length of s in UTF-8 bytes, the unit of the body limit. */
export function utf8Length(s) {
  return new TextEncoder().encode(s).length;
}

// Close codes of the chat service's WebSocket: 4000 + the gRPC status code.
// STABLE_MS is how long a stream must stay up for the backoff to start
// over when it breaks.
const STABLE_MS = 10000;

const CLOSE = {
  normal: 1000,
  invalid: 4003, // INVALID_ARGUMENT: a bad frame or a refused Send
  notFound: 4005, // NOT_FOUND: the room was deleted
  denied: 4007, // PERMISSION_DENIED
  exhausted: 4008, // RESOURCE_EXHAUSTED: too slow, or too many streams
  replaced: 4010, // ABORTED: a newer stream of the same user in the room took this one's place
  unavailable: 4014, // UNAVAILABLE: shutting down, store unavailable
  unauthenticated: 4016, // UNAUTHENTICATED: room token missing, invalid or expired
  unsupported: 1003, // unsupported data (the server answers a binary frame with 4003)
  tooBig: 1009, // frame too big
};

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * RoomConnection is one joined room's live stream. It reconnects by itself
 * after a break, resumes where it stopped, sends again what the room did not
 * confirm, and never delivers a message twice. It is an EventTarget; every
 * event is a CustomEvent whose detail is described below.
 *
 * - "state" {state, attempt, retryIn, reason, code}: state is "connecting"
 *   (the first stream), "connected", "reconnecting" (attempt counts failed
 *   attempts since the break, retryIn the milliseconds before the next one,
 *   reason and code why the last one ended) or "closed".
 * - "opened" {shortCode, name, epoch, headSequence, recovery, users,
 *   maxMessageBytes, backlog, tokenExpiresAt, first}: a stream opened;
 *   users are who is online now (presence changes during a break are not
 *   replayed). backlog earlier messages follow on the first stream.
 * - "message" {sequence, epoch, sentAt, sender, body, clientMessageId,
 *   earlier}: a message in room order; earlier marks the backlog, sent
 *   before this connection joined. The caller's own messages come back too:
 *   that is their confirmation.
 * - "presence" {kind: "joined"|"left", userName, at}.
 * - "gap" {previousEpoch, afterSequence, epoch, headSequence, unconfirmed}:
 *   messages may have been missed during a break (the service could not
 *   replay them). unconfirmed lists own message IDs whose fate the gap hides.
 * - "sendfailed" {clientMessageId, body, reason}: the service refused a
 *   message; it will never come back.
 * - "deleted" {at}: the room was deleted; the connection is closed.
 * - "error" {code, reason}: the connection ended for good (e.g. the user is
 *   no longer admitted); it is closed. code "aborted": the user opened the
 *   room elsewhere (another tab or device) and that stream took this one's
 *   place; reconnecting would only take it back, so this one stays closed.
 */
export class RoomConnection extends EventTarget {
  /**
   * @param {object} opts
   * @param {string} opts.token room token from ChatClient.joinRoom
   * @param {string} [opts.tokenExpiresAt] its expiry (RFC 3339)
   * @param {number} [opts.backlog] earlier messages the first stream asks for (default 50)
   * @param {() => Promise<{token: string, expiresAt: string}>} [opts.rejoin]
   *   gets a new room token (ChatClient.joinRoom with the room password);
   *   without it the connection ends once its token expires
   * @param {string} [opts.url] the WebSocket URL; default the page's origin + /v1/chat
   * @param {{initial?: number, max?: number, jitter?: number}} [opts.backoff]
   *   reconnection delays in ms: initial 500, doubling up to max 10000, ± jitter 0.2
   * @param {number} [opts.openTimeout] ms for a stream to open (default 10000)
   */
  constructor(opts) {
    super();
    this.#setToken(opts.token, opts.tokenExpiresAt);
    this.#backlog = opts.backlog ?? 50;
    this.#rejoin = opts.rejoin || null;
    this.#url = opts.url || defaultUrl();
    this.#backoff = { initial: 500, max: 10000, jitter: 0.2, ...(opts.backoff || {}) };
    this.#openTimeout = opts.openTimeout ?? 10000;
  }

  #token;
  #tokenExp = 0; // ms since the epoch, 0 if unknown
  #tokenLife = 0; // ms the token had left when it came
  #backlog;
  #rejoin;
  #url;
  #backoff;
  #openTimeout;

  #ws = null; // the current socket; events of any other are ignored
  #state = 'idle';
  #ended = false;
  #timer = 0; // the reconnection or open timeout
  #refreshTimer = 0;
  #onOnline = null;
  #attempting = false; // renewing the token before opening a stream

  // Where the room stands for this connection: the last message delivered.
  #epoch = '';
  #lastSeq = 0n;
  #opened = false; // a stream has opened once: later ones resume
  #earlierEpoch = '';
  #earlierSeq = 0n;

  #attempt = 0;
  #openedAt = 0; // when the current stream opened, ms; 0 while none is open
  #renewed = false; // the token was renewed after a refusal, since the last open
  #tokenRefused = false; // the next attempt must renew the token first
  #refreshing = false; // a Refresh is on its way and not confirmed
  #maxBody = 0;

  // Messages accepted by send and not yet seen come back, in order; sent
  // says whether some stream was given the message.
  /** @type {Array<{clientMessageId: string, body: string, sent: boolean}>} */
  #unconfirmed = [];
  // live: the current stream is through its replay, so sends go out at once.
  #live = false;
  #head = 0n; // the current stream's head sequence while it replays
  #rejected = null; // why the last stream was ended as invalid

  /** The connection state: idle, connecting, connected, reconnecting or closed. */
  get state() {
    return this.#state;
  }

  /** The service's body limit in UTF-8 bytes, 0 until a stream opened. */
  get maxMessageBytes() {
    return this.#maxBody;
  }

  /** The number of messages sent and not yet confirmed. */
  get pending() {
    return this.#unconfirmed.length;
  }

  /** The current room token, renewed as the connection goes. */
  get token() {
    return this.#token;
  }

  /** connect opens the first stream; later ones open by themselves. */
  connect() {
    if (this.#state !== 'idle') return;
    if (typeof globalThis.addEventListener === 'function') {
      // Back online: retry now rather than at the end of a long backoff.
      this.#onOnline = () => {
        if (this.#state === 'reconnecting' && !this.#ws && !this.#attempting) {
          clearTimeout(this.#timer);
          this.#attemptOpen();
        }
      };
      globalThis.addEventListener('online', this.#onOnline);
    }
    this.#setState('connecting', {});
    this.#attemptOpen();
  }

  /**
   * send posts a message to the room. The connection owns it from then on:
   * it is written now or once the stream is back, and written again after
   * a break until it comes back as a message event (or a sendfailed event).
   * @param {string} body non-empty, well-formed (no lone surrogates), at most
   *   maxMessageBytes UTF-8 bytes once a stream has told the limit
   * @returns {string} the message's client message ID
   * @throws {Error} when the connection has ended, or the body is empty or too long
   */
  send(body) {
    if (this.#ended) throw new Error('the connection is closed');
    if (typeof body !== 'string' || body.length === 0) throw new Error('a message must not be empty');
    // A lone surrogate has no UTF-8 form: the service would refuse it.
    if (typeof body.isWellFormed === 'function' && !body.isWellFormed()) throw new Error('a message must be valid Unicode text');
    if (this.#maxBody > 0 && utf8Length(body) > this.#maxBody) {
      throw new Error('a message may be at most ' + this.#maxBody + ' bytes');
    }
    const m = { clientMessageId: newMessageId(), body, sent: false };
    this.#unconfirmed.push(m);
    if (this.#live) this.#write(m);
    return m.clientMessageId;
  }

  /** close ends the connection for good. */
  close() {
    this.#end('closed', null);
  }

  // ---- the stream's life ----

  #setState(state, extra) {
    this.#state = state;
    this.#emit('state', { state, attempt: 0, retryIn: 0, reason: '', code: 0, ...extra });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // end closes the connection and reports why, once.
  #end(type, detail) {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#refreshTimer);
    if (this.#onOnline) globalThis.removeEventListener('online', this.#onOnline);
    const ws = this.#ws;
    this.#ws = null;
    this.#live = false;
    if (ws) ws.close(CLOSE.normal);
    if (type === 'deleted' || type === 'error') this.#emit(type, detail);
    this.#setState('closed', detail && detail.reason ? { reason: detail.reason, code: detail.code || 0 } : {});
  }

  async #attemptOpen() {
    if (this.#ended) return;
    if (this.#tokenRefused || this.#tokenDue()) {
      // Renew first: the service refused the token or would soon.
      this.#attempting = true;
      const ok = await this.#renewToken();
      this.#attempting = false;
      if (!ok) return;
    }
    if (this.#ended) return;
    let ws;
    try {
      ws = new WebSocket(this.#url);
    } catch (err) {
      this.#error('invalid_argument', 'cannot open ' + this.#url + ': ' + err.message);
      return;
    }
    this.#ws = ws;
    this.#live = false;
    this.#refreshing = false;
    this.#timer = setTimeout(() => {
      if (this.#ws === ws) this.#broken(ws, 0, 'the chat service did not open the stream within ' + this.#openTimeout / 1000 + ' s');
    }, this.#openTimeout);
    ws.addEventListener('open', () => {
      if (this.#ws !== ws) return;
      const open = { token: this.#token };
      if (this.#opened) {
        open.resume = { epoch: this.#epoch, afterSequence: this.#lastSeq.toString() };
      } else if (this.#backlog > 0) {
        open.backlog = this.#backlog;
      }
      ws.send(JSON.stringify({ open }));
    });
    ws.addEventListener('message', (e) => {
      if (this.#ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        this.#broken(ws, 0, 'the service sent a frame that is not JSON');
        return;
      }
      this.#frame(ws, frame.events || []);
    });
    ws.addEventListener('close', (e) => {
      if (this.#ws !== ws) return;
      this.#broken(ws, e.code, e.reason || closeText(e.code));
    });
  }

  // renewToken gets a new room token with rejoin. It returns whether the
  // connection should go on; on a failure it has scheduled the next attempt
  // or ended the connection.
  async #renewToken() {
    if (!this.#rejoin) {
      this.#error('unauthenticated', 'the room pass expired: join the room again');
      return false;
    }
    if (this.#renewed && this.#tokenRefused) {
      // A fresh token was refused too: the user is no longer admitted.
      this.#error('unauthenticated', 'the chat service refused a fresh room pass');
      return false;
    }
    try {
      const r = await this.#rejoin();
      if (this.#ended) return false;
      this.#setToken(r.token, r.expiresAt);
      this.#renewed = this.#tokenRefused;
      this.#tokenRefused = false;
      return true;
    } catch (err) {
      if (this.#ended) return false;
      const status = err instanceof ApiError ? err.status : 0;
      if (status === 404) {
        this.#end('deleted', { at: '', reason: err.message });
      } else if (status === 401 || status === 403 || status === 400 || !(err instanceof ApiError)) {
        this.#error(err instanceof ApiError ? err.code : 'unauthenticated', 'cannot rejoin the room: ' + (err.message || err));
      } else {
        this.#retryLater(0, 'cannot rejoin the room: ' + err.message, (err.retryAfter || 0) * 1000);
      }
      return false;
    }
  }

  #setToken(token, expiresAt) {
    this.#token = token;
    this.#tokenExp = parseTime(expiresAt);
    this.#tokenLife = this.#tokenExp > 0 ? this.#tokenExp - Date.now() : 0;
  }

  // tokenDue says whether the room token is about to expire (within 5 s,
  // or a third of its life for short-lived tokens): not worth opening a
  // stream with.
  #tokenDue() {
    if (this.#tokenExp === 0) return false;
    return this.#tokenExp - Date.now() < Math.min(5000, this.#tokenLife / 3);
  }

  #error(code, reason) {
    this.#end('error', { code, reason });
  }

  // broken handles the end of the current stream: why it ended decides
  // whether and how to reconnect.
  #broken(ws, code, reason) {
    if (this.#ws !== ws || this.#ended) return;
    this.#ws = null;
    this.#live = false;
    clearTimeout(this.#timer);
    clearTimeout(this.#refreshTimer);
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(CLOSE.normal);
    if (code === CLOSE.denied && this.#refreshing) code = CLOSE.unauthenticated; // a refused Refresh
    this.#refreshing = false;
    switch (code) {
      case CLOSE.notFound:
        this.#end('deleted', { at: '', reason });
        return;
      case CLOSE.denied:
        this.#error('permission_denied', reason);
        return;
      case CLOSE.replaced:
        // The user's newer stream (another tab or device) replaced this
        // one at the per-user stream limit: reconnecting would replace it
        // in turn, and the two would take turns for ever.
        this.#error('aborted', 'the room was opened elsewhere (another tab or device)');
        return;
      case CLOSE.unauthenticated:
        // The token expired or was refused: renew it once, right away.
        this.#tokenRefused = true;
        if (this.#renewed) {
          this.#error('unauthenticated', reason);
          return;
        }
        this.#setState('reconnecting', { attempt: this.#attempt, retryIn: 0, reason, code });
        this.#attemptOpen();
        return;
      case CLOSE.invalid:
      case CLOSE.tooBig:
      case CLOSE.unsupported:
        // Most likely a message the service refused: the next stream's
        // replay tells which (see #live).
        this.#rejected = reason;
        break;
    }
    this.#retryLater(code, reason, 0);
  }

  #retryLater(code, reason, atLeast) {
    const b = this.#backoff;
    if (this.#openedAt && Date.now() - this.#openedAt >= STABLE_MS) this.#attempt = 0;
    this.#openedAt = 0;
    let d = Math.min(b.initial * 2 ** this.#attempt, b.max);
    d *= 1 + b.jitter * (2 * Math.random() - 1);
    d = Math.max(Math.round(d), atLeast);
    this.#setState('reconnecting', { attempt: this.#attempt, retryIn: d, reason, code });
    this.#attempt++;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#attemptOpen(), d);
  }

  // frame handles a frame of events from the service.
  #frame(ws, events) {
    for (const ev of events) {
      if (this.#ws !== ws || this.#ended) return;
      if (ev.opened) this.#onOpened(ws, ev.opened);
      else if (ev.message) this.#onMessage(ev.message);
      else if (ev.presence) {
        const p = ev.presence;
        const kind = p.kind === 'PRESENCE_KIND_LEFT' ? 'left' : 'joined';
        this.#emit('presence', { kind, userName: p.userName || '', at: p.at || '' });
      } else if (ev.roomDeleted) {
        this.#end('deleted', { at: ev.roomDeleted.at || '', reason: 'the room was deleted' });
        return;
      } else if (ev.refreshed) {
        this.#refreshing = false;
        // The stream now lives as long as the new token (the service's
        // word for it, if it gives one).
        const exp = parseTime(ev.refreshed.expiresAt);
        if (exp > 0) this.#tokenExp = exp;
        this.#scheduleRefresh(ws);
      }
      if (!this.#live && this.#ws === ws && this.#replayed()) this.#goLive(ws);
    }
  }

  #replayed() {
    return this.#head === 0n || this.#lastSeq >= this.#head;
  }

  #onOpened(ws, op) {
    clearTimeout(this.#timer);
    const first = !this.#opened;
    const recovery = op.recovery || 'RECOVERY_UNSPECIFIED';
    const epoch = op.epoch || '';
    const head = seq(op.headSequence);
    this.#maxBody = op.maxMessageBytes || 0;
    const t = parseTime(op.tokenExpiresAt);
    if (t > 0) this.#tokenExp = t;
    // The backoff starts over only once this stream has stayed up a while
    // (see #retryLater): one cut right after opening, e.g. as a slow
    // consumer during a long replay, must not reconnect at full speed.
    this.#openedAt = Date.now();
    this.#renewed = false;
    this.#head = 0n;
    let gap = null;
    if (first) {
      // The backlog is the latest messages up to head: deliver them as if
      // resuming just before them, so that a break meanwhile replays the
      // rest of them and no more.
      const backlog = BigInt(Math.min(op.backlog || 0, Number(head)));
      this.#epoch = epoch;
      this.#lastSeq = head - backlog;
      if (backlog > 0n) {
        this.#earlierEpoch = epoch;
        this.#earlierSeq = head;
        this.#head = head;
      }
      this.#opened = true;
    } else if (recovery === 'RECOVERY_COMPLETE') {
      this.#head = head; // the replay runs up to head; sends wait for it
    } else {
      // Without a replay the refused message cannot be told from the
      // others: all are sent again, and the next replay tells.
      this.#rejected = null;
      if (recovery === 'RECOVERY_FAILED') {
        gap = { previousEpoch: this.#epoch, afterSequence: this.#lastSeq.toString(), epoch, headSequence: head.toString(), unconfirmed: [] };
        if (epoch === this.#epoch) {
          // The service may have recorded some of them during the gap and
          // ignores their IDs now; those never come back, so they are
          // reported with the gap and sent once more untracked.
          gap.unconfirmed = this.#unconfirmed.map((m) => m.clientMessageId);
          for (const m of this.#unconfirmed) ws.send(sendFrame(m));
          this.#unconfirmed = [];
        } else {
          this.#epoch = epoch;
          this.#lastSeq = 0n;
        }
      }
    }
    this.#setState('connected', {});
    this.#emit('opened', {
      shortCode: op.shortCode || '', name: op.name || '', epoch, headSequence: head.toString(), recovery,
      users: usersOf(op.users), maxMessageBytes: this.#maxBody, backlog: op.backlog || 0,
      tokenExpiresAt: op.tokenExpiresAt || '', first,
    });
    if (gap) this.#emit('gap', gap);
    this.#scheduleRefresh(ws);
  }

  #onMessage(m) {
    const epoch = m.epoch || '';
    const s = seq(m.sequence);
    // A message's identity is its place in the room, (epoch, sequence).
    if (epoch === this.#epoch && s <= this.#lastSeq) return; // delivered before a break
    this.#epoch = epoch;
    this.#lastSeq = s;
    const id = m.clientMessageId || '';
    if (id) {
      const i = this.#unconfirmed.findIndex((u) => u.clientMessageId === id);
      if (i >= 0) this.#unconfirmed.splice(i, 1);
    }
    this.#emit('message', {
      sequence: s.toString(), epoch, sentAt: m.sentAt || '', sender: m.sender || '', body: m.body || '',
      clientMessageId: id, earlier: epoch === this.#earlierEpoch && s <= this.#earlierSeq,
    });
  }

  // goLive runs once the stream's replay is through: the replay confirmed
  // every message the service recorded, so what is left is sent again, in
  // order, except the one the service refused last time.
  #goLive(ws) {
    this.#live = true;
    this.#head = 0n;
    if (this.#rejected !== null) {
      const reason = this.#rejected;
      this.#rejected = null;
      // The service reads a stream's messages in order and recorded every
      // one before the refused message, so it is the first one left, if
      // that one had been written at all.
      const failed = this.#unconfirmed[0];
      if (failed && failed.sent) {
        this.#unconfirmed.shift();
        this.#emit('sendfailed', { clientMessageId: failed.clientMessageId, body: failed.body, reason });
      }
    }
    if (this.#ws !== ws) return;
    for (const m of this.#unconfirmed) this.#write(m);
  }

  #write(m) {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(sendFrame(m));
    m.sent = true;
  }

  // scheduleRefresh renews the stream's room token in-band at about 80% of
  // its remaining life: a join for a new token, then a Refresh frame, which
  // the service confirms with a refreshed event. Should that fail, the
  // service ends the stream when the token expires, and the connection
  // renews it then and resumes on a new stream.
  #scheduleRefresh(ws) {
    clearTimeout(this.#refreshTimer);
    if (!this.#rejoin || this.#tokenExp === 0) return;
    const left = this.#tokenExp - Date.now();
    if (left <= 0) return;
    this.#refreshTimer = setTimeout(async () => {
      if (this.#ws !== ws || this.#ended) return;
      let r;
      try {
        r = await this.#rejoin();
      } catch {
        return; // the stream ends when its token expires; see #broken
      }
      if (this.#ws !== ws || this.#ended || ws.readyState !== WebSocket.OPEN) return;
      this.#setToken(r.token, r.expiresAt);
      this.#refreshing = true;
      ws.send(JSON.stringify({ refresh: { token: r.token } }));
    }, Math.min(left * 0.8, MAX_TIMER_MS));
  }
}

function sendFrame(m) {
  return JSON.stringify({ send: { clientMessageId: m.clientMessageId, body: m.body } });
}

function parseTime(s) {
  if (!s) return 0;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : 0;
}

function defaultUrl() {
  const proto = globalThis.location && location.protocol === 'https:' ? 'wss:' : 'ws:';
  return proto + '//' + location.host + '/v1/chat';
}

// closeText explains a close code that came without a reason.
function closeText(code) {
  switch (code) {
    case 1000: return 'the service closed the stream';
    case 1001: return 'the service is going away';
    case 1006: return 'the connection was lost';
    case 1009: return 'a frame was too big';
    case 1011: return 'the service had an error';
    case 1012: return 'the service is restarting';
    case 1013: return 'the service is overloaded; try again later';
    case 4008: return 'too many streams or too slow';
    case 4010: return 'the room was opened elsewhere';
    case 4014: return 'the chat service is unavailable';
    case 4016: return 'the room pass was refused';
    default: return 'the stream ended (' + code + ')';
  }
}
