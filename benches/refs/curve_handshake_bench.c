/* CURVE handshake rate and per-subscriber memory, with stock libzmq on both sides of the
 * reference and as the client of fixcurve's publisher.
 *
 *   client ENDPOINT SERVER_PUB CLIENT_SECRET N MSGS
 *       Opens N SUB sockets (CURVE client, subscribed to everything) spread over threads of
 *       50, prints "READY" and waits for a line on stdin (so several client processes can
 *       start together), connects them all at once and waits on socket monitors until N
 *       handshakes succeeded. Prints "HANDSHAKES n secs failed t0" (t0: when the connects
 *       began, CLOCK_MONOTONIC seconds, comparable across processes); then, when MSGS > 0, waits until every socket received
 *       MSGS messages and prints "RECEIVED n". Then waits for a line on stdin (the driver
 *       measures the server meanwhile), closes everything and prints "CLOSED".
 *   server SERVER_SECRET CLIENT_PUB
 *       The reference: a libzmq PUB socket, CURVE server, behind a ZAP handler thread that
 *       allows exactly CLIENT_PUB (as pyzmq's authenticator does, keys in a set), bound to a
 *       free loopback port (listen backlog from HANDSHAKE_REF_BACKLOG, else libzmq's 100). Prints "ENDPOINT tcp://..."; then reads lines from stdin:
 *       "send N SIZE" publishes N messages of SIZE bytes, "quit" exits.
 *
 * Build: gcc -O2 -o curve_handshake_bench curve_handshake_bench.c -lzmq -lpthread
 */
#include <zmq.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

static double now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void raise_fd_limit (void)
{
    struct rlimit rl;
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit (RLIMIT_NOFILE, &rl);
    }
}

static void die (const char *what)
{
    fprintf (stderr, "%s: %s\n", what, zmq_strerror (zmq_errno ()));
    exit (1);
}

/* Reads one monitor event; returns its id, or -1. */
static int read_event (void *mon)
{
    zmq_msg_t m;
    zmq_msg_init (&m);
    if (zmq_msg_recv (&m, mon, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&m);
        return -1;
    }
    int ev = -1;
    if (zmq_msg_size (&m) >= 2) {
        unsigned char *d = zmq_msg_data (&m);
        ev = d[0] | (d[1] << 8);
    }
    int more = zmq_msg_more (&m);
    zmq_msg_close (&m);
    if (more) { /* the endpoint frame */
        zmq_msg_init (&m);
        zmq_msg_recv (&m, mon, 0);
        zmq_msg_close (&m);
    }
    return ev;
}

/* One client thread's share of the sockets: zmq_poll costs O(sockets) per call, so one
 * thread polling 1,000 monitors would time itself, not the server. */
struct share {
    void *ctx;
    const char *ep, *server_pub, *client_secret;
    char client_pub[41];
    int first, count, io_threads;
    long msgs;
    pthread_barrier_t *ready, *go, *received, *close;
    int ok, failed, complete;
    double done_at;
};

