/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qmpd entry point: parse the command line, load and check the schema,
 * open chardevs and monitors, then run the GLib main loop until a
 * shutdown is requested (quit, a signal) and the monitors have written
 * their last replies.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <glib-unix.h>

#include "block/core/block.h"
#include "block/core/ioq.h"
#include "block/jobs/cbw.h"
#include "block/jobs/job-int.h"
#include "migration/migration.h"
#include "monitor/monitor.h"
#include "qapi/dispatch.h"
#include "qapi/opts.h"
#include "qapi/schema.h"
#include "system/board-drives.h"
#include "system/drive.h"
#include "system/guest.h"
#include "system/handlers.h"
#include "system/machine.h"
#include "system/memory-backend.h"
#include "system/object.h"
#include "system/options.h"
#include "system/qtest.h"
#include "system/runstate.h"
#include "system/workload.h"
#include "system/options-board.h"
#include "system/serial.h"
#include "system/vclock.h"
#include "util/log.h"
#include "util/trace.h"

#define EXIT_FLUSH_US (2 * G_USEC_PER_SEC)

static int daemon_pipe = -1;
static char *pidfile_path;

static void G_GNUC_NORETURN die(Error *err)
{
    board_msg_begin(stderr);
    fprintf(stderr, "qmpd: %s\n", error_get_pretty(err));
    if (error_get_hint(err)) {
        fputs(error_get_hint(err), stderr);
    }
    error_free(err);
    exit(1);
}

static void daemonize_start(void)
{
    int fds[2];
    pid_t pid;

    if (pipe(fds) < 0) {
        perror("qmpd: pipe");
        exit(1);
    }
    pid = fork();
    if (pid < 0) {
        perror("qmpd: fork");
        exit(1);
    }
    if (pid > 0) {
        char c = 1;

        close(fds[1]);
        /* the child reports a zero byte once it is serving */
        while (read(fds[0], &c, 1) < 0 && errno == EINTR) {
            /* retry */
        }
        _exit(c == 0 ? 0 : 1);
    }
    close(fds[0]);
    setsid();
    daemon_pipe = fds[1];
}

static void daemonize_finish(void)
{
    int null = open("/dev/null", O_RDWR);
    char ok = 0;

    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        close(null);
    }
    qmpd_log_use_syslog(true);
    if (write(daemon_pipe, &ok, 1) != 1) {
        qmpd_log(LOG_WARNING, "could not notify the parent process");
    }
    close(daemon_pipe);
    daemon_pipe = -1;
}

static bool write_pidfile(const char *path, Error **errp)
{
    char buf[32];
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int len;

    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create PID file: Cannot open "
                         "pid file");
        return false;
    }
    if (lockf(fd, F_TLOCK, 0) < 0) {
        error_setg_errno(errp, errno, "cannot create PID file: Cannot lock "
                         "pid file");
        close(fd);
        return false;
    }
    len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, buf, len) != len) {
        error_setg_errno(errp, errno, "cannot create PID file: Failed to "
                         "write pid file");
        close(fd);
        return false;
    }
    /* the fd stays open: it holds the lock for our lifetime */
    pidfile_path = g_strdup(path);
    return true;
}

static gboolean signal_cb(gint fd, GIOCondition cond, gpointer data)
{
    struct signalfd_siginfo si;
    g_autofree char *comm = NULL;
    g_autofree char *commpath = NULL;

    if (read(fd, &si, sizeof(si)) != sizeof(si)) {
        return G_SOURCE_CONTINUE;
    }
    if (qtest_driver()) {
        /* a qtest harness signals on purpose: QEMU says nothing then */
        qmpd_request_shutdown(SHUTDOWN_CAUSE_HOST_SIGNAL);
        return G_SOURCE_CONTINUE;
    }
    /* QEMU names the sender by its argv[0], the first string of cmdline */
    commpath = g_strdup_printf("/proc/%u/cmdline", si.ssi_pid);
    board_msg_begin(stderr);
    if (si.ssi_pid && g_file_get_contents(commpath, &comm, NULL, NULL)
        && *comm) {
        fprintf(stderr, "qmpd: terminating on signal %u from pid %u (%s)\n",
                si.ssi_signo, si.ssi_pid, comm);
    } else {
        fprintf(stderr, "qmpd: terminating on signal %u\n", si.ssi_signo);
    }
    qmpd_request_shutdown(SHUTDOWN_CAUSE_HOST_SIGNAL);
    return G_SOURCE_CONTINUE;
}

