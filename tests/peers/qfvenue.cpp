// qfvenue: a QuickFIX C++ FIX 4.4 venue (initiator over mTLS) that streams market data and
// executions with proper repeating groups, for the bridge end-to-end tests.
//
//   qfvenue SETTINGS_FILE
//
// stdout (flushed): READY, LOGON <sid>, LOGOUT <sid>, SENT <n>, ERROR ...
// stdin commands:
//   script        send the fixed script: W EUR/USD, W USD/JPY, X (changes + trade), S, 8, 8
//   burst N       send N incremental refreshes (X) for EUR/USD with rising prices
//   execs N RATE LEN [P] send N execution reports at RATE per second, each with a LEN-byte Text (58)
//                      and ExecID P<i> (P defaults to "E-")
//   exec ACCOUNT  one execution report for Account (1) = the rest of the line (spaces kept)
//   quote SYMBOL  one Quote for Symbol (55) = the rest of the line (spaces kept)
//   logout | quit
#include <quickfix/Application.h>
#include <quickfix/FileLog.h>
#include <quickfix/FileStore.h>
#include <quickfix/Message.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/ThreadedSSLSocketInitiator.h>
#include <quickfix/fix44/ExecutionReport.h>
#include <quickfix/fix44/MarketDataIncrementalRefresh.h>
#include <quickfix/fix44/MarketDataSnapshotFullRefresh.h>
#include <quickfix/fix44/Quote.h>

#include <chrono>
#include <iostream>
#include <thread>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

static std::mutex out_mu;

static void emit(const std::string &line) {
  std::lock_guard<std::mutex> g(out_mu);
  std::cout << line << std::endl;
}

class Venue : public FIX::Application {
public:
  void onCreate(const FIX::SessionID &) override {}
  void onLogon(const FIX::SessionID &s) override { emit("LOGON " + s.toString()); }
  void onLogout(const FIX::SessionID &s) override { emit("LOGOUT " + s.toString()); }
  void toAdmin(FIX::Message &, const FIX::SessionID &) override {}
  void toApp(FIX::Message &, const FIX::SessionID &) throw(FIX::DoNotSend) override {}
  void fromAdmin(const FIX::Message &, const FIX::SessionID &) throw(FIX::FieldNotFound, FIX::IncorrectDataFormat,
                                         FIX::IncorrectTagValue, FIX::RejectLogon) override {}
  void fromApp(const FIX::Message &, const FIX::SessionID &) throw(FIX::FieldNotFound, FIX::IncorrectDataFormat,
                                       FIX::IncorrectTagValue, FIX::UnsupportedMessageType) override {}
};

typedef std::vector<std::pair<int, std::string>> Fields;

template <class G> static void add_entry(FIX::Message &m, const Fields &fs) {
  G g;
  for (const auto &f : fs)
    g.setField(f.first, f.second);
  m.addGroup(g);
}

static bool send(FIX::Message &m, const FIX::SessionID &sid) { return FIX::Session::sendToTarget(m, sid); }

static int script(const FIX::SessionID &sid) {
  int n = 0;
  {
    FIX44::MarketDataSnapshotFullRefresh w;
    w.setField(55, "EUR/USD");
    w.setField(262, "REQ-1");
    typedef FIX44::MarketDataSnapshotFullRefresh::NoMDEntries E;
    add_entry<E>(w, {{269, "0"}, {270, "1.08760"}, {271, "1000000"}, {290, "1"}});
    add_entry<E>(w, {{269, "0"}, {270, "1.08755"}, {271, "2500000.50"}, {290, "2"}});
    add_entry<E>(w, {{269, "1"}, {270, "1.08770"}, {271, "2000000"}, {290, "1"}});
    n += send(w, sid);
  }
  {
    FIX44::MarketDataSnapshotFullRefresh w;
    w.setField(55, "USD/JPY");
    typedef FIX44::MarketDataSnapshotFullRefresh::NoMDEntries E;
    add_entry<E>(w, {{269, "0"}, {270, "151.230"}, {271, "5000000"}});
    add_entry<E>(w, {{269, "1"}, {270, "151.250"}, {271, "4000000"}});
    n += send(w, sid);
  }
  {
    FIX44::MarketDataIncrementalRefresh x;
    typedef FIX44::MarketDataIncrementalRefresh::NoMDEntries E;
    add_entry<E>(x, {{279, "1"}, {269, "0"}, {55, "EUR/USD"}, {270, "1.08761"}, {271, "1500000"}, {290, "1"}});
    add_entry<E>(x, {{279, "0"}, {269, "2"}, {55, "EUR/USD"}, {270, "1.08765"}, {271, "250000"}, {278, "T-1"}});
    add_entry<E>(x, {{279, "2"}, {269, "1"}, {55, "EUR/USD"}, {278, "ask-2"}});
    add_entry<E>(x, {{279, "0"}, {269, "1"}, {55, "USD/JPY"}, {270, "151.245"}, {271, "3000000"}});
    n += send(x, sid);
  }
  {
    FIX44::Quote s;
    s.setField(117, "Q-1");
    s.setField(55, "USD/JPY");
    s.setField(132, "151.240");
    s.setField(133, "151.260");
    s.setField(134, "1000000");
    s.setField(135, "2000000");
    n += send(s, sid);
  }
  const char *execs[2][6] = {{"O-1", "E-1", "250000", "750000", "1.08765", "ACC-7"},
                             {"O-1", "E-2", "750000", "0", "1.087662500", "ACC-7"}};
  for (auto &e : execs) {
    FIX44::ExecutionReport r;
    r.setField(37, e[0]);
    r.setField(11, "C-1");
    r.setField(17, e[1]);
    r.setField(150, "F");
    r.setField(39, std::string(e[3]) == "0" ? "2" : "1");
    r.setField(54, "1");
    r.setField(55, "EUR/USD");
    r.setField(38, "1000000");
    r.setField(44, "1.08770");
    r.setField(31, "1.08765");
    r.setField(32, e[2]);
    r.setField(14, std::string(e[3]) == "0" ? "1000000" : "250000");
    r.setField(151, e[3]);
    r.setField(6, e[4]);
    r.setField(1, e[5]);
    r.setField(60, "20240102-10:00:00.123");
    n += send(r, sid);
  }
  return n;
}