static void *client_share (void *p)
{
    struct share *s = p;
    int n = s->count;
    void **subs = calloc (n, sizeof (void *));
    void **mons = calloc (n, sizeof (void *));
    zmq_pollitem_t *items = calloc (n, sizeof (zmq_pollitem_t));
    char *done = calloc (n, 1);
    for (int i = 0; i < n; i++) {
        subs[i] = zmq_socket (s->ctx, ZMQ_SUB);
        if (!subs[i])
            die ("zmq_socket");
        int zero = 0;
        zmq_setsockopt (subs[i], ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt (subs[i], ZMQ_RCVHWM, &zero, sizeof zero);
        /* One attempt: a failed handshake is counted, not retried behind our back. */
        int no_reconnect = -1;
        zmq_setsockopt (subs[i], ZMQ_RECONNECT_IVL, &no_reconnect, sizeof no_reconnect);
        zmq_setsockopt (subs[i], ZMQ_CURVE_SERVERKEY, s->server_pub, 40);
        zmq_setsockopt (subs[i], ZMQ_CURVE_PUBLICKEY, s->client_pub, 40);
        zmq_setsockopt (subs[i], ZMQ_CURVE_SECRETKEY, s->client_secret, 40);
        zmq_setsockopt (subs[i], ZMQ_SUBSCRIBE, "", 0);
        if (s->io_threads > 1) {
            /* Spread the sockets over the I/O threads: libzmq picks the least loaded one at
             * connect time, and a burst of connects all sees the same (empty) load. */
            uint64_t affinity = 1ULL << ((s->first + i) % s->io_threads);
            zmq_setsockopt (subs[i], ZMQ_AFFINITY, &affinity, sizeof affinity);
        }
        char addr[64];
        snprintf (addr, sizeof addr, "inproc://mon-%d", s->first + i);
        if (zmq_socket_monitor (subs[i], addr,
                                ZMQ_EVENT_HANDSHAKE_SUCCEEDED
                                  | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
                                  | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                                  | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                                  | ZMQ_EVENT_DISCONNECTED)
            != 0)
            die ("zmq_socket_monitor");
        mons[i] = zmq_socket (s->ctx, ZMQ_PAIR);
        if (zmq_connect (mons[i], addr) != 0)
            die ("monitor connect");
        items[i].socket = mons[i];
        items[i].events = ZMQ_POLLIN;
    }
    pthread_barrier_wait (s->ready);
    pthread_barrier_wait (s->go);
    for (int i = 0; i < n; i++)
        if (zmq_connect (subs[i], s->ep) != 0)
            die ("zmq_connect");
    while (s->ok + s->failed < n) {
        if (zmq_poll (items, n, 10000) <= 0) {
            fprintf (stderr, "handshakes stalled at %d ok %d failed\n", s->ok, s->failed);
            break;
        }
        for (int i = 0; i < n; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            int ev;
            while ((ev = read_event (mons[i])) >= 0) {
                if (done[i])
                    continue;
                done[i] = 1;
                if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
                    s->ok++;
                else
                    s->failed++;
            }
        }
    }
    s->done_at = now_s ();
    pthread_barrier_wait (s->received); /* all handshakes timed */
    if (s->msgs > 0) {
        for (int i = 0; i < n; i++) {
            items[i].socket = subs[i];
            items[i].events = ZMQ_POLLIN;
        }
        long *got = calloc (n, sizeof (long));
        while (s->complete < n) {
            if (zmq_poll (items, n, 10000) <= 0) {
                fprintf (stderr, "receive stalled: %d of %d sockets complete\n", s->complete, n);
                break;
            }
            for (int i = 0; i < n; i++) {
                if (!(items[i].revents & ZMQ_POLLIN))
                    continue;
                zmq_msg_t m;
                zmq_msg_init (&m);
                while (zmq_msg_recv (&m, subs[i], ZMQ_DONTWAIT) >= 0) {
                    if (!zmq_msg_more (&m) && ++got[i] == s->msgs)
                        s->complete++;
                }
                zmq_msg_close (&m);
            }
        }
        free (got);
    }
    pthread_barrier_wait (s->received); /* all messages in */
    pthread_barrier_wait (s->close);
    for (int i = 0; i < n; i++) {
        zmq_socket_monitor (subs[i], NULL, 0);
        zmq_close (mons[i]);
        zmq_close (subs[i]);
    }
    free (subs);
    free (mons);
    free (items);
    free (done);
    return NULL;
}

#define PER_THREAD 50

static int run_client (const char *ep, const char *server_pub, const char *client_secret,
                       int n, long msgs)
{
    raise_fd_limit ();
    void *ctx = zmq_ctx_new ();
    zmq_ctx_set (ctx, ZMQ_MAX_SOCKETS, 4 * n + 64);
    /* HANDSHAKE_CLIENT_IO_THREADS: libzmq I/O threads of the client (default 1, libzmq's). */
    const char *io = getenv ("HANDSHAKE_CLIENT_IO_THREADS");
    int io_threads = io ? atoi (io) : 1;
    if (io_threads < 1 || io_threads > 64)
        io_threads = 1;
    zmq_ctx_set (ctx, ZMQ_IO_THREADS, io_threads);
    int nt = (n + PER_THREAD - 1) / PER_THREAD;
    pthread_barrier_t ready, go, received, close;
    pthread_barrier_init (&ready, NULL, nt + 1);
    pthread_barrier_init (&go, NULL, nt + 1);
    pthread_barrier_init (&received, NULL, nt + 1);
    pthread_barrier_init (&close, NULL, nt + 1);
    struct share *shares = calloc (nt, sizeof (struct share));
    pthread_t *threads = calloc (nt, sizeof (pthread_t));
    for (int t = 0; t < nt; t++) {
        struct share *s = &shares[t];
        s->ctx = ctx;
        s->ep = ep;
        s->server_pub = server_pub;
        s->client_secret = client_secret;
        if (zmq_curve_public (s->client_pub, client_secret) != 0)
            die ("zmq_curve_public");
        s->first = t * PER_THREAD;
        s->count = n - s->first < PER_THREAD ? n - s->first : PER_THREAD;
        s->msgs = msgs;
        s->io_threads = io_threads;
        s->ready = &ready;
        s->go = &go;
        s->received = &received;
        s->close = &close;
        pthread_create (&threads[t], NULL, client_share, s);
    }
    pthread_barrier_wait (&ready);
    printf ("READY\n");
    fflush (stdout);
    char go_line[64];
    if (!fgets (go_line, sizeof go_line, stdin)) {
        /* the driver went away: go anyway */
    }
    pthread_barrier_wait (&go);
    double t0 = now_s ();
    pthread_barrier_wait (&received);
    int ok = 0, failed = 0;
    double t1 = t0;
    for (int t = 0; t < nt; t++) {
        ok += shares[t].ok;
        failed += shares[t].failed;
        if (shares[t].done_at > t1)
            t1 = shares[t].done_at;
    }
    printf ("HANDSHAKES %d %.6f %d %.6f\n", ok, t1 - t0, failed, t0);
    fflush (stdout);
    pthread_barrier_wait (&received);
    if (msgs > 0) {
        int complete = 0;
        for (int t = 0; t < nt; t++)
            complete += shares[t].complete;
        printf ("RECEIVED %d\n", complete);
        fflush (stdout);
    }
    char line[64];
    if (!fgets (line, sizeof line, stdin)) {
        /* the driver went away: close anyway */
    }
    pthread_barrier_wait (&close);
    for (int t = 0; t < nt; t++)
        pthread_join (threads[t], NULL);
    zmq_ctx_term (ctx);
    printf ("CLOSED\n");
    fflush (stdout);
    return 0;
}

struct zap_args {
    void *ctx;
    unsigned char allowed[32];
};

/* ZAP (RFC 27) handler: allow the one known client key, deny others. */
static void *zap_handler (void *p)
{
    struct zap_args *a = p;
    void *rep = zmq_socket (a->ctx, ZMQ_REP);
    if (zmq_bind (rep, "inproc://zeromq.zap.01") != 0)
        die ("zap bind");
    for (;;) {
        char parts[7][256];
        int lens[7], nparts = 0, more = 1;
        while (more && nparts < 7) {
            int len = zmq_recv (rep, parts[nparts], sizeof parts[0], 0);
            if (len < 0) {
                zmq_close (rep);
                return NULL;
            }
            lens[nparts++] = len;
            size_t sz = sizeof more;
            zmq_getsockopt (rep, ZMQ_RCVMORE, &more, &sz);
        }
        while (more) { /* drain anything beyond what we read */
            char junk[256];
            zmq_recv (rep, junk, sizeof junk, 0);
            size_t sz = sizeof more;
            zmq_getsockopt (rep, ZMQ_RCVMORE, &more, &sz);
        }
        int allow = nparts == 7 && lens[6] == 32 && memcmp (parts[6], a->allowed, 32) == 0;
        const char *code = allow ? "200" : "400";
        zmq_send (rep, "1.0", 3, ZMQ_SNDMORE);
        zmq_send (rep, parts[1], lens[1] > 0 ? lens[1] : 0, ZMQ_SNDMORE);
        zmq_send (rep, code, 3, ZMQ_SNDMORE);
        zmq_send (rep, allow ? "OK" : "denied", allow ? 2 : 6, ZMQ_SNDMORE);
        zmq_send (rep, allow ? "bench" : "", allow ? 5 : 0, ZMQ_SNDMORE);
        zmq_send (rep, "", 0, 0);
    }
}

static int run_server (const char *server_secret, const char *client_pub)
{
    raise_fd_limit ();
    void *ctx = zmq_ctx_new ();
    zmq_ctx_set (ctx, ZMQ_MAX_SOCKETS, 8192);
    struct zap_args za = {ctx, {0}};
    if (!zmq_z85_decode (za.allowed, client_pub))
        die ("client key");
    pthread_t zt;
    pthread_create (&zt, NULL, zap_handler, &za);
    void *pub = zmq_socket (ctx, ZMQ_PUB);
    int one = 1, zero = 0, hwm = 0;
    zmq_setsockopt (pub, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt (pub, ZMQ_CURVE_SECRETKEY, server_secret, 40);
    zmq_setsockopt (pub, ZMQ_ZAP_DOMAIN, "bench", 5);
    zmq_setsockopt (pub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    /* HANDSHAKE_REF_BACKLOG: the listen backlog (libzmq's default is 100). A burst of
     * connects overflows 100, and each dropped SYN waits a second to be sent again: with
     * it raised the rate times the handshakes rather than TCP's retransmit timer. */
    const char *backlog_env = getenv ("HANDSHAKE_REF_BACKLOG");
    if (backlog_env) {
        int backlog = atoi (backlog_env);
        zmq_setsockopt (pub, ZMQ_BACKLOG, &backlog, sizeof backlog);
    }
    if (zmq_bind (pub, "tcp://127.0.0.1:*") != 0)
        die ("bind");
    char ep[256];
    size_t sz = sizeof ep;
    zmq_getsockopt (pub, ZMQ_LAST_ENDPOINT, ep, &sz);
    printf ("ENDPOINT %s\n", ep);
    fflush (stdout);
    char line[128];
    while (fgets (line, sizeof line, stdin)) {
        long n = 0, size = 0;
        if (sscanf (line, "send %ld %ld", &n, &size) == 2) {
            char *buf = calloc (1, size > 0 ? size : 1);
            for (long i = 0; i < n; i++)
                zmq_send (pub, buf, size, 0);
            free (buf);
            printf ("SENT %ld\n", n);
            fflush (stdout);
        } else if (strncmp (line, "quit", 4) == 0)
            break;
    }
    zmq_close (pub);
    /* The ZAP thread holds a socket; exit without terminating the context. */
    return 0;
}

int main (int argc, char **argv)
{
    if (argc == 7 && strcmp (argv[1], "client") == 0)
        return run_client (argv[2], argv[3], argv[4], atoi (argv[5]), atol (argv[6]));
    if (argc == 4 && strcmp (argv[1], "server") == 0)
        return run_server (argv[2], argv[3]);
    fprintf (stderr,
             "usage: %s client ENDPOINT SERVER_PUB CLIENT_SECRET N MSGS\n"
             "       %s server SERVER_SECRET CLIENT_PUB\n",
             argv[0], argv[0]);
    return 2;
}