static int setup_signals(void)
{
    sigset_t set;
    int fd;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd >= 0) {
        g_unix_fd_add(fd, G_IO_IN, signal_cb, NULL);
    }
    return fd;
}

static void set_log_level_from_env(void)
{
    const char *l = g_getenv("QMPD_LOG");

    if (!l) {
        return;
    }
    if (!strcmp(l, "debug")) {
        qmpd_log_set_level(LOG_DEBUG);
    } else if (!strcmp(l, "info")) {
        qmpd_log_set_level(LOG_INFO);
    } else if (!strcmp(l, "error")) {
        qmpd_log_set_level(LOG_ERR);
    }
}

static QapiSchema *load_schema(void)
{
    Error *err = NULL;
    QapiSchema *s = qapi_schema_load(&err);

    if (!s) {
        die(err);
    }
    qmpd_register_handlers(s);
    if (!qapi_check_handlers(s, &err) || !mon_check(s, &err)) {
        die(err);
    }
    return s;
}

/* Take chardev @id out of @o for a monitor or qtest; opened. */
static Chardev *claim_chardev(QmpdOptions *o, const char *id,
                              const char *user)
{
    for (guint i = 0; i < o->chardevs->len; i++) {
        Chardev *c = g_ptr_array_index(o->chardevs, i);
        Error *err = NULL;

        if (c && !strcmp(chardev_id(c), id)) {
            o->chardevs->pdata[i] = NULL;
            if (!chardev_open(c, &err)) {
                error_prepend(&err, "%s: ", chardev_location(c));
                chardev_free(c);
                die(err);
            }
            return c;
        }
    }
    {
        Error *err = NULL;

        error_setg(&err, "%s: Device '%s' is in use", user, id);
        die(err);
    }
}

static void unknown_in_file(const char *name, int line, void *opaque)
{
    fprintf(stderr, "qmpd:%s:%d: warning: trace event '%s' does not "
            "exist\n", (const char *)opaque, line, name);
}

/* Every -trace in order, once the trace points are registered: an
 * events file that cannot be read ends qmpd, as it ends QEMU. */
static void trace_opts_apply(const QmpdOptions *o)
{
    for (guint i = 0; i < o->traces->len; i++) {
        const char *arg = g_ptr_array_index(o->traces, i);
        g_autoptr(Opts) opts = opts_parse(arg, "enable", NULL, NULL, NULL);
        const char *file = opts_get(opts, "events");
        const char *pattern = opts_get(opts, "enable");

        if (file && !trace_load_file(file, unknown_in_file, (void *)file)) {
            /* QEMU's words, without a space after the program's name */
            fprintf(stderr, "qmpd:%s: %s\n", file, g_strerror(errno));
            exit(1);
        }
        if (pattern && !trace_enable_pattern(pattern)) {
            fprintf(stderr, "qmpd: -trace %s: warning: trace event '%s' "
                    "does not exist\n", arg,
                    pattern[0] == '-' ? pattern + 1 : pattern);
        }
    }
}

/* Every -object in order, then the machine's RAM backend. */
static void create_objects(QapiSchema *schema, QmpdOptions *o)
{
    Error *err = NULL;

    for (guint i = 0; i < o->objects->len; i++) {
        const char *arg = g_ptr_array_index(o->objects, i);

        if (!object_add_arg(schema, arg, &err)) {
            die(err);
        }
    }
    if (!memory_backend_link(&o->machine, &o->memory, &err)) {
        die(err);
    }
}

/*
 * Every -blockdev, then every -drive (QEMU's order), then the devices,
 * -drive if=virtio's last.
 */
static void open_block_devices(QapiSchema *schema, const QmpdOptions *o)
{
    for (int pass = 0; pass < 2; pass++) {
        for (guint i = 0; i < o->drives->len; i++) {
            const DriveOpt *d = g_ptr_array_index(o->drives, i);
            Error *err = NULL;
            bool ok;

            if (d->blockdev != (pass == 0)) {
                continue;
            }
            ok = d->blockdev ? blockdev_add_arg(schema, d->arg, &err)
                             : drive_add(schema, d->arg, &err);
            if (!ok) {
                if (d->label) {
                    error_prepend(&err, "%s: ", d->label);
                } else {
                    error_prepend(&err, "-%s %s: ",
                                  d->blockdev ? "blockdev" : "drive", d->arg);
                }
                die(err);
            }
        }
    }
    /* the board's IDE disks exist before any -device, as in QEMU */
    {
        Error *err = NULL;

        if (!board_add_default_drives(schema, &err)
            || !drive_add_board_devices(&err)) {
            die(err);
        }
    }
    for (guint i = 0; i < o->devices->len; i++) {
        const DeviceOpt *d = g_ptr_array_index(o->devices, i);
        Error *err = NULL;

        if (!guest_device_add_arg(d->arg, &err)) {
            error_prepend(&err, "-device %s: ", d->arg);
            die(err);
        }
    }
    /* QEMU creates if=virtio's devices after every -device */
    {
        Error *err = NULL;

        if (!drive_add_devices(&err)) {
            die(err);
        }
    }
}

