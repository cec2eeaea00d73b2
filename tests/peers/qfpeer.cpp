// qfpeer: a QuickFIX C++ test peer driven over stdin/stdout by the interop tests.
//
//   qfpeer initiator|acceptor ssl|plain SETTINGS_FILE
//
// stdout (one line per event, flushed): LISTENING <port> (acceptors), READY, LOGON <sid>, LOGOUT <sid>,
//   ADMIN_IN|APP_IN|ADMIN_OUT|APP_OUT <message with '|' as separator>, SEQ sender=N target=M
// stdin commands:
//   send <MsgType> [tag=value|tag=value...]   application message to the session's peer
//   next_target N / next_sender N              move QuickFIX's expected/next seqnums (gap tests)
//   seq | logout | quit
#include <quickfix/Application.h>
#include <quickfix/FileLog.h>
#include <quickfix/FileStore.h>
#include <quickfix/Message.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/SocketAcceptor.h>
#include <quickfix/SocketInitiator.h>
#include <quickfix/ThreadedSSLSocketAcceptor.h>
#include <quickfix/ThreadedSSLSocketInitiator.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>

static std::mutex out_mu;

static void emit(const std::string &line) {
  std::lock_guard<std::mutex> g(out_mu);
  std::cout << line << std::endl;
}

static std::string pretty(const FIX::Message &m) {
  std::string s = m.toString();
  for (auto &c : s)
    if (c == '\001')
      c = '|';
  return s;
}

class Peer : public FIX::Application {
public:
  void onCreate(const FIX::SessionID &) override {}
  void onLogon(const FIX::SessionID &s) override { emit("LOGON " + s.toString()); }
  void onLogout(const FIX::SessionID &s) override { emit("LOGOUT " + s.toString()); }
  void toAdmin(FIX::Message &m, const FIX::SessionID &) override { emit("ADMIN_OUT " + pretty(m)); }
  void toApp(FIX::Message &m, const FIX::SessionID &) throw(FIX::DoNotSend) override {
    emit("APP_OUT " + pretty(m));
  }
  void fromAdmin(const FIX::Message &m, const FIX::SessionID &) throw(FIX::FieldNotFound, FIX::IncorrectDataFormat,
                                         FIX::IncorrectTagValue, FIX::RejectLogon) override {
    emit("ADMIN_IN " + pretty(m));
  }
  void fromApp(const FIX::Message &m, const FIX::SessionID &) throw(FIX::FieldNotFound, FIX::IncorrectDataFormat,
                                       FIX::IncorrectTagValue, FIX::UnsupportedMessageType) override {
    emit("APP_IN " + pretty(m));
  }
};

int main(int argc, char **argv) {
  if (argc != 4) {
    std::cerr << "usage: qfpeer initiator|acceptor ssl|plain SETTINGS" << std::endl;
    return 2;
  }
  std::string role = argv[1], tls = argv[2];
  try {
    FIX::SessionSettings settings(argv[3]);
    Peer app;
    FIX::FileStoreFactory store(settings);
    FIX::FileLogFactory log(settings);
    std::unique_ptr<FIX::Initiator> ini;
    std::unique_ptr<FIX::Acceptor> acc;
    bool ssl = tls == "ssl";
    if (role == "initiator") {
      if (ssl)
        ini.reset(new FIX::ThreadedSSLSocketInitiator(app, store, settings, log));
      else
        ini.reset(new FIX::SocketInitiator(app, store, settings, log));
      ini->start();
    } else {
      if (ssl)
        acc.reset(new FIX::ThreadedSSLSocketAcceptor(app, store, settings, log));
      else
        acc.reset(new FIX::SocketAcceptor(app, store, settings, log));
      acc->start();
    }
    const std::set<FIX::SessionID> ids = settings.getSessions();
    if (ids.empty())
      throw std::runtime_error("no session in settings");
    FIX::SessionID sid = *ids.begin();
    if (acc) {
      // SocketAcceptPort=0 binds an ephemeral port; report it so tests never guess ports.
      for (int fd = 3; fd < 1024; ++fd) {
        int listening = 0;
        socklen_t len = sizeof(listening);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
          continue;
        sockaddr_in addr{};
        socklen_t alen = sizeof(addr);
        if (getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &alen) == 0 &&
            addr.sin_family == AF_INET)
          emit("LISTENING " + std::to_string(ntohs(addr.sin_port)));
      }
    }
    emit("READY");
    std::string line;
    while (std::getline(std::cin, line)) {
      std::istringstream in(line);
      std::string cmd;
      in >> cmd;
      FIX::Session *s = FIX::Session::lookupSession(sid);
      if (!s) {
        emit("ERROR no session");
        continue;
      }
      if (cmd == "send") {
        std::string type, fields;
        in >> type;
        std::getline(in, fields);
        FIX::Message m;
        m.getHeader().setField(FIX::MsgType(type));
        std::istringstream fs(fields);
        std::string kv;
        while (std::getline(fs, kv, '|')) {
          size_t b = kv.find_first_not_of(' ');
          if (b == std::string::npos)
            continue;
          kv = kv.substr(b);
          size_t eq = kv.find('=');
          if (eq == std::string::npos)
            continue;
          m.setField(std::stoi(kv.substr(0, eq)), kv.substr(eq + 1));
        }
        bool ok = FIX::Session::sendToTarget(m, sid);
        emit(ok ? "SENT" : "ERROR send failed");
      } else if (cmd == "next_target") {
        int n;
        in >> n;
        s->setNextTargetMsgSeqNum(n);
        emit("OK");
      } else if (cmd == "next_sender") {
        int n;
        in >> n;
        s->setNextSenderMsgSeqNum(n);
        emit("OK");
      } else if (cmd == "seq") {
        emit("SEQ sender=" + std::to_string(s->getExpectedSenderNum()) +
             " target=" + std::to_string(s->getExpectedTargetNum()));
      } else if (cmd == "logout") {
        s->logout("bye from qfpeer");
        emit("OK");
      } else if (cmd == "quit") {
        break;
      }
    }
    if (ini)
      ini->stop();
    if (acc)
      acc->stop();
  } catch (std::exception &e) {
    std::cerr << "qfpeer: " << e.what() << std::endl;
    emit(std::string("FATAL ") + e.what());
    return 1;
  }
  return 0;
}
