#!/usr/bin/env node
// Loopback SMTP submission server for mailer's integration tests: nodemailer's smtp-server
// speaking STARTTLS (or implicit TLS) and AUTH XOAUTH2 only, validating bearer tokens against
// the test's fake Entra the way Exchange Online would, and answering failures with Exchange's
// texts; or, with `google`, against the fake Google the way smtp.gmail.com does, answering
// with Gmail's texts. Started by tests/support/smtp.rs; see that file for the contract.
//
// Usage: node server.js '<json options>'
//   secure      bool    implicit TLS instead of STARTTLS (default false). With STARTTLS, AUTH
//                       before STARTTLS is refused (538, smtp-server's default).
//   introspect  string  URL of the fake Entra's test introspection endpoint; a token is good
//                       only when GET {introspect}?token=... answers 200 with resource
//                       https://outlook.office.com, scope .../SMTP.Send, not expired, and the
//                       same user as the XOAUTH2 user= (case-insensitive).
//   reject      {style: "535" | "334", count: N}  the first N AUTH attempts fail even with a
//                       good token; the style also applies to bad tokens.
//                       "535": immediate `535 5.7.3 Authentication unsuccessful`.
//                       "334": Gmail-style `334 <base64 JSON {"status":"401",...}>`, the client
//                       answers an empty line, then `535 5.7.3 Authentication unsuccessful`.
//   disabled    bool    every AUTH gets Exchange's "SmtpClientAuthentication is disabled" 535.
//   google      bool    Gmail's manner instead of Exchange's: `introspect` is the fake Google's;
//                       a token is good when it answers 200, not expired, scope
//                       https://mail.google.com/, not a service account's own token, and the
//                       same user as user= (case-insensitive). Every failure is Gmail's: `334 `
//                       + base64 {"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"},
//                       then, after the client's empty line, the two-line
//                       `535-5.7.8 Username and Password not accepted. Learn more at` /
//                       `535 5.7.8  https://support.google.com/mail/?p=BadCredentials <id> - gsmtp`.
//                       Greeting and the DATA answer end in `- gsmtp` too. `disabled` and
//                       `sendAsDenied` are Exchange's and do nothing here (Gmail accepts any MAIL
//                       FROM and rewrites an unverified From after submission).
//   sendAsDenied bool   a MAIL FROM other than the authenticated user gets Exchange's
//                       `550 5.7.60 SMTP; Client does not have permissions to send as this sender`
//                       (default: every send-as is allowed, as for a delegate with the right).
//   outDir      string  where accepted messages (<n>.eml, then <n>.json) and stats.json go.
//   greetingDelayMs  number  smtp-server waits 100 ms before its greeting to catch early
//                       talkers; benchmarks set 0 so that the client's own cost is measured.
// Recipients whose local part starts with "tempfail" get 451, "reject" get 550.
//
// Prints exactly one line to stdout, `PORT <n>`, once listening on 127.0.0.1. Exits when stdin
// reaches EOF (the parent test process went away) or on SIGTERM/SIGINT. Never logs tokens.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { SMTPServer } = require('smtp-server');
const SASL = require('smtp-server/lib/sasl.js');
const { SMTPConnection } = require('smtp-server/lib/smtp-connection.js');

const opts = JSON.parse(process.argv[2] || '{}');
const certs = path.join(__dirname, '..', 'certs');
const outDir = opts.outDir || null;

const SMTP_RESOURCE = 'https://outlook.office.com';
const SMTP_SCOPE = 'https://outlook.office.com/SMTP.Send';
const SMTP_APP_RESOURCE = 'https://outlook.office365.com';
const SMTP_APP_SCOPE = 'https://outlook.office365.com/SMTP.SendAsApp';
const AUTH_FAILED = '5.7.3 Authentication unsuccessful';
const AUTH_DISABLED =
  '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. ' +
  'Visit https://aka.ms/smtp_auth_disabled for more information.';