static void block_closed_cb(void *opaque, int ret)
{
    *(bool *)opaque = true;
}

/*
 * As QEMU at exit: every job cancelled and waited for (a job holds its
 * nodes), then every image flushed and closed, locks released.
 */
static void close_block_devices(void)
{
    bool done = false;

    job_cancel_all();
    while (!job_all_concluded()) {
        g_main_context_iteration(NULL, TRUE);
    }
    job_dismiss_all();
    workload_cleanup();
    guest_cleanup();
    bdrv_close_all(block_closed_cb, &done);
    while (!done) {
        g_main_context_iteration(NULL, TRUE);
    }
}

static void run_main_loop(void)
{
    gint64 deadline;

    while (!qmpd_shutdown_requested()) {
        g_main_context_iteration(NULL, TRUE);
    }
    close_block_devices();
    /* let the monitors write the last replies and events */
    deadline = g_get_monotonic_time() + EXIT_FLUSH_US;
    while (mon_output_pending() && g_get_monotonic_time() < deadline) {
        if (!g_main_context_iteration(NULL, FALSE)) {
            g_usleep(1000);
        }
    }
}

int main(int argc, char **argv)
{
    QmpdOptions o;
    Error *err = NULL;
    QapiSchema *schema;
    RunState initial;
    int sigfd;
    int r;

    r = qmpd_parse_options(&o, argc, argv, &err);
    if (r < 0) {
        die(err);
    }
    if (r == OPT_EXIT) {
        return 0;
    }
    set_log_level_from_env();
    if (o.process_name) {
        /* the kernel keeps 15 bytes of it, as for QEMU's */
        prctl(PR_SET_NAME, o.process_name);
    }
    ioq_name_threads(o.debug_threads);
    if (o.daemonize) {
        daemonize_start();
    }
    sigfd = setup_signals();
    schema = load_schema();
    trace_opts_apply(&o);
    if (!bdrv_init(&err)) {
        die(err);
    }
    cbw_register();
    snapshot_access_register();

    vclock_init(!strcmp(o.machine.accel, "qtest"));
    create_objects(schema, &o);
    machine_set_config(&o.machine);
    guest_init(!o.nodefaults, !o.no_vga);
    board_drives_config(!o.nodefaults, !o.no_vga, o.serial_given,
                        o.devices);
    initial = o.incoming ? RUN_STATE_INMIGRATE
        : o.start_paused ? RUN_STATE_PRELAUNCH : RUN_STATE_RUNNING;
    runstate_init(initial);
    if (o.incoming && o.start_paused) {
        runstate_no_autostart();
    }
    /* the board's serial ports come before its disks */
    for (guint i = 0; i < o.serials->len; i++) {
        serial_attach(claim_chardev(&o, g_ptr_array_index(o.serials, i),
                                    "-serial"));
    }
    open_block_devices(schema, &o);
    mon_init(schema);

    for (guint i = 0; i < o.monitors->len; i++) {
        const MonitorOpt *m = g_ptr_array_index(o.monitors, i);
        Chardev *c = claim_chardev(&o, m->chardev_id, m->loc);

        if (!mon_add(c, m->mode, m->pretty, &err)) {
            die(err);
        }
    }
    if (o.qtest) {
        Chardev *c = claim_chardev(&o, o.qtest, "-qtest");

        if (!qtest_start(c, o.qtest_log, &err)) {
            die(err);
        }
    }
    if (o.incoming && !mig_in_start(o.incoming, &err)) {
        error_prepend(&err, "-incoming %s: ", o.incoming);
        die(err);
    }
    if (o.pidfile && !write_pidfile(o.pidfile, &err)) {
        die(err);
    }
    if (o.daemonize) {
        daemonize_finish();
    }

    run_main_loop();

    mon_cleanup();
    qtest_stop();
    serial_cleanup();
    if (pidfile_path) {
        unlink(pidfile_path);
        g_free(pidfile_path);
    }
    if (sigfd >= 0) {
        close(sigfd);
    }
    qmpd_options_free(&o);
    qapi_schema_free(schema);
    return 0;
}
