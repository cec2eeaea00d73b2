// A jspurefix (pure Node FIX engine) test peer for fixcurve's interop tests, driven line by
// line like the QuickFIX peer.
//
// Usage: node jspeer.js initiator|acceptor SETTINGS.json
// SETTINGS: {host, port, sender, target, heartbeat, key, cert, ca, store} (absolute paths;
// port 0 for an acceptor picks a free port, reported on stderr as
// `listening: jspurefix HOST:PORT`; `store` is jspurefix's file store folder, which keeps its
// sequence numbers across connections). An initiator whose connection drops starts a new
// session on the same store, as a production deployment of jspurefix would.
// stdout: `LOGON`, `IN <fix>`, `OUT <fix>` (fields joined with '|'), `LOGOUT`,
// `SEQ sender=N target=M` (next we send / next we expect).
// stdin: `send_er SYMBOL`, `resend N` (ResendRequest 7=N 16=0), `skip K` (our next MsgSeqNum
// jumps by K: a gap for the peer), `seq`, `logout`.
'use strict'
require('reflect-metadata')
const fs = require('fs')
const readline = require('readline')
const { SessionLauncher } = require('jspurefix/dist/runtime')
const { AsciiSession } = require('jspurefix/dist/transport')

const [role, settingsPath] = process.argv.slice(2)
const s = JSON.parse(fs.readFileSync(settingsPath, 'utf8'))
const pipe = (txt) => txt.replace(/\x01/g, '|')
let session = null
let execId = 0

class PeerSession extends AsciiSession {
  constructor (config) {
    super(config)
    this.logReceivedMsgs = false
    session = this
  }
  onApplicationMsg (msgType, view) {}
  onDecoded (msgType, txt) { console.log(`IN ${pipe(txt)}`) }
  onEncoded (msgType, txt) { console.log(`OUT ${pipe(txt)}`) }
  onLogon (view, user, password) { return true }
  onReady (view) { console.log('LOGON') }
  onStopped () { console.log('LOGOUT') }
}

const pem = (p) => fs.readFileSync(p, 'utf8')
// jspurefix reads key/cert/ca paths relative to its own package folder, so hand it the
// contents through Node's TLS options instead.
const tls = {
  timeout: 10000,
  requestCert: role === 'acceptor',
  rejectUnauthorized: true,
  nodeTlsServerOptions: { key: pem(s.key), cert: pem(s.cert), ca: [pem(s.ca)], requestCert: true, rejectUnauthorized: true },
  nodeTlsConnectionOptions: { key: pem(s.key), cert: pem(s.cert), ca: [pem(s.ca)], servername: 'localhost' }
}
const description = {
  application: {
    reconnectSeconds: 1,
    type: role,
    name: `jspeer-${role}`,
    tcp: { host: s.host, port: s.port, tls },
    protocol: 'ascii',
    dictionary: 'qf44'
  },
  EncryptMethod: 0,
  ResetSeqNumFlag: false,
  HeartBtInt: s.heartbeat,
  SenderCompId: s.sender,
  TargetCompID: s.target,
  BeginString: 'FIX.4.4',
  BodyLengthChars: 6,
  store: { type: 'file', directory: s.store }
}

class Launcher extends SessionLauncher {
  constructor () {
    super(role === 'initiator' ? description : null, role === 'acceptor' ? description : null)
  }
  makeFactory (config) {
    return { makeSession: (c) => new PeerSession(c) }
  }
}

let launcher = null
let stopping = false
function launch () {
  launcher = new Launcher()
  launcher.run()
    .catch((e) => console.error(`jspeer: session ended: ${e}`))
    .then(() => {
      if (role === 'initiator' && !stopping) setTimeout(launch, 200)
    })
}
launch()

if (role === 'acceptor') {
  const poll = setInterval(() => {
    const entity = launcher.acceptorEntity
    const server = entity && entity.acceptor && entity.acceptor.server
    const addr = server && server.listening && server.address()
    if (addr) {
      clearInterval(poll)
      console.error(`listening: jspurefix 127.0.0.1:${addr.port}`)
    }
  }, 20)
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/)
  if (!session) { console.log(`ERR no session for ${cmd}`); return }
  const tx = session.transport && session.transport.transmitter
  switch (cmd) {
    case 'send_er':
      execId++
      session.send('8', {
        OrderID: `JS${execId}`, ExecID: `JSE${execId}`, ExecType: '0', OrdStatus: '0', Side: '1',
        Instrument: { Symbol: arg }, LeavesQty: 100, CumQty: 0, AvgPx: 0
      })
      break
    case 'resend':
      session.sendResendRequest(Number(arg) - 1, 0)
      break
    case 'skip':
      if (tx) tx.msgSeqNum += Number(arg)
      break
    case 'seq':
      console.log(`SEQ sender=${tx ? tx.msgSeqNum : '?'} target=${session.sessionState.lastPeerMsgSeqNum + 1}`)
      break
    case 'logout':
      stopping = true
      session.done()
      break
    default:
      console.log(`ERR unknown command ${cmd}`)
  }
})
