/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-io's output and number formats (sizes with suffixes, rates,
 * times, hex dumps, the read/write report) and its reentrant getopt,
 * byte for byte as qemu-io 7.2.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "monitor/qemu-io-int.h"

/* ---- output and number formats ------------------------------------------ */

void G_GNUC_PRINTF(2, 3) qio_out(GString *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_string_append_vprintf(o, fmt, ap);
    va_end(ap);
}

/* qemu-io's size text: "4 KiB", "1.500 KiB", "512 bytes", "0.5 bytes"... */
void qio_cvtstr(double value, char *str, size_t size)
{
    static const struct {
        unsigned shift;
        const char *suffix;
    } units[] = {
        { 60, " EiB" }, { 50, " PiB" }, { 40, " TiB" },
        { 30, " GiB" }, { 20, " MiB" }, { 10, " KiB" },
    };
    const char *suffix = " bytes";
    char *trim;

    /* below 1 KiB qemu-io prints with %f, hence "0.445017 bytes" */
    snprintf(str, size, "%f", value);
    for (size_t i = 0; i < G_N_ELEMENTS(units); i++) {
        double unit = (double)(UINT64_C(1) << units[i].shift);

        if (value >= unit) {
            snprintf(str, size, "%.3f", value / unit);
            suffix = units[i].suffix;
            break;
        }
    }
    trim = strstr(str, ".000");
    if (trim) {
        *trim = '\0';
    }
    g_strlcat(str, suffix, size);
}

static void timestr(const struct timespec *t, char *ts, size_t size,
                    bool verbose)
{
    double frac = t->tv_nsec / 1e9;

    if (verbose || t->tv_sec) {
        snprintf(ts, size, "%u:%02u:%05.2f", (unsigned)(t->tv_sec / 3600),
                 (unsigned)(t->tv_sec % 3600 / 60),
                 (double)(t->tv_sec % 60) + frac);
    } else {
        snprintf(ts, size, "%05.2f sec", frac);
    }
}

struct timespec qio_tsub(struct timespec t2, struct timespec t1)
{
    t2.tv_sec -= t1.tv_sec;
    t2.tv_nsec -= t1.tv_nsec;
    if (t2.tv_nsec < 0) {
        t2.tv_nsec += 1000000000;
        t2.tv_sec--;
    }
    return t2;
}

static double tdiv(double value, const struct timespec *t)
{
    return value / ((double)t->tv_sec + (double)t->tv_nsec / 1e9);
}

void qio_print_report(GString *o, const char *op,
                         const struct timespec *t, int64_t offset,
                         int64_t count, int64_t total, int cnt, bool cflag)
{
    char s1[64], s2[64], ts[64];

    timestr(t, ts, sizeof(ts), cflag);
    if (cflag) {
        qio_out(o, "%" PRId64 ",%d,%s,%.3f,%.3f\n", total, cnt, ts,
            tdiv((double)total, t), tdiv((double)cnt, t));
        return;
    }
    qio_cvtstr((double)total, s1, sizeof(s1));
    qio_cvtstr(tdiv((double)total, t), s2, sizeof(s2));
    qio_out(o, "%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n", op,
        total, count, offset);
    qio_out(o, "%s, %d ops; %s (%s/sec and %.4f ops/sec)\n", s1, cnt, ts, s2,
        tdiv((double)cnt, t));
}

void qio_dump_buffer(GString *o, const uint8_t *buf, int64_t offset,
                        int64_t len)
{
    for (int64_t i = 0; i < len; i += 16) {
        int64_t n = MIN(16, len - i);

        qio_out(o, "%08" PRIx64 ":  ", (uint64_t)(offset + i));
        for (int64_t j = 0; j < n; j++) {
            qio_out(o, "%02x ", buf[i + j]);
        }
        g_string_append_c(o, ' ');
        for (int64_t j = 0; j < n; j++) {
            /* ASCII, not the locale's idea of a letter: stable output */
            g_string_append_c(o, g_ascii_isalnum(buf[i + j]) ? buf[i + j]
                                                              : '.');
        }
        g_string_append_c(o, '\n');
    }
}

/* log2 of the multiplier of a size suffix, or -1 (qemu's suffix_mul). */
static int suffix_shift(char c)
{
    switch (g_ascii_toupper(c)) {
    case 'B':
        return 0;
    case 'K':
        return 10;
    case 'M':
        return 20;
    case 'G':
        return 30;
    case 'T':
        return 40;
    case 'P':
        return 50;
    case 'E':
        return 60;
    }
    return -1;
}

/*
 * qemu_strtosz as qemu-io 7.2 has it: decimal or 0x hex, a fraction
 * (only together with a suffix; rounded to the nearest byte), a suffix
 * B/K/M/G/T/P/E in powers of 1024.  *@endp is where parsing stopped;
 * the caller rejects anything left over.
 */
