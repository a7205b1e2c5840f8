/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QemuOpts-style option strings, "backend,key=value,flag,noflag", as
 * taken by -chardev, -mon, -machine, -name, -m and friends: an optional
 * implied first value, ",," for a literal comma, bare "key" meaning
 * key=on and "nokey" meaning key=off, the last repetition of a key
 * winning.
 */
#ifndef QAPI_OPTS_H
#define QAPI_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "qapi/error.h"

typedef struct Opts Opts;

/*
 * Parse @str.  @implied is the key of a first element without '=' (NULL:
 * none).  @known lists the accepted keys (NULL-terminated); any other
 * key fails with QEMU's "Invalid parameter 'x'".  Bare boolean keys are
 * accepted only when listed in @bools.
 */
Opts *opts_parse(const char *str, const char *implied,
                 const char *const *known, const char *const *bools,
                 Error **errp);

void opts_free(Opts *o);

/* The value of @key, or NULL. */
const char *opts_get(const Opts *o, const char *key);

bool opts_has(const Opts *o, const char *key);

/* The keys in order of appearance (repeated keys repeat). */
guint opts_count(const Opts *o);
const char *opts_key(const Opts *o, guint i);

/* on/off (also yes/no, true/false as QEMU); @dflt when absent. */
bool opts_get_bool(const Opts *o, const char *key, bool dflt, Error **errp);

/*
 * QEMU's boolean words for @key's value @v (on/yes/true/y, off/no/false/n);
 * false with "Parameter '@key' expects 'on' or 'off'" otherwise.
 */
bool opts_parse_bool(const char *key, const char *v, bool *out,
                     Error **errp);

/*
 * An id QEMU takes (-device, -drive, job and node names): a letter, then
 * letters, digits, '-', '.' and '_'.
 */
bool opts_id_wellformed(const char *id);

/* A size with optional suffix (k, M, G, T, P, E); @dflt when absent. */
bool opts_get_size(const Opts *o, const char *key, uint64_t dflt,
                   uint64_t *out, Error **errp);

/* Parse a QEMU size string ("64", "64M", "1.5G"); false when invalid. */
bool opts_parse_size(const char *s, uint64_t *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Opts, opts_free)

#endif /* QAPI_OPTS_H */