// What Gmail sends base64-encoded in its 334 challenge when it rejects a bearer token.
const GMAIL_CHALLENGE = { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' };
// Gmail mode: the scope Gmail's SMTP wants, and its challenge and refusal as observed and
// documented (xoauth2-protocol; the 5.7.8 form of 2021-2022 reports). Key order matters:
// the base64 is compared byte for byte with Gmail's.
const GOOGLE_MAIL_SCOPE = 'https://mail.google.com/';
const GOOGLE_CHALLENGE = { status: '400', schemes: 'Bearer', scope: GOOGLE_MAIL_SCOPE };
const google = !!opts.google;
const INTROSPECT_TIMEOUT_MS = 5000;

const rejectStyle = opts.reject ? String(opts.reject.style) : '535';
if (rejectStyle !== '535' && rejectStyle !== '334') {
  fail(`reject.style must be "535" or "334", not ${JSON.stringify(rejectStyle)}`);
}
let rejectLeft = opts.reject ? Number(opts.reject.count) || 0 : 0;

// smtp-server answers the client's reply to a failed-XOAUTH2 334 challenge with its own fixed
// text ("535 Error: Username and Password not accepted"); Exchange's text is wanted instead.
// smtp-connection looks the step up on this shared object at run time, so replacing it works.
if (typeof SASL.XOAUTH2_error !== 'function') {
  fail('smtp-server changed: SASL.XOAUTH2_error not found (see tests/support/smtp/server.js)');
}
SASL.XOAUTH2_error = function (_line, callback) {
  if (google) {
    // A multi-line reply: smtp-server writes `535-` on all lines but the last.
    this.send(535, [
      '5.7.8 Username and Password not accepted. Learn more at',
      `5.7.8  https://support.google.com/mail/?p=BadCredentials ${gsmtpId()} - gsmtp`,
    ]);
    return callback();
  }
  this.send(535, AUTH_FAILED);
  return callback();
};

/** A session id like the ones Gmail ends its replies with (`hx9sm5317360pbc.68`). */
function gsmtpId() {
  const hex = crypto.randomBytes(6).toString('hex');
  return `${hex.slice(0, 2)}${Date.now() % 1000000}sm${hex.slice(2)}`;
}

if (opts.greetingDelayMs !== undefined) {
  // smtp-connection's init() hard-codes the 100 ms early-talker wait; this is the same
  // method with the wait taken from the options.
  const delay = Number(opts.greetingDelayMs);
  SMTPConnection.prototype.init = function () {
    this._setListeners(() => {
      const timer = setTimeout(() => this.connectionReady(), delay);
      timer.unref();
    });
  };
}

const stats = { connections: 0, auth_ok: 0, auth_failed: 0, messages: 0 };
let messageSeq = 0;

function fail(message) {
  process.stderr.write(`smtp test server: ${message}\n`);
  process.exit(2);
}

/** Writes a file so that readers see either nothing or all of it. */
function writeAtomic(file, data) {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

function saveStats() {
  if (outDir) {
    writeAtomic(path.join(outDir, 'stats.json'), JSON.stringify(stats));
  }
}

function smtpError(code, message) {
  const err = new Error(message);
  err.responseCode = code;
  return err;
}

/** Asks the fake Entra what the token stands for; true only for a valid SMTP token of `user`. */
async function tokenIsGood(user, token) {
  if (!opts.introspect) {
    return false;
  }
  const url = `${opts.introspect}?token=${encodeURIComponent(token)}`;
  let res;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(INTROSPECT_TIMEOUT_MS) });
  } catch (e) {
    // The URL holds the token: log only what kind of failure it was.
    process.stderr.write(`smtp test server: introspection failed: ${e.name}\n`);
    return false;
  }
  if (res.status !== 200) {
    await res.arrayBuffer().catch(() => {});
    return false;
  }
  let info;
  try {
    info = await res.json();
  } catch (_e) {
    return false;
  }
  if (info.expired !== false || !Array.isArray(info.scopes)) {
    return false;
  }
  if (google) {
    // A service account's own token has no mailbox; one impersonating a user (domain-wide
    // delegation) is that user's, like a signed-in user's.
    return (
      info.app !== true &&
      info.scopes.includes(GOOGLE_MAIL_SCOPE) &&
      typeof info.user === 'string' &&
      info.user.toLowerCase() === String(user).toLowerCase()
    );
  }
  // An app-only token (client credentials) carries no user: Exchange lets an app with
  // SMTP.SendAsApp authenticate as any mailbox it was granted; the fake grants all.
  if (info.app === true) {
    return info.resource === SMTP_APP_RESOURCE && info.scopes.includes(SMTP_APP_SCOPE);
  }
  return (
    info.resource === SMTP_RESOURCE &&
    info.scopes.includes(SMTP_SCOPE) &&
    typeof info.user === 'string' &&
    info.user.toLowerCase() === String(user).toLowerCase()
  );
}

