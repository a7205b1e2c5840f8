/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The human monitor's argument parser.  A command's args_type lists its
 * arguments in order; each is read from the line in turn, and what is
 * left must be white space.  The rules (and their odd corners) are
 * QEMU 7.2's, because people and scripts type what QEMU takes:
 *
 *   - a flag spec "-n" looks at the next word: "-n" sets it; another
 *     "-X" is left for a later flag spec when one has that letter and
 *     is refused ("unsupported option -X") otherwise; anything else is
 *     left for the next argument.  So flags go in table order, and only
 *     the letter right after the dash counts: "-nf" is -n, then "f" is
 *     the next argument.
 *   - a size ("o") is a number with an optional K/M/G/T/P/E/B suffix,
 *     MiB without one ("block_stream drive0 10" is 10 MiB/s); where the
 *     number ends is where the next argument starts, so "10x" fails only
 *     for the "x" left at the end of the line.
 *   - integers ("i", "l") are expressions: "8*1024" is fine.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/hmp-parse.h"
#include "qapi/qjson.h"

/* QEMU reads strings into a 1024-byte buffer, silently cut there. */
#define HMP_STR_MAX 1023

bool hmp_isspace(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

const char *hmp_skip_spaces(const char *p)
{
    while (hmp_isspace(*p)) {
        p++;
    }
    return p;
}

static void str_add(GString *s, char c)
{
    if (s->len < HMP_STR_MAX) {
        g_string_append_c(s, c);
    }
}

char *hmp_get_str(const char **pp)
{
    const char *p = hmp_skip_spaces(*pp);
    g_autoptr(GString) s = g_string_new(NULL);

    if (!*p) {
        *pp = p;
        return NULL;
    }
    if (*p != '"') {
        while (*p && !hmp_isspace(*p)) {
            str_add(s, *p++);
        }
        *pp = p;
        return g_string_free(g_steal_pointer(&s), FALSE);
    }
    p++;
    while (*p && *p != '"') {
        char c = *p++;

        if (c == '\\') {
            c = *p;
            if (c) {
                p++;
            }
            switch (c) {
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case '\\':
            case '\'':
            case '"':
                break;
            default:
                /* QEMU prints these two on stdout, not to the monitor */
                printf("unsupported escape code: '\\%c'\n", c);
                fflush(stdout);
                *pp = p;
                return NULL;
            }
        }
        str_add(s, c);
    }
    if (*p != '"') {
        printf("unterminated string\n");
        fflush(stdout);
        *pp = p;
        return NULL;
    }
    *pp = p + 1;
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* ---- sizes ------------------------------------------------------------ */

static uint64_t suffix_mul(char c)
{
    switch (g_ascii_toupper(c)) {
    case 'B':
        return 1;
    case 'K':
        return 1ull << 10;
    case 'M':
        return 1ull << 20;
    case 'G':
        return 1ull << 30;
    case 'T':
        return 1ull << 40;
    case 'P':
        return 1ull << 50;
    case 'E':
        return 1ull << 60;
    default:
        return 0;
    }
}

/* strtoull() as QEMU's qemu_strtou64() checks it. */
static int parse_u64(const char *nptr, const char **end, int base,
                     uint64_t *val)
{
    char *ep;

    errno = 0;
    *val = strtoull(nptr, &ep, base);
    *end = ep;
    if (errno == ERANGE) {
        return -ERANGE;
    }
    return ep == nptr ? -EINVAL : 0;
}

/*
 * The fraction at @f ('.' and digits) as strtod() reads it, for a size:
 * 0 with *@frac, or < 0 when it has none or is out of range, *@end left
 * where QEMU's qemu_strtod_finite() leaves it.
 */
static int parse_fraction(const char *f, const char **end, double *frac)
{
    char *ep;
    double d;

    errno = 0;
    d = strtod(f, &ep);
    *end = ep;
    if (ep == f) {
        return -EINVAL;
    }
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (!isfinite(d)) {
        *end = f;
        return -EINVAL;
    }
    *frac = d;
    return 0;
}

int hmp_strtosz_mib(const char *nptr, const char **end, uint64_t *result)
{
    const char *ep;
    uint64_t val, valf = 0, mul;
    unsigned __int128 exact;
    int ret;

    ret = parse_u64(nptr, &ep, 10, &val);
    if (ret) {
        goto out;
    }
    if (memchr(nptr, '-', ep - nptr)) {
        ep = nptr;
        ret = -EINVAL;
        goto out;
    }
    if (val == 0 && (*ep == 'x' || *ep == 'X')) {
        /* hexadecimal: a suffix may follow, a fraction may not */
        ret = parse_u64(nptr, &ep, 16, &val);
        if (ret) {
            goto out;
        }
        if (*ep == '.') {
            ep = nptr;
            ret = -EINVAL;
            goto out;
        }
    } else if (*ep == '.') {
        const char *f = ep;
        double frac;

        if (parse_fraction(f, &ep, &frac) < 0) {
            if (ep == f) {
                /* "1." and "1.k": no digits; QEMU skips the '.' */
                ep++;
            } else if (memchr(f, 'e', ep - f) || memchr(f, 'E', ep - f)) {
                /* out of range through an exponent: invalid, as below */
                ep = nptr;
                ret = -EINVAL;
                goto out;
            } else if (*ep) {
                /*
                 * Out of range digits: QEMU skips one character after
                 * them, and past the end of the string when there is
                 * none (it reads beyond the buffer); here never past it.
                 */
                ep++;
            }
        } else if (memchr(f, 'e', ep - f) || memchr(f, 'E', ep - f)) {
            ep = nptr;
            ret = -EINVAL;
            goto out;
        } else {
            double scaled = frac * 0x1p64;

            /*
             * 64.64 fixed point, as QEMU computes it.  A fraction that
             * rounds up to 1.0 ("0.99999999999999999") overflows QEMU's
             * conversion, which gives 0 on x86-64: so here too.
             */
            valf = scaled >= 0x1p64 ? 0 : (uint64_t)scaled;
        }
    }
    mul = suffix_mul(*ep);
    if (mul) {
        ep++;
    } else {
        mul = 1ull << 20;
    }
    if (mul == 1) {
        /* bytes cannot be fractional */
        if (valf) {
            ep = nptr;
            ret = -EINVAL;
            goto out;
        }
    } else {
        unsigned __int128 frac = (unsigned __int128)valf * mul;

        exact = (unsigned __int128)val * mul + (uint64_t)(frac >> 64);
        /* half a byte or more rounds up */
        exact += (uint64_t)frac >> 63;
        if (exact >> 64) {
            ret = -ERANGE;
            goto out;
        }
        val = (uint64_t)exact;
    }
    ret = 0;
out:
    *end = ep;
    if (!ret) {
        *result = val;
    }
    return ret;
}

/* ---- integer expressions ---------------------------------------------- */

typedef struct {
    const char *p;
    GString *out;
    bool failed;
} Expr;

static int64_t G_GNUC_PRINTF(2, 3) expr_fail(Expr *e, const char *fmt, ...)
{
    va_list ap;

    if (!e->failed) {
        va_start(ap, fmt);
        g_string_append_vprintf(e->out, fmt, ap);
        va_end(ap);
        g_string_append_c(e->out, '\n');
        e->failed = true;
    }
    return 0;
}

/* Past the current character and the white space after it. */
static void expr_next(Expr *e)
{
    if (*e->p) {
        e->p = hmp_skip_spaces(e->p + 1);
    }
}

static int64_t expr_sum(Expr *e);

static int64_t expr_unary(Expr *e)
{
    int64_t n;
    char *end;

    if (e->failed) {
        return 0;
    }
    switch (*e->p) {
    case '+':
        expr_next(e);
        return expr_unary(e);
    case '-':
        expr_next(e);
        return -(uint64_t)expr_unary(e);
    case '~':
        expr_next(e);
        return ~expr_unary(e);
    case '(':
        expr_next(e);
        n = expr_sum(e);
        if (e->failed) {
            return 0;
        }
        if (*e->p != ')') {
            return expr_fail(e, "')' expected");
        }
        expr_next(e);
        return n;
    case '\'':
        e->p++;
        if (!*e->p) {
            return expr_fail(e, "character constant expected");
        }
        n = *e->p++;
        if (*e->p != '\'') {
            return expr_fail(e, "missing terminating ' character");
        }
        expr_next(e);
        return n;
    case '$':
        /* registers are a CPU's, and the emulated guest has none */
        e->p++;
        while (g_ascii_isalnum(*e->p) || *e->p == '_' || *e->p == '.') {
            e->p++;
        }
        e->p = hmp_skip_spaces(e->p);
        return expr_fail(e, "unknown register");
    case '\0':
        return expr_fail(e, "unexpected end of expression");
    default:
        errno = 0;
        n = (int64_t)strtoull(e->p, &end, 0);
        if (errno == ERANGE) {
            return expr_fail(e, "number too large");
        }
        if (end == e->p) {
            return expr_fail(e, "invalid char '%c' in expression", *end);
        }
        e->p = hmp_skip_spaces(end);
        return n;
    }
}

/* The binary operators by precedence, loosest first, as QEMU's. */
static const char *const expr_ops[] = { "+-", "&|^", "*/%" };

static int64_t expr_apply(Expr *e, char op, int64_t a, int64_t b)
{
    uint64_t ua = a, ub = b;

    switch (op) {
    case '+':
        return (int64_t)(ua + ub);
    case '-':
        return (int64_t)(ua - ub);
    case '*':
        return (int64_t)(ua * ub);
    case '&':
        return a & b;
    case '|':
        return a | b;
    case '^':
        return a ^ b;
    }
    if (b == 0) {
        return expr_fail(e, "division by zero");
    }
    if (b == -1) {
        /* INT64_MIN / -1 wraps, as it does on QEMU's host */
        return op == '/' ? (int64_t)-ua : 0;
    }
    return op == '/' ? a / b : a % b;
}

static int64_t expr_level(Expr *e, size_t level)
{
    int64_t val;

    if (level == G_N_ELEMENTS(expr_ops)) {
        return expr_unary(e);
    }
    val = expr_level(e, level + 1);
    while (!e->failed && *e->p && strchr(expr_ops[level], *e->p)) {
        char op = *e->p;
        int64_t v2;

        expr_next(e);
        v2 = expr_level(e, level + 1);
        if (!e->failed) {
            val = expr_apply(e, op, val, v2);
        }
    }
    return val;
}

static int64_t expr_sum(Expr *e)
{
    return expr_level(e, 0);
}

bool hmp_get_expr(const char **pp, int64_t *val, GString *out)
{
    Expr e = { hmp_skip_spaces(*pp), out, false };
    int64_t v = expr_sum(&e);

    *pp = e.p;
    if (e.failed) {
        return false;
    }
    *val = v;
    return true;
}

/* ---- the argument list ------------------------------------------------- */

/* One "key:T" of an args_type. */
typedef struct {
    char *key;
    char type;          /* s S B F i l o b, or '-' for a flag */
    char letter;        /* a flag's letter */
    bool takes_value;   /* -Xs */
    bool optional;      /* T? */
    const char *rest;   /* the args_type after this spec */
} ArgSpec;

/* The spec at @p (past any ','), or false at the end. */
static bool next_spec(const char *p, ArgSpec *a)
{
    const char *colon;
    const char *t;

    if (*p == ',') {
        p++;
    }
    colon = strchr(p, ':');
    if (!*p || !colon) {
        return false;
    }
    a->key = g_strndup(p, colon - p);
    t = colon + 1;
    a->type = *t++;
    a->letter = 0;
    a->takes_value = false;
    a->optional = false;
    if (a->type == '-') {
        a->letter = *t ? *t++ : 0;
        if (*t == 's') {
            a->takes_value = true;
            t++;
        }
    } else if (*t == '?') {
        a->optional = true;
        t++;
    }
    a->rest = t;
    return true;
}

bool hmp_args_type_check(const char *args_type, Error **errp)
{
    const char *p = args_type;
    ArgSpec a;

    while (next_spec(p, &a)) {
        bool bad = !strchr("sSBFilob-", a.type)
                   || (a.type == '-' && !a.letter)
                   || (*a.rest && *a.rest != ',');

        g_free(a.key);
        if (bad) {
            error_setg(errp, "bad argument type at '%s'", p);
            return false;
        }
        p = a.rest;
    }
    if (*p && strcmp(p, ",")) {
        error_setg(errp, "bad argument type at '%s'", p);
        return false;
    }
    return true;
}

static const char *string_noun(char type)
{
    switch (type) {
    case 'F':
        return "filename";
    case 'B':
        return "block device name";
    default:
        return "string";
    }
}

/*
 * A flag spec at *@pp: see the file comment.  False after a message.
 * QEMU formats the unknown letter with %c into a C string: at the end
 * of the line that letter is NUL, which ends its message right there,
 * newline and all.
 */
static bool parse_flag(const char *name, const ArgSpec *a, const char **pp,
                       json_t *args, GString *out)
{
    const char *start = *pp;
    const char *p = hmp_skip_spaces(start);

    if (*p != '-') {
        return true;
    }
    p++;
    if (*p != a->letter) {
        char option[3] = { '-', *p, '\0' };

        /* at the end of the line that is "-": any later flag */
        if (!strstr(a->rest, option)) {
            g_string_append_printf(out, "%s: unsupported option -", name);
            if (*p) {
                g_string_append_printf(out, "%c\n", *p);
            }
            return false;
        }
        /* a later flag spec takes it */
        *pp = start;
        return true;
    }
    p++;
    if (a->takes_value) {
        g_autofree char *v = hmp_get_str(&p);

        if (!v) {
            g_string_append_printf(out, "%s: value expected for -%c\n", name,
                                   a->letter);
            return false;
        }
        json_object_set_new(args, a->key, qjson_str(v));
    } else {
        json_object_set_new(args, a->key, json_true());
    }
    *pp = p;
    return true;
}

json_t *hmp_parse_args(const char *name, const char *args_type,
                       const char **pp, GString *out)
{
    g_autoptr(json_t) args = json_object();
    const char *spec = args_type;
    const char *p = *pp;
    ArgSpec a;

    while (next_spec(spec, &a)) {
        g_autofree char *key = a.key;

        spec = a.rest;
        if (a.type == '-') {
            if (!parse_flag(name, &a, &p, args, out)) {
                return NULL;
            }
            continue;
        }
        p = hmp_skip_spaces(p);
        if (a.optional && !*p) {
            continue;
        }
        switch (a.type) {
        case 's':
        case 'B':
        case 'F': {
            g_autofree char *v = hmp_get_str(&p);

            if (!v) {
                g_string_append_printf(out, "%s: %s expected\n", name,
                                       string_noun(a.type));
                return NULL;
            }
            json_object_set_new(args, key, qjson_str(v));
            break;
        }
        case 'S':
            if (!*p) {
                g_string_append_printf(out, "%s: string expected\n", name);
                return NULL;
            }
            json_object_set_new(args, key, qjson_str(p));
            p += strlen(p);
            break;
        case 'i':
        case 'l': {
            int64_t v;

            if (!hmp_get_expr(&p, &v, out)) {
                return NULL;
            }
            if (a.type == 'i' && (v >> 32)) {
                g_string_append_printf(out, "'%s' has failed: integer is for "
                                       "32-bit values\n", name);
                return NULL;
            }
            json_object_set_new(args, key, json_integer(v));
            break;
        }
        case 'o': {
            uint64_t v;
            const char *end;

            if (hmp_strtosz_mib(p, &end, &v) < 0 || v > INT64_MAX) {
                g_string_append(out, "invalid size\n");
                return NULL;
            }
            json_object_set_new(args, key, json_integer((json_int_t)v));
            p = end;
            break;
        }
        case 'b': {
            const char *beg = p;

            while (g_ascii_isgraph(*p)) {
                p++;
            }
            if (p - beg == 2 && !memcmp(beg, "on", 2)) {
                json_object_set_new(args, key, json_true());
            } else if (p - beg == 3 && !memcmp(beg, "off", 3)) {
                json_object_set_new(args, key, json_false());
            } else {
                g_string_append(out, "Expected 'on' or 'off'\n");
                return NULL;
            }
            break;
        }
        default:
            g_assert_not_reached();
        }
    }
    p = hmp_skip_spaces(p);
    if (*p) {
        g_string_append_printf(out, "%s: extraneous characters at the end of "
                               "line\n", name);
        return NULL;
    }
    *pp = p;
    return g_steal_pointer(&args);
}
