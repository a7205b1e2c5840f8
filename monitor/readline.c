/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Line editing.  The edited line and cursor are the only state; every
 * change is shown by rewriting the line after the prompt ("\r", prompt,
 * text, erase to end of line, cursor back), which is simple and right
 * on any ANSI terminal.
 *
 * Keys: Left/Right, Ctrl-B/F; Home/End, Ctrl-A/E; Backspace, Delete,
 * Ctrl-D (delete at the cursor); Ctrl-K, Ctrl-U, Ctrl-W (kill); Up/Down,
 * Ctrl-P/N (history); Tab (completion); Enter (CR, LF or CR LF).
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "monitor/readline.h"

#define HISTORY_MAX 64

typedef enum {
    ST_NORM,
    ST_ESC,
    ST_CSI,
    ST_SS3,
} EscState;

struct Readline {
    char *prompt;
    ReadlineOutFn *out;
    ReadlineLineFn *line_cb;
    ReadlineCompleteFn *complete;
    void *opaque;

    GString *line;
    size_t cursor;
    EscState esc;
    unsigned csi_param;
    bool last_was_cr;

    GPtrArray *history;     /* oldest first */
    int hist_pos;           /* -1: not browsing */
    char *saved;            /* the line being typed before browsing */
};

static void out_str(Readline *rl, const char *s)
{
    rl->out(rl->opaque, s, strlen(s));
}

static void redraw(Readline *rl)
{
    GString *o = g_string_new("\r");

    g_string_append(o, rl->prompt);
    g_string_append_len(o, rl->line->str, rl->line->len);
    g_string_append(o, "\033[K");
    if (rl->cursor < rl->line->len) {
        g_string_append_printf(o, "\033[%zuD", rl->line->len - rl->cursor);
    }
    rl->out(rl->opaque, o->str, o->len);
    g_string_free(o, TRUE);
}

void readline_show_prompt(Readline *rl)
{
    out_str(rl, rl->prompt);
    if (rl->line->len) {
        redraw(rl);
    }
}

static void set_line(Readline *rl, const char *text)
{
    g_string_assign(rl->line, text);
    rl->cursor = rl->line->len;
    redraw(rl);
}

static void insert(Readline *rl, const char *s, size_t n)
{
    g_string_insert_len(rl->line, rl->cursor, s, n);
    rl->cursor += n;
    if (rl->cursor == rl->line->len) {
        rl->out(rl->opaque, s, n);     /* typing at the end: just echo */
    } else {
        redraw(rl);
    }
}

static void delete_range(Readline *rl, size_t from, size_t to)
{
    if (from >= to) {
        return;
    }
    g_string_erase(rl->line, from, to - from);
    rl->cursor = from;
    redraw(rl);
}

static void history_add(Readline *rl, const char *line)
{
    if (!*line) {
        return;
    }
    if (rl->history->len
        && !strcmp(g_ptr_array_index(rl->history, rl->history->len - 1),
                   line)) {
        return;
    }
    if (rl->history->len == HISTORY_MAX) {
        g_ptr_array_remove_index(rl->history, 0);
    }
    g_ptr_array_add(rl->history, g_strdup(line));
}

static void history_move(Readline *rl, int dir)
{
    int n = rl->history->len;
    int pos = rl->hist_pos < 0 ? n : rl->hist_pos;

    pos += dir;
    if (pos < 0 || pos > n) {
        return;
    }
    if (rl->hist_pos < 0) {
        g_free(rl->saved);
        rl->saved = g_strdup(rl->line->str);
    }
    rl->hist_pos = pos == n ? -1 : pos;
    set_line(rl, pos == n ? rl->saved : g_ptr_array_index(rl->history, pos));
}

static void accept_line(Readline *rl)
{
    g_autofree char *text = g_strdup(rl->line->str);

    out_str(rl, "\r\n");
    history_add(rl, text);
    rl->hist_pos = -1;
    g_string_truncate(rl->line, 0);
    rl->cursor = 0;
    rl->line_cb(rl->opaque, text);
}

static void do_complete(Readline *rl)
{
    g_autofree char *before = g_strndup(rl->line->str, rl->cursor);
    size_t word_start = 0;
    g_autoptr(GPtrArray) cands = NULL;
    size_t typed, common;

    if (!rl->complete) {
        return;
    }
    cands = rl->complete(rl->opaque, before, &word_start);
    if (!cands->len) {
        return;
    }
    typed = rl->cursor - word_start;
    common = strlen(g_ptr_array_index(cands, 0));
    for (guint i = 1; i < cands->len; i++) {
        const char *a = g_ptr_array_index(cands, 0);
        const char *b = g_ptr_array_index(cands, i);
        size_t k = 0;

        while (k < common && a[k] == b[k]) {
            k++;
        }
        common = k;
    }
    if (common > typed) {
        insert(rl, (const char *)g_ptr_array_index(cands, 0) + typed,
               common - typed);
    }
    if (cands->len == 1) {
        insert(rl, " ", 1);
        return;
    }
    if (common == typed) {
        GString *o = g_string_new("\r\n");

        for (guint i = 0; i < cands->len; i++) {
            g_string_append_printf(o, "%s%s", i ? " " : "",
                                   (char *)g_ptr_array_index(cands, i));
        }
        g_string_append(o, "\r\n");
        rl->out(rl->opaque, o->str, o->len);
        g_string_free(o, TRUE);
        out_str(rl, rl->prompt);
        redraw(rl);
    }
}

