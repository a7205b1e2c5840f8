/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QMP round-trip benchmark client. It connects to one or more QMP unix
 * sockets, negotiates capabilities, then sends one command at a time and
 * waits for its reply line, first over a single connection and then over
 * K connections in parallel. For each case it prints one key=value line
 * (median and p99 round trip in microseconds, commands per second) so that
 * tests/bench/run-qmp-rtt.sh can tabulate qmpd against qemu-storage-daemon.
 *
 * The K-connection case splits the N commands across the connections (N/K
 * each, the remainder going to the first ones), so both cases do the same
 * total work and their cmds_per_s figures compare directly. When several
 * socket paths are given, connection i uses path i mod count: QEMU serves
 * one client per monitor socket, so it needs one socket per connection,
 * while qmpd serves any number of clients on one socket.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

/* Replies here are a few hundred bytes; this only has to hold one line. */
#define RTT_BUF_SIZE 65536

/*
 * A server that stops answering must not hang the benchmark run forever;
 * no sane round trip comes anywhere near this.
 */
#define RTT_TIMEOUT_S 30

typedef struct RttConn {
    const char *path;
    int fd;
    char buf[RTT_BUF_SIZE];
    size_t len;      /* bytes valid in buf */
    size_t off;      /* start of the first unconsumed byte */
} RttConn;

typedef struct RttWorker {
    RttConn *conn;
    const char *cmd;          /* command line, newline included */
    size_t n;                 /* timed round trips */
    size_t warmup;            /* untimed round trips before the barrier */
    int64_t *samples_ns;      /* n entries, a slice of the shared array */
    size_t errors;            /* replies that were not {"return": ...} */
    int64_t start_ns;
    int64_t end_ns;
    bool failed;
    pthread_barrier_t *barrier;
} RttWorker;

static int64_t rtt_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool rtt_connect(RttConn *c, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { .tv_sec = RTT_TIMEOUT_S };

    c->path = path;
    c->fd = -1;
    c->len = 0;
    c->off = 0;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "qmp-rtt: socket path too long: %s\n", path);
        return false;
    }
    strcpy(sa.sun_path, path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fprintf(stderr, "qmp-rtt: socket: %s\n", g_strerror(errno));
        return false;
    }
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
        fprintf(stderr, "qmp-rtt: setsockopt: %s\n", g_strerror(errno));
        return false;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "qmp-rtt: connect %s: %s\n", path, g_strerror(errno));
        return false;
    }
    return true;
}

static void rtt_close(RttConn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static bool rtt_send(RttConn *c, const char *data, size_t len)
{
    while (len > 0) {
        /* MSG_NOSIGNAL: a server that went away is an error, not a kill. */
        ssize_t r = send(c->fd, data, len, MSG_NOSIGNAL);

        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "qmp-rtt: send to %s: %s\n", c->path,
                    g_strerror(errno));
            return false;
        }
        data += r;
        len -= (size_t)r;
    }
    return true;
}

/*
 * Return the next complete line that is not an asynchronous event, with
 * its terminator replaced by NUL. The pointer stays valid until the next
 * call. Events are skipped because QMP may interleave them with replies
 * and they are not part of any round trip.
 */
