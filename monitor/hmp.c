/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The human monitor.  Its command table is the schema's "hmp" entries:
 * each names the QMP command it runs (and a printer for the result) or
 * an HMP-only handler, the argument syntax in QEMU's args_type notation,
 * and the help text.  A command line is parsed into QMP arguments,
 * validated against the schema and run through the same handler QMP
 * uses.  The argument syntax (QEMU's args_type) is hmp-parse.c's.
 */
#include "config.h"

#include <string.h>

#include "monitor/hmp-int.h"
#include "monitor/hmp-parse.h"
#include "monitor/monitor-int.h"
#include "monitor/readline.h"
#include "qapi/qjson.h"
#include "qapi/validate.h"
#include "util/log.h"

#define HMP_PROMPT "(qemu) "

typedef struct HmpCmd HmpCmd;
typedef struct HmpCall HmpCall;

/* An HMP-only command; appends to call->out and calls hmp_call_end(). */
typedef void HmpHandlerFn(HmpCall *call, const HmpCmd *cmd,
                          const json_t *args);

struct HmpCmd {
    const char *name;       /* as shown, "cont|c" */
    char **names;           /* "cont", "c" */
    bool info;              /* an "info" subcommand */
    const char *args_type;
    const char *params;
    const char *help;
    const QapiCommand *qmp;
    HmpPrinterFn *print;
    HmpHandlerFn *handler;
    HmpHandlerCb *ext_handler;
};

struct HmpCall {
    GString *out;
    const HmpCmd *cmd;
    HmpPrinterFn *print;    /* of the QMP command's result, or NULL */
    bool plain_error;       /* no "Error: " before a failure */
    HmpLineDone *done;
    void *opaque;
};

struct HmpSession {
    MonSession *s;
    Readline *rl;           /* NULL: plain line mode (pipes) */
    GString *partial;       /* plain mode: bytes of an unfinished line */
    GQueue *lines;          /* entered, not yet run */
    bool busy;
};

static GPtrArray *hmp_cmds;     /* HmpCmd *, sorted by name */
static GArray *ext_handlers;    /* HmpHandler, registered by subsystems */
static GArray *ext_printers;    /* HmpPrinter, likewise */

static void hmp_help_cb(HmpCall *call, const HmpCmd *cmd, const json_t *args);
static void hmp_info_cb(HmpCall *call, const HmpCmd *cmd, const json_t *args);

static const struct {
    const char *name;
    HmpHandlerFn *fn;
} hmp_handlers[] = {
    { "help", hmp_help_cb },
    { "info", hmp_info_cb },
};

static gint cmd_cmp(gconstpointer a, gconstpointer b)
{
    const HmpCmd *x = *(HmpCmd *const *)a;
    const HmpCmd *y = *(HmpCmd *const *)b;

    return strcmp(x->name, y->name);
}

static void cmd_free(gpointer p)
{
    HmpCmd *c = p;

    g_strfreev(c->names);
    g_free(c);
}

static bool build_table(QapiSchema *schema, Error **errp)
{
    const GPtrArray *defs = qapi_schema_hmp(schema);
    g_autoptr(GPtrArray) t = g_ptr_array_new_with_free_func(cmd_free);

    for (guint i = 0; i < defs->len; i++) {
        const json_t *d = g_ptr_array_index(defs, i);
        const char *full = json_string_value(json_object_get(d, "hmp"));
        const char *qmp = json_string_value(json_object_get(d, "command"));
        const char *print = json_string_value(json_object_get(d, "print"));
        const char *handler = json_string_value(json_object_get(d,
                                                                "handler"));
        HmpCmd *c = g_new0(HmpCmd, 1);

        g_ptr_array_add(t, c);
        c->info = g_str_has_prefix(full, "info ");
        c->name = c->info ? full + strlen("info ") : full;
        c->names = g_strsplit(c->name, "|", -1);
        c->args_type = json_string_value(json_object_get(d, "args"));
        c->params = json_string_value(json_object_get(d, "params"));
        c->help = json_string_value(json_object_get(d, "help"));
        if (!c->args_type) {
            c->args_type = "";
        }
        if (!c->params) {
            c->params = "";
        }
        if (!c->help) {
            error_setg(errp, "hmp '%s': no help text", full);
            return false;
        }
        if (!hmp_args_type_check(c->args_type, errp)) {
            error_prepend(errp, "hmp '%s': ", full);
            return false;
        }
        if (!qmp == !handler) {
            error_setg(errp, "hmp '%s': needs either 'command' or 'handler'",
                       full);
            return false;
        }
        if (qmp) {
            c->qmp = qapi_schema_command(schema, qmp);
            if (!c->qmp) {
                error_setg(errp, "hmp '%s': unknown command '%s'", full, qmp);
                return false;
            }
        }
        for (size_t k = 0; handler && k < G_N_ELEMENTS(hmp_handlers); k++) {
            if (!strcmp(hmp_handlers[k].name, handler)) {
                c->handler = hmp_handlers[k].fn;
            }
        }
        for (guint k = 0; handler && ext_handlers && k < ext_handlers->len;
             k++) {
            const HmpHandler *h = &g_array_index(ext_handlers, HmpHandler, k);

            if (!strcmp(h->name, handler)) {
                c->ext_handler = h->fn;
            }
        }
        if (handler && !c->handler && !c->ext_handler) {
            error_setg(errp, "hmp '%s': unknown handler '%s'", full, handler);
            return false;
        }
        for (size_t k = 0; print && k < hmp_printers_count; k++) {
            if (!strcmp(hmp_printers[k].name, print)) {
                c->print = hmp_printers[k].fn;
            }
        }
        for (guint k = 0; print && ext_printers && k < ext_printers->len;
             k++) {
            const HmpPrinter *h = &g_array_index(ext_printers, HmpPrinter, k);

            if (!strcmp(h->name, print)) {
                c->print = h->fn;
            }
        }
        if (print && !c->print) {
            error_setg(errp, "hmp '%s': unknown printer '%s'", full, print);
            return false;
        }
    }
    g_ptr_array_sort(t, cmd_cmp);
    hmp_cmds = g_steal_pointer(&t);
    return true;
}

void hmp_register_handlers(const HmpHandler *h, size_t n)
{
    if (!ext_handlers) {
        ext_handlers = g_array_new(FALSE, FALSE, sizeof(HmpHandler));
    }
    g_array_append_vals(ext_handlers, h, n);
}

void hmp_register_printers(const HmpPrinter *p, size_t n)
{
    if (!ext_printers) {
        ext_printers = g_array_new(FALSE, FALSE, sizeof(HmpPrinter));
    }
    g_array_append_vals(ext_printers, p, n);
}

bool hmp_check_table(QapiSchema *schema, Error **errp)
{
    static bool block_registered;

    if (!block_registered) {
        hmp_register_handlers(block_hmp_handlers, block_hmp_handlers_count);
        hmp_register_printers(block_hmp_printers, block_hmp_printers_count);
        hmp_register_handlers(block_cmds_hmp_handlers,
                              block_cmds_hmp_handlers_count);
        hmp_register_handlers(media_hmp_handlers, media_hmp_handlers_count);
        hmp_register_handlers(mig_hmp_handlers, mig_hmp_handlers_count);
        hmp_register_handlers(nbd_hmp_handlers, nbd_hmp_handlers_count);
        hmp_register_printers(mig_hmp_printers, mig_hmp_printers_count);
        block_registered = true;
    }
    if (hmp_cmds) {
        g_ptr_array_unref(hmp_cmds);
        hmp_cmds = NULL;
    }
    return build_table(schema, errp);
}

static const HmpCmd *find_cmd(const char *name, bool info)
{
    for (guint i = 0; i < hmp_cmds->len; i++) {
        const HmpCmd *c = g_ptr_array_index(hmp_cmds, i);

        if (c->info == info && g_strv_contains((const char *const *)c->names,
                                               name)) {
            return c;
        }
    }
    return NULL;
}

/* ---- help --------------------------------------------------------------- */

static void help_line(GString *out, const HmpCmd *c)
{
    g_string_append_printf(out, "%s%s %s -- %s\n", c->info ? "info " : "",
                           c->name, c->params, c->help);
}

static void help_list(GString *out, bool info)
{
    for (guint i = 0; i < hmp_cmds->len; i++) {
        const HmpCmd *c = g_ptr_array_index(hmp_cmds, i);

        if (c->info == info) {
            help_line(out, c);
        }
    }
}

/* Finish: the text gets "\r\n" line ends, as QEMU's monitor buffer has. */
static void hmp_call_end(HmpCall *call)
{
    GString *crlf = g_string_sized_new(call->out->len + 16);

    for (const char *p = call->out->str; *p; p++) {
        if (*p == '\n') {
            g_string_append_c(crlf, '\r');
        }
        g_string_append_c(crlf, *p);
    }
    call->done(call->opaque, crlf->str);
    g_string_free(crlf, TRUE);
    g_string_free(call->out, TRUE);
    g_free(call);
}

GString *hmp_call_out(HmpCall *call)
{
    return call->out;
}

void hmp_call_finish(HmpCall *call)
{
    hmp_call_end(call);
}

/* QEMU reads at most this many words after "help" (and else prints none). */
#define HMP_HELP_MAX_WORDS 16

static void hmp_help_cb(HmpCall *call, const HmpCmd *cmd, const json_t *args)
{
    const char *p = qjson_get_str_or(args, "name", "");
    g_autoptr(GPtrArray) words = g_ptr_array_new_with_free_func(g_free);
    const HmpCmd *c;

    for (p = hmp_skip_spaces(p); *p; p = hmp_skip_spaces(p)) {
        char *w = words->len < HMP_HELP_MAX_WORDS ? hmp_get_str(&p) : NULL;

        if (!w) {
            hmp_call_end(call);
            return;
        }
        g_ptr_array_add(words, w);
    }
    if (!words->len) {
        help_list(call->out, false);
    } else if (!(c = find_cmd(g_ptr_array_index(words, 0), false))) {
        g_string_append_printf(call->out, "unknown command: '%s'\n",
                               (char *)g_ptr_array_index(words, 0));
    } else if (strcmp(c->names[0], "info")) {
        help_line(call->out, c);
    } else if (words->len == 1) {
        help_list(call->out, true);
    } else if ((c = find_cmd(g_ptr_array_index(words, 1), true))) {
        help_line(call->out, c);
    } else {
        g_string_append_printf(call->out, "unknown command: 'info %s'\n",
                               (char *)g_ptr_array_index(words, 1));
    }
    hmp_call_end(call);
}

static void hmp_info_cb(HmpCall *call, const HmpCmd *cmd, const json_t *args)
{
    /* "info" alone; "info X" is dispatched to the subcommand directly */
    help_list(call->out, true);
    hmp_call_end(call);
}

/* ---- running a line -------------------------------------------------------- */

static void qmp_done_cb(void *opaque, json_t *ret, Error *err)
{
    HmpCall *call = opaque;

    if (err) {
        g_string_append_printf(call->out, "%s%s\n",
                               call->plain_error ? "" : "Error: ",
                               error_get_pretty(err));
        if (error_get_hint(err)) {
            g_string_append(call->out, error_get_hint(err));
        }
        error_free(err);
    } else {
        if (call->print) {
            call->print(call->out, ret);
        }
        json_decref(ret);
    }
    hmp_call_end(call);
}

/* Validate @args (taken) for @qmp and run it; the result as qmp_done_cb. */
static void call_qmp(HmpCall *call, const QapiCommand *qmp, json_t *args)
{
    Error *err = NULL;

    if (!qapi_validate(qmp->args, args, NULL, &err)) {
        json_decref(args);
        qmp_done_cb(call, NULL, err);
        return;
    }
    qapi_call(qmp, args, qmp_done_cb, call);
}

void hmp_call_qmp(HmpCall *call, const char *command, json_t *args)
{
    const QapiCommand *qmp = qapi_schema_command(mon_schema(), command);

    g_assert(qmp);
    call->print = NULL;
    call_qmp(call, qmp, args);
}

void hmp_call_qmp_plain(HmpCall *call, const char *command, json_t *args)
{
    call->plain_error = true;
    hmp_call_qmp(call, command, args);
}

/*
 * The command name at *@pp: up to white space or '/', as QEMU reads it;
 * NULL when the line is blank.
 */
static char *get_name(const char **pp)
{
    const char *p = hmp_skip_spaces(*pp);
    const char *start = p;

    if (!*p) {
        return NULL;
    }
    while (*p && *p != '/' && !hmp_isspace(*p)) {
        p++;
    }
    *pp = p;
    return g_strndup(start, p - start);
}

/* QEMU names an unknown command by the line up to its end, spaces too. */
static void unknown_cmd(HmpCall *call, const char *line, const char *end)
{
    g_string_append_printf(call->out, "unknown command: '%.*s'\n",
                           (int)(end - line), line);
    hmp_call_end(call);
}

void hmp_run_line(const char *line, HmpLineDone *done, void *opaque)
{
    HmpCall *call = g_new0(HmpCall, 1);
    const char *p = line;
    const char *args_start;
    g_autofree char *name = get_name(&p);
    const HmpCmd *c;
    json_t *args;

    call->out = g_string_new(NULL);
    call->done = done;
    call->opaque = opaque;
    if (!name) {
        hmp_call_end(call);
        return;
    }
    c = find_cmd(name, false);
    if (!c) {
        unknown_cmd(call, line, p);
        return;
    }
    p = hmp_skip_spaces(p);
    if (!strcmp(c->names[0], "info") && *p) {
        g_autofree char *sub = get_name(&p);

        c = find_cmd(sub, true);
        if (!c) {
            unknown_cmd(call, line, p);
            return;
        }
        p = hmp_skip_spaces(p);
    }
    call->cmd = c;
    args_start = p;
    args = hmp_parse_args(c->name, c->args_type, &p, call->out);
    if (!args) {
        const char *end = args_start;

        while (end > line && hmp_isspace(end[-1])) {
            end--;
        }
        g_string_append_printf(call->out,
                               "Try \"help %.*s\" for more information\n",
                               (int)(end - line), line);
        hmp_call_end(call);
        return;
    }
    if (c->handler) {
        c->handler(call, c, args);
        json_decref(args);
        return;
    }
    if (c->ext_handler) {
        c->ext_handler(call, args);
        json_decref(args);
        return;
    }
    call->print = c->print;
    call_qmp(call, c->qmp, args);
}

/* ---- completion -------------------------------------------------------- */

static GPtrArray *complete_cb(void *opaque, const char *line,
                              size_t *word_start)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) words = g_strsplit_set(line, " \t", -1);
    guint n = g_strv_length(words);
    const char *last = n ? words[n - 1] : "";
    bool info = false;
    guint nonempty = 0;

    for (guint i = 0; i + 1 < n; i++) {
        if (*words[i]) {
            nonempty++;
            if (nonempty == 1 && (!strcmp(words[i], "info")
                                  || !strcmp(words[i], "help")
                                  || !strcmp(words[i], "?"))) {
                info = !strcmp(words[i], "info");
            }
        }
    }
    *word_start = strlen(line) - strlen(last);
    if (nonempty > 1 || (nonempty == 1 && !info
                         && strcmp(words[0], "help") && strcmp(words[0], "?"))) {
        return out;
    }
    for (guint i = 0; i < hmp_cmds->len; i++) {
        const HmpCmd *c = g_ptr_array_index(hmp_cmds, i);

        if (c->info != info) {
            continue;
        }
        for (char **nm = c->names; *nm; nm++) {
            if (g_str_has_prefix(*nm, last)) {
                g_ptr_array_add(out, g_strdup(*nm));
            }
        }
    }
    return out;
}