static int burst(const FIX::SessionID &sid, int count) {
  int n = 0;
  for (int i = 0; i < count; i++) {
    FIX44::MarketDataIncrementalRefresh x;
    typedef FIX44::MarketDataIncrementalRefresh::NoMDEntries E;
    std::string px = "1." + std::to_string(100000 + i);
    add_entry<E>(x, {{279, "1"}, {269, "0"}, {55, "EUR/USD"}, {270, px}, {271, "1000000"}});
    n += send(x, sid);
  }
  return n;
}

static int execs(const FIX::SessionID &sid, int count, int rate, int len, const std::string &idp) {
  int n = 0;
  std::string text(len > 0 ? len : 1, 'x');
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; i++) {
    if (rate > 0) {
      auto due = start + std::chrono::microseconds((long long)i * 1000000 / rate);
      std::this_thread::sleep_until(due);
    }
    FIX44::ExecutionReport r;
    r.setField(37, "O-" + std::to_string(i));
    r.setField(17, idp + std::to_string(i));
    r.setField(150, "0");
    r.setField(39, "0");
    r.setField(54, "2");
    r.setField(55, "EUR/USD");
    r.setField(38, std::to_string(1000 + i) + ".25");
    r.setField(1, "BULK");
    r.setField(58, text);
    n += send(r, sid);
  }
  return n;
}

static int one_exec(const FIX::SessionID &sid, const std::string &account) {
  static int seq = 0;
  seq++;
  FIX44::ExecutionReport r;
  r.setField(37, "OA-" + std::to_string(seq));
  r.setField(17, "EA-" + std::to_string(seq));
  r.setField(150, "0");
  r.setField(39, "0");
  r.setField(54, "1");
  r.setField(55, "EUR/USD");
  r.setField(38, "100");
  r.setField(1, account);
  return send(r, sid);
}

static int one_quote(const FIX::SessionID &sid, const std::string &symbol) {
  static int seq = 0;
  seq++;
  FIX44::Quote q;
  q.setField(117, "QA-" + std::to_string(seq));
  q.setField(55, symbol);
  q.setField(132, "1.5");
  q.setField(133, "1.6");
  return send(q, sid);
}

/// The rest of the line after the command word and one space.
static std::string rest(const std::string &line, const std::string &cmd) {
  return line.size() > cmd.size() + 1 ? line.substr(cmd.size() + 1) : std::string();
}

int main(int argc, char **argv) {
  if (argc != 2) {
    std::cerr << "usage: qfvenue SETTINGS" << std::endl;
    return 2;
  }
  try {
    FIX::SessionSettings settings(argv[1]);
    Venue app;
    FIX::FileStoreFactory store(settings);
    FIX::FileLogFactory log(settings);
    FIX::ThreadedSSLSocketInitiator ini(app, store, settings, log);
    ini.start();
    const std::set<FIX::SessionID> ids = settings.getSessions();
    if (ids.empty())
      throw std::runtime_error("no session in settings");
    FIX::SessionID sid = *ids.begin();
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
      if (cmd == "script") {
        emit("SENT " + std::to_string(script(sid)));
      } else if (cmd == "burst") {
        int count = 0;
        in >> count;
        emit("SENT " + std::to_string(burst(sid, count)));
      } else if (cmd == "execs") {
        int count = 0, rate = 0, len = 0;
        std::string idp;
        in >> count >> rate >> len >> idp;
        if (idp.empty()) idp = "E-";
        emit("SENT " + std::to_string(execs(sid, count, rate, len, idp)));
      } else if (cmd == "exec") {
        emit("SENT " + std::to_string(one_exec(sid, rest(line, cmd))));
      } else if (cmd == "quote") {
        emit("SENT " + std::to_string(one_quote(sid, rest(line, cmd))));
      } else if (cmd == "logout") {
        s->logout("bye from qfvenue");
        emit("OK");
      } else if (cmd == "quit") {
        break;
      }
    }
    ini.stop();
  } catch (std::exception &e) {
    std::cerr << "qfvenue: " << e.what() << std::endl;
    emit(std::string("FATAL ") + e.what());
    return 1;
  }
  return 0;
}