static int strtosz_parse(GString *o, const char *s, const char **endp,
                         uint64_t *result)
{
    char *e;
    uint64_t val;
    uint64_t valf = 0;          /* the fraction, 0.64 fixed point */
    bool hex = false;
    int shift;
    uint64_t hi, lo, add;

    errno = 0;
    val = strtoull(s, &e, 10);
    *endp = e;
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (e == s) {
        return -EINVAL;
    }
    if (memchr(s, '-', e - s)) {
        *endp = s;
        return -EINVAL;
    }
    if (val == 0 && (*e == 'x' || *e == 'X')) {
        errno = 0;
        val = strtoull(s, &e, 16);
        *endp = e;
        if (errno == ERANGE) {
            return -ERANGE;
        }
        if (*e == '.') {
            *endp = s;
            return -EINVAL;
        }
        hex = true;
    } else if (*e == '.') {
        const char *f = e;
        double fraction;

        errno = 0;
        fraction = strtod(f, &e);
        if (e == f || errno == ERANGE) {
            /* "1.k": a point without digits; qemu skips just the point */
            e++;
        } else if (memchr(f, 'e', e - f) || memchr(f, 'E', e - f)) {
            *endp = s;
            return -EINVAL;
        } else {
            double scaled = fraction * 18446744073709551616.0;

            /*
             * .99999999999999999 rounds to 1.0; QEMU's (uint64_t) cast of
             * 2^64 yields 0 on x86, so the fraction then counts as none.
             */
            valf = scaled < 18446744073709551616.0 ? (uint64_t)scaled : 0;
        }
        *endp = e;
    }

    shift = suffix_shift(*e);
    if (shift >= 0) {
        if (hex) {
            qio_out(o, "warning: Using a multiplier suffix on hex numbers is "
                "deprecated: %s\n", s);
        }
        e++;
        *endp = e;
    } else {
        shift = 0;
    }
    if (shift == 0) {
        if (valf) {
            *endp = s;
            return -EINVAL;
        }
        *result = val;
        return 0;
    }

    /* val * 2^shift + round(valf * 2^shift), 128 bits wide */
    hi = val >> (64 - shift);
    lo = val << shift;
    add = valf >> (64 - shift);
    lo += add;
    hi += lo < add;
    add = (valf << shift) >> 63;
    lo += add;
    hi += lo < add;
    if (hi) {
        return -ERANGE;
    }
    *result = lo;
    return 0;
}

/* A byte count or offset: the value, or -EINVAL / -ERANGE. */
int64_t qio_cvtnum(GString *o, const char *s)
{
    const char *end = s;
    uint64_t val = 0;
    int ret = strtosz_parse(o, s, &end, &val);

    if (*end) {
        return -EINVAL;
    }
    if (ret < 0) {
        return ret;
    }
    return val > INT64_MAX ? -ERANGE : (int64_t)val;
}

void qio_print_cvtnum_err(GString *o, int64_t rc, const char *arg)
{
    if (rc == -ERANGE) {
        qio_out(o, "Parsing error: argument too large -- %s\n", arg);
    } else {
        qio_out(o, "Parsing error: non-numeric argument, or "
            "extraneous/unrecognized suffix -- %s\n", arg);
    }
}

/* A fill or verification byte: 0..255 in strtol's base 0, or -1. */
int qio_parse_pattern(GString *o, const char *arg)
{
    char *end = NULL;
    long pattern = strtol(arg, &end, 0);

    if (pattern < 0 || pattern > 255 || *end != '\0') {
        qio_out(o, "%s is not a valid pattern byte\n", arg);
        return -1;
    }
    return pattern;
}

/* ---- getopt ------------------------------------------------------------- */


void qio_opt_init(OptIter *it, int argc, char **argv)
{
    it->argc = argc;
    it->argv = argv;
    it->idx = 1;
    it->cluster = NULL;
    it->optarg = NULL;
    it->pos = g_ptr_array_new();
}

void qio_opt_free(OptIter *it)
{
    g_ptr_array_free(it->pos, TRUE);
}

/* The next option letter, '?' after printing an error, -1 at the end. */
int qio_opt_next(OptIter *it, GString *o, const char *optstring)
{
    const char *spec;
    char ch;

    while (!it->cluster || !*it->cluster) {
        const char *a;

        it->cluster = NULL;
        if (it->idx >= it->argc) {
            return -1;
        }
        a = it->argv[it->idx++];
        if (!strcmp(a, "--")) {
            while (it->idx < it->argc) {
                g_ptr_array_add(it->pos, it->argv[it->idx++]);
            }
            return -1;
        }
        if (a[0] != '-' || a[1] == '\0') {
            g_ptr_array_add(it->pos, (char *)a);
            continue;
        }
        it->cluster = a + 1;
    }
    ch = *it->cluster++;
    spec = ch == ':' ? NULL : strchr(optstring, ch);
    if (!spec) {
        qio_out(o, "%s: invalid option -- '%c'\n", it->argv[0], ch);
        return '?';
    }
    if (spec[1] == ':') {
        if (*it->cluster) {
            it->optarg = it->cluster;
        } else if (it->idx < it->argc) {
            it->optarg = it->argv[it->idx++];
        } else {
            qio_out(o, "%s: option requires an argument -- '%c'\n", it->argv[0],
                ch);
            return '?';
        }
        it->cluster = NULL;
    }
    return ch;
}