static const char *rtt_read_reply(RttConn *c)
{
    for (;;) {
        char *start = c->buf + c->off;
        char *nl = memchr(start, '\n', c->len - c->off);
        ssize_t r;

        if (nl) {
            c->off = (size_t)(nl + 1 - c->buf);
            *nl = '\0';
            if (nl > start && nl[-1] == '\r') {
                nl[-1] = '\0';
            }
            if (strstr(start, "\"event\"")) {
                continue;
            }
            return start;
        }
        if (c->off > 0) {
            memmove(c->buf, start, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        if (c->len == sizeof(c->buf)) {
            fprintf(stderr, "qmp-rtt: line from %s longer than %zu bytes\n",
                    c->path, sizeof(c->buf));
            return NULL;
        }
        r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            fprintf(stderr, "qmp-rtt: recv from %s: %s\n", c->path,
                    r == 0 ? "connection closed" : g_strerror(errno));
            return NULL;
        }
        c->len += (size_t)r;
    }
}

/*
 * One command, one reply. Sets *ok to whether the reply was a success, so
 * that a server rejecting the command shows up in the output instead of
 * being timed as if it had done the work.
 */
static bool rtt_round_trip(RttConn *c, const char *cmd, size_t cmd_len,
                           bool *ok)
{
    const char *line;

    if (!rtt_send(c, cmd, cmd_len)) {
        return false;
    }
    line = rtt_read_reply(c);
    if (!line) {
        return false;
    }
    *ok = g_str_has_prefix(line, "{\"return\"");
    return true;
}

static bool rtt_handshake(RttConn *c)
{
    static const char caps[] = "{\"execute\":\"qmp_capabilities\"}\n";
    const char *greeting = rtt_read_reply(c);
    bool ok;

    if (!greeting) {
        return false;
    }
    if (!strstr(greeting, "\"QMP\"")) {
        fprintf(stderr, "qmp-rtt: %s: unexpected greeting: %s\n", c->path,
                greeting);
        return false;
    }
    if (!rtt_round_trip(c, caps, sizeof(caps) - 1, &ok)) {
        return false;
    }
    if (!ok) {
        fprintf(stderr, "qmp-rtt: %s: qmp_capabilities failed\n", c->path);
        return false;
    }
    return true;
}

static void *rtt_worker_run(void *opaque)
{
    RttWorker *w = opaque;
    size_t cmd_len = strlen(w->cmd);
    size_t i;
    bool ok = true;

    /*
     * Warm up before the barrier so that first-touch costs (page faults,
     * server-side session setup) stay out of the timed window.
     */
    for (i = 0; i < w->warmup && !w->failed; i++) {
        w->failed = !rtt_round_trip(w->conn, w->cmd, cmd_len, &ok);
    }
    /* Wait even after a failure, or the other workers would block forever. */
    pthread_barrier_wait(w->barrier);
    w->start_ns = rtt_now_ns();
    for (i = 0; i < w->n && !w->failed; i++) {
        int64_t t0 = rtt_now_ns();

        if (!rtt_round_trip(w->conn, w->cmd, cmd_len, &ok)) {
            w->failed = true;
            break;
        }
        w->samples_ns[i] = rtt_now_ns() - t0;
        if (!ok) {
            w->errors++;
        }
    }
    w->end_ns = rtt_now_ns();
    return NULL;
}

static int rtt_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double rtt_percentile_us(const int64_t *sorted, size_t n,
                                unsigned percent)
{
    /* ceil(percent * n / 100) in integers, to avoid libm for one call */
    size_t rank = (percent * n + 99) / 100;

    if (rank < 1) {
        rank = 1;
    }
    return (double)sorted[rank - 1] / 1000.0;
}

static double rtt_median_us(const int64_t *sorted, size_t n)
{
    if (n % 2) {
        return (double)sorted[n / 2] / 1000.0;
    }
    return (double)(sorted[n / 2 - 1] + sorted[n / 2]) / 2000.0;
}

/*
 * Run one case: nconns connections, paths assigned round robin, total
 * round trips split across them. Prints the result line.
 */
static bool rtt_run_case(char **paths, size_t npaths, size_t nconns,
                         size_t total, size_t warmup, const char *cmd)
{
    g_autofree RttConn *conns = g_new0(RttConn, nconns);
    g_autofree RttWorker *workers = g_new0(RttWorker, nconns);
    g_autofree pthread_t *threads = g_new0(pthread_t, nconns);
    g_autofree int64_t *samples = g_new(int64_t, total);
    pthread_barrier_t barrier;
    size_t started = 0;
    size_t done = 0;
    size_t errors = 0;
    int64_t start = INT64_MAX;
    int64_t end = 0;
    bool ok = true;
    size_t i;

    for (i = 0; i < nconns; i++) {
        conns[i].fd = -1;
    }
    /*
     * Connect and negotiate up front, one connection after the other: the
     * handshake is not what is measured, and QEMU's greeting only arrives
     * once its monitor accepted us.
     */
    for (i = 0; i < nconns && ok; i++) {
        ok = rtt_connect(&conns[i], paths[i % npaths]) &&
             rtt_handshake(&conns[i]);
    }
    if (!ok) {
        goto out;
    }

    pthread_barrier_init(&barrier, NULL, (unsigned)nconns);
    for (i = 0; i < nconns; i++) {
        RttWorker *w = &workers[i];
        int err;

        w->conn = &conns[i];
        w->cmd = cmd;
        w->n = total / nconns + (i < total % nconns ? 1 : 0);
        w->warmup = warmup;
        w->samples_ns = samples + done;
        w->barrier = &barrier;
        done += w->n;
        err = pthread_create(&threads[i], NULL, rtt_worker_run, w);
        if (err) {
            /*
             * The started workers wait at the barrier for a count that
             * will never be reached; there is no clean way back.
             */
            fprintf(stderr, "qmp-rtt: pthread_create: %s\n", g_strerror(err));
            exit(1);
        }
        started++;
    }
    for (i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        ok = ok && !workers[i].failed;
        errors += workers[i].errors;
        start = MIN(start, workers[i].start_ns);
        end = MAX(end, workers[i].end_ns);
    }
    pthread_barrier_destroy(&barrier);
    if (!ok) {
        goto out;
    }

    qsort(samples, total, sizeof(*samples), rtt_cmp_i64);
    printf("conns=%zu sockets=%zu n=%zu median_us=%.1f p99_us=%.1f "
           "cmds_per_s=%.0f errors=%zu\n",
           nconns, MIN(nconns, npaths), total, rtt_median_us(samples, total),
           rtt_percentile_us(samples, total, 99),
           (double)total * 1e9 / (double)(end - start), errors);
    fflush(stdout);

out:
    for (i = 0; i < nconns; i++) {
        rtt_close(&conns[i]);
    }
    return ok;
}

int main(int argc, char **argv)
{
    gint64 n = 20000;
    gint64 k = 8;
    gint64 warmup = 200;
    gboolean probe = FALSE;
    g_autofree char *command = NULL;
    g_autofree char *cmd_line = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(GOptionContext) ctx =
        g_option_context_new("SOCKET [SOCKET...]");
    GOptionEntry entries[] = {
        { "count", 'n', 0, G_OPTION_ARG_INT64, &n,
          "Timed round trips per case (default 20000)", "N" },
        { "conns", 'k', 0, G_OPTION_ARG_INT64, &k,
          "Connections in the parallel case (default 8)", "K" },
        { "warmup", 'w', 0, G_OPTION_ARG_INT64, &warmup,
          "Untimed round trips per connection first (default 200)", "W" },
        { "command", 'c', 0, G_OPTION_ARG_STRING, &command,
          "Command to send (default {\"execute\":\"query-status\"})", "JSON" },
        { "probe", 'p', 0, G_OPTION_ARG_NONE, &probe,
          "Only connect and negotiate capabilities, then exit", NULL },
        G_OPTION_ENTRY_NULL
    };
    RttConn *probe_conn;
    size_t npaths;
    bool ok;

    g_option_context_set_summary(ctx,
        "Time QMP command round trips over 1 and K connections.\n"
        "With several sockets, connection i uses socket i mod count.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "qmp-rtt: %s\n", err->message);
        return 2;
    }
    if (argc < 2) {
        fprintf(stderr, "qmp-rtt: no socket given (see --help)\n");
        return 2;
    }
    if (n < 1 || k < 1 || warmup < 0 || k > n) {
        fprintf(stderr, "qmp-rtt: need N >= K >= 1 and W >= 0\n");
        return 2;
    }
    npaths = (size_t)argc - 1;

    if (probe) {
        /* Used by the script as a readiness check before reading RSS. */
        probe_conn = g_new0(RttConn, 1);
        ok = rtt_connect(probe_conn, argv[1]) && rtt_handshake(probe_conn);
        rtt_close(probe_conn);
        g_free(probe_conn);
        return ok ? 0 : 1;
    }

    cmd_line = g_strdup_printf("%s\n",
                               command ? command
                                       : "{\"execute\":\"query-status\"}");
    if (!rtt_run_case(argv + 1, npaths, 1, (size_t)n, (size_t)warmup,
                      cmd_line)) {
        return 1;
    }
    if (!rtt_run_case(argv + 1, npaths, (size_t)k, (size_t)n, (size_t)warmup,
                      cmd_line)) {
        return 1;
    }
    return 0;
}