const server = new SMTPServer({
  secure: !!opts.secure,
  key: fs.readFileSync(path.join(certs, 'server-key.pem')),
  cert: fs.readFileSync(path.join(certs, 'server.pem')),
  name: 'localhost',
  banner: google ? 'mailer test SMTP server, Gmail manner - gsmtp' : 'mailer test SMTP server',
  authMethods: ['XOAUTH2'],
  disableReverseLookup: true,
  size: 200 * 1024 * 1024,
  logger: false,

  onAuth(auth, _session, callback) {
    const finish = (ok) => {
      if (ok) {
        stats.auth_ok += 1;
        saveStats();
        return callback(null, { user: auth.username });
      }
      stats.auth_failed += 1;
      saveStats();
      if (google) {
        // No `user` in the response: smtp-server sends `334 base64(JSON(data))`, waits for the
        // client's next line and then runs SASL.XOAUTH2_error (replaced above).
        return callback(null, { data: GOOGLE_CHALLENGE });
      }
      if (opts.disabled) {
        return callback(smtpError(535, AUTH_DISABLED));
      }
      if (rejectStyle === '334') {
        // No `user` in the response: smtp-server sends `334 base64(JSON(data))`, waits for the
        // client's next line and then runs SASL.XOAUTH2_error (replaced above).
        return callback(null, { data: GMAIL_CHALLENGE });
      }
      return callback(smtpError(535, AUTH_FAILED));
    };
    if (auth.method !== 'XOAUTH2' || (opts.disabled && !google)) {
      return finish(false);
    }
    if (rejectLeft > 0) {
      rejectLeft -= 1;
      return finish(false);
    }
    tokenIsGood(auth.username, auth.accessToken).then(finish, () => finish(false));
  },

  onMailFrom(address, session, callback) {
    const from = String(address.address).toLowerCase();
    if (!google && opts.sendAsDenied && session.user && from !== String(session.user).toLowerCase()) {
      return callback(
        smtpError(550, '5.7.60 SMTP; Client does not have permissions to send as this sender'),
      );
    }
    callback();
  },

  onRcptTo(address, _session, callback) {
    const local = String(address.address).split('@')[0].toLowerCase();
    if (local.startsWith('tempfail')) {
      return callback(smtpError(451, '4.3.0 Temporary failure'));
    }
    if (local.startsWith('reject')) {
      return callback(smtpError(550, '5.1.1 User unknown'));
    }
    callback();
  },

  onData(stream, session, callback) {
    const chunks = [];
    let size = 0;
    stream.on('data', (chunk) => {
      chunks.push(chunk);
      size += chunk.length;
    });
    stream.on('error', (e) => callback(e));
    stream.on('end', () => {
      if (stream.sizeExceeded) {
        return callback(smtpError(552, '5.3.4 Message size exceeds fixed maximum message size'));
      }
      messageSeq += 1;
      const n = messageSeq;
      if (outDir) {
        // The .eml first; the .json's presence tells readers the message is complete.
        writeAtomic(path.join(outDir, `${n}.eml`), Buffer.concat(chunks, size));
        writeAtomic(
          path.join(outDir, `${n}.json`),
          JSON.stringify({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            user: session.user || '',
            secure: !!session.secure,
            size,
          }),
        );
      }
      stats.messages += 1;
      saveStats();
      if (google) {
        return callback(null, `2.0.0 OK  ${Math.floor(Date.now() / 1000)} ${gsmtpId()} - gsmtp`);
      }
      callback(null, `2.6.0 Queued as message ${n}`);
    });
  },
});

// Every TCP connection counts, also one that never completes the TLS handshake of implicit
// TLS (smtp-server's onConnect would only see those that do).
server.server.on('connection', () => {
  stats.connections += 1;
  saveStats();
});

server.on('error', (e) => {
  // Client-side resets and TLS failures land here; they are not the server's failures.
  process.stderr.write(`smtp test server: ${e.code || e.name}: ${e.message}\n`);
});

if (outDir) {
  fs.mkdirSync(outDir, { recursive: true });
  saveStats();
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.server.address().port}\n`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
// The parent holds our stdin open; EOF means it is gone, so stop rather than linger.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