/* ---- sessions ------------------------------------------------------------ */

static void run_next(HmpSession *h);

static void line_done_cb(void *opaque, const char *output)
{
    HmpSession *h = opaque;

    if (h->s) {
        mon_session_write(h->s, output, strlen(output));
        h->busy = false;
        if (mon_exiting()) {
            return;
        }
        mon_session_write(h->s, HMP_PROMPT, strlen(HMP_PROMPT));
        mon_session_release(h->s, MON_HOLD_BUSY);
        run_next(h);
        if (h->s) {
            mon_session_idle(h->s);
        }
    } else {
        /* the session went away while the command ran */
        g_queue_free_full(h->lines, g_free);
        g_free(h);
    }
}

static void run_next(HmpSession *h)
{
    MonSession *prev;
    char *line;

    while (!h->busy && h->s && (line = g_queue_pop_head(h->lines))) {
        h->busy = true;
        mon_session_hold(h->s, MON_HOLD_BUSY);
        prev = mon_set_current(h->s);
        hmp_run_line(line, line_done_cb, h);
        mon_set_current(prev);
        g_free(line);
    }
}

static void line_cb(void *opaque, const char *line)
{
    HmpSession *h = opaque;

    g_queue_push_tail(h->lines, g_strdup(line));
    run_next(h);
}

