"""A QuickFIX initiator from the `quickfix-ssl` wheel (QuickFIX 1.15 with its OpenSSL
transports, as Python shops install it), driven line by line for the interop tests.

Usage: qfpy.py SETTINGS_FILE
stdout: `LOGON <session>`, `LOGOUT <session>`, `ADMIN_IN <fix>`, `APP_IN <fix>` (fields
joined with '|'). stdin: `logout` (Logout and stay stopped), `quit`.
"""

import sys

import quickfix as fix


def show(msg):
    return msg.toString().replace("\x01", "|")


class App(fix.Application):
    def __init__(self):
        super().__init__()
        self.sessions = []

    def onCreate(self, sid):
        self.sessions.append(sid)

    def onLogon(self, sid):
        print(f"LOGON {sid}", flush=True)

    def onLogout(self, sid):
        print(f"LOGOUT {sid}", flush=True)

    def toAdmin(self, msg, sid):
        pass

    def fromAdmin(self, msg, sid):
        print(f"ADMIN_IN {show(msg)}", flush=True)

    def toApp(self, msg, sid):
        pass

    def fromApp(self, msg, sid):
        print(f"APP_IN {show(msg)}", flush=True)


def main():
    settings = fix.SessionSettings(sys.argv[1])
    app = App()
    initiator = fix.SSLSocketInitiator(app, fix.FileStoreFactory(settings), settings,
                                       fix.FileLogFactory(settings))
    initiator.start()
    print("STARTED", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "logout":
            for sid in app.sessions:
                session = fix.Session.lookupSession(sid)
                if session is not None:
                    session.logout("done")
        elif cmd == "quit":
            break
    initiator.stop()


if __name__ == "__main__":
    main()