static void handle_csi(Readline *rl, char c)
{
    switch (c) {
    case 'A':
        history_move(rl, -1);
        break;
    case 'B':
        history_move(rl, 1);
        break;
    case 'C':
        if (rl->cursor < rl->line->len) {
            rl->cursor++;
            out_str(rl, "\033[C");
        }
        break;
    case 'D':
        if (rl->cursor > 0) {
            rl->cursor--;
            out_str(rl, "\033[D");
        }
        break;
    case 'H':
        rl->cursor = 0;
        redraw(rl);
        break;
    case 'F':
        rl->cursor = rl->line->len;
        redraw(rl);
        break;
    case '~':
        switch (rl->csi_param) {
        case 1:
        case 7:
            rl->cursor = 0;
            redraw(rl);
            break;
        case 3:
            delete_range(rl, rl->cursor,
                         MIN(rl->cursor + 1, rl->line->len));
            break;
        case 4:
        case 8:
            rl->cursor = rl->line->len;
            redraw(rl);
            break;
        }
        break;
    }
}

static void handle_byte(Readline *rl, unsigned char c)
{
    switch (rl->esc) {
    case ST_ESC:
        rl->esc = c == '[' ? ST_CSI : c == 'O' ? ST_SS3 : ST_NORM;
        rl->csi_param = 0;
        return;
    case ST_CSI:
        if (c >= '0' && c <= '9') {
            rl->csi_param = rl->csi_param * 10 + (c - '0');
            return;
        }
        rl->esc = ST_NORM;
        handle_csi(rl, c);
        return;
    case ST_SS3:
        rl->esc = ST_NORM;
        handle_csi(rl, c);
        return;
    case ST_NORM:
        break;
    }

    if (c == '\n' && rl->last_was_cr) {
        rl->last_was_cr = false;
        return;
    }
    rl->last_was_cr = c == '\r';
    switch (c) {
    case '\r':
    case '\n':
        accept_line(rl);
        break;
    case 27:
        rl->esc = ST_ESC;
        break;
    case 1:     /* Ctrl-A */
        rl->cursor = 0;
        redraw(rl);
        break;
    case 2:     /* Ctrl-B */
        handle_csi(rl, 'D');
        break;
    case 4:     /* Ctrl-D */
        delete_range(rl, rl->cursor, MIN(rl->cursor + 1, rl->line->len));
        break;
    case 5:     /* Ctrl-E */
        rl->cursor = rl->line->len;
        redraw(rl);
        break;
    case 6:     /* Ctrl-F */
        handle_csi(rl, 'C');
        break;
    case 8:     /* Ctrl-H */
    case 127:   /* Backspace */
        if (rl->cursor > 0) {
            delete_range(rl, rl->cursor - 1, rl->cursor);
        }
        break;
    case 9:     /* Tab */
        do_complete(rl);
        break;
    case 11:    /* Ctrl-K */
        g_string_truncate(rl->line, rl->cursor);
        redraw(rl);
        break;
    case 14:    /* Ctrl-N */
        history_move(rl, 1);
        break;
    case 16:    /* Ctrl-P */
        history_move(rl, -1);
        break;
    case 21:    /* Ctrl-U */
        delete_range(rl, 0, rl->cursor);
        break;
    case 23: {  /* Ctrl-W */
        size_t p = rl->cursor;

        while (p > 0 && rl->line->str[p - 1] == ' ') {
            p--;
        }
        while (p > 0 && rl->line->str[p - 1] != ' ') {
            p--;
        }
        delete_range(rl, p, rl->cursor);
        break;
    }
    default:
        if (c >= 32) {
            char ch = c;

            insert(rl, &ch, 1);
        }
        break;
    }
}

void readline_feed(Readline *rl, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        handle_byte(rl, (unsigned char)buf[i]);
    }
}

Readline *readline_new(const char *prompt, ReadlineOutFn *out,
                       ReadlineLineFn *line, ReadlineCompleteFn *complete,
                       void *opaque)
{
    Readline *rl = g_new0(Readline, 1);

    rl->prompt = g_strdup(prompt);
    rl->out = out;
    rl->line_cb = line;
    rl->complete = complete;
    rl->opaque = opaque;
    rl->line = g_string_new(NULL);
    rl->history = g_ptr_array_new_with_free_func(g_free);
    rl->hist_pos = -1;
    return rl;
}

void readline_free(Readline *rl)
{
    if (!rl) {
        return;
    }
    g_free(rl->prompt);
    g_string_free(rl->line, TRUE);
    g_ptr_array_unref(rl->history);
    g_free(rl->saved);
    g_free(rl);
}
