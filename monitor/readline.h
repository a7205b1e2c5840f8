/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small line editor for the human monitor on terminals and sockets:
 * cursor movement, deletion, history and tab completion, with the
 * terminal escape sequences QEMU's monitor understands.
 */
#ifndef MONITOR_READLINE_H
#define MONITOR_READLINE_H

#include <stddef.h>

#include <glib.h>

typedef struct Readline Readline;

/* Write @len bytes of terminal output. */
typedef void ReadlineOutFn(void *opaque, const char *buf, size_t len);

/* A complete line was entered (borrowed). */
typedef void ReadlineLineFn(void *opaque, const char *line);

/*
 * Completion candidates for the word ending at the end of @line (the
 * text before the cursor); the word starts at *@word_start.  Returns a
 * new array of strings.
 */
typedef GPtrArray *ReadlineCompleteFn(void *opaque, const char *line,
                                      size_t *word_start);

Readline *readline_new(const char *prompt, ReadlineOutFn *out,
                       ReadlineLineFn *line, ReadlineCompleteFn *complete,
                       void *opaque);

/* Process typed bytes; may call the line callback several times. */
void readline_feed(Readline *rl, const char *buf, size_t len);

/* Print the prompt and the line being edited. */
void readline_show_prompt(Readline *rl);

void readline_free(Readline *rl);

#endif /* MONITOR_READLINE_H */