static void rl_out_cb(void *opaque, const char *buf, size_t len)
{
    HmpSession *h = opaque;

    mon_session_write(h->s, buf, len);
}

void hmp_session_start(MonSession *s)
{
    HmpSession *h = g_new0(HmpSession, 1);
    bool editing = chardev_kind(s->mon->chr) == CHARDEV_SOCKET || s->is_tty;

    h->s = s;
    h->lines = g_queue_new();
    s->hmp = h;
    if (!hmp_cmds) {
        Error *err = NULL;

        if (!build_table(mon_schema(), &err)) {
            g_error("HMP table: %s", error_get_pretty(err));
        }
    }
    mon_session_puts(s, "QEMU " G_STRINGIFY(QMPD_QEMU_MAJOR) "."
                     G_STRINGIFY(QMPD_QEMU_MINOR) "."
                     G_STRINGIFY(QMPD_QEMU_MICRO)
                     " monitor - type 'help' for more information\n");
    if (editing) {
        h->rl = readline_new(HMP_PROMPT, rl_out_cb, line_cb, complete_cb, h);
        readline_show_prompt(h->rl);
    } else {
        h->partial = g_string_new(NULL);
        mon_session_write(s, HMP_PROMPT, strlen(HMP_PROMPT));
    }
}

void hmp_session_input(MonSession *s, const char *buf, size_t len)
{
    HmpSession *h = s->hmp;

    if (h->rl) {
        readline_feed(h->rl, buf, len);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n') {
            if (h->partial->len && h->partial->str[h->partial->len - 1]
                == '\r') {
                g_string_truncate(h->partial, h->partial->len - 1);
            }
            line_cb(h, h->partial->str);
            g_string_truncate(h->partial, 0);
        } else if (h->partial->len < 65536) {
            g_string_append_c(h->partial, buf[i]);
        }
    }
}

bool hmp_session_idle(const MonSession *s)
{
    return !s->hmp->busy && g_queue_is_empty(s->hmp->lines);
}

void hmp_session_end(MonSession *s)
{
    HmpSession *h = s->hmp;

    s->hmp = NULL;
    readline_free(h->rl);
    if (h->partial) {
        g_string_free(h->partial, TRUE);
    }
    h->s = NULL;
    if (!h->busy) {
        g_queue_free_full(h->lines, g_free);
        g_free(h);
    }
}
