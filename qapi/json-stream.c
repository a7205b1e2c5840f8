/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * JSON message stream, three stages as in QEMU 7.2:
 *
 *   bytes --lexer--> tokens --splitter--> token list --parser--> json_t
 *
 * The lexer is a character state machine.  On a character no token can
 * contain it reports the token so far plus that character as a "stray"
 * error, then skips input up to the next structural character, control
 * character or 0xFE/0xFF byte; this is how a client resynchronizes.
 *
 * The splitter counts braces and brackets and hands the collected tokens
 * to the parser when they balance (or go negative, or a scalar arrives at
 * the top level).  The limits are checked before each token is queued;
 * on an error the tokens are dropped and counting restarts, so a flood of
 * brackets costs bounded memory and yields a bounded stream of errors.
 *
 * The parser is recursive descent over a complete token list; the
 * nesting limit bounds its recursion.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qapi/json-stream.h"
#include "qapi/qjson.h"

#define MAX_TOKEN_SIZE (64u << 20)
#define MAX_TOKEN_COUNT (2u << 20)
#define MAX_NESTING 1024

typedef enum {
    TOK_ERROR,
    TOK_LCURLY,
    TOK_RCURLY,
    TOK_LSQUARE,
    TOK_RSQUARE,
    TOK_COLON,
    TOK_COMMA,
    TOK_INTEGER,
    TOK_FLOAT,
    TOK_KEYWORD,
    TOK_STRING,
    TOK_OVERSIZE,       /* a token cut at MAX_TOKEN_SIZE */
    TOK_END,
} TokType;

typedef enum {
    LX_START,
    LX_RECOVERY,
    LX_DQ,
    LX_DQ_ESC,
    LX_SQ,
    LX_SQ_ESC,
    LX_ZERO,
    LX_SIGN,
    LX_DIGITS,
    LX_MANTISSA,
    LX_MANTISSA_DIGITS,
    LX_EXP_E,
    LX_EXP_SIGN,
    LX_EXP_DIGITS,
    LX_KEYWORD,
} LexState;

/* What the lexer does with one character in one state. */
typedef enum {
    ACT_NEXT,           /* consume, go to the new state */
    ACT_EMIT,           /* consume, emit the token, back to start */
    ACT_EMIT_BEFORE,    /* emit the token, then reprocess the character */
    ACT_RESYNC,         /* leave recovery, reprocess the character */
    ACT_ERROR,          /* consume, report a stray token, recover */
} LexAct;

typedef struct {
    TokType type;
    size_t len;
    char *str;
} Token;

struct QJsonStream {
    QJsonStreamEmit *emit;
    void *opaque;

    LexState state;
    GString *tok;

    GArray *tokens;     /* of Token, the message being collected */
    size_t tokens_size;
    int braces;
    int brackets;
};

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool in_string_range(unsigned char c)
{
    return c >= 0x20 && c <= 0xFD;
}

/*
 * The transition function.  Sets *next and *type where the action needs
 * them.  Mirrors QEMU's lexer table state by state.
 */
static LexAct lex_step(LexState st, unsigned char c, LexState *next,
                       TokType *type)
{
    switch (st) {
    case LX_START:
        switch (c) {
        case '"':  *next = LX_DQ; return ACT_NEXT;
        case '\'': *next = LX_SQ; return ACT_NEXT;
        case '0':  *next = LX_ZERO; return ACT_NEXT;
        case '-':  *next = LX_SIGN; return ACT_NEXT;
        case '{':  *type = TOK_LCURLY; return ACT_EMIT;
        case '}':  *type = TOK_RCURLY; return ACT_EMIT;
        case '[':  *type = TOK_LSQUARE; return ACT_EMIT;
        case ']':  *type = TOK_RSQUARE; return ACT_EMIT;
        case ':':  *type = TOK_COLON; return ACT_EMIT;
        case ',':  *type = TOK_COMMA; return ACT_EMIT;
        case ' ': case '\t': case '\r': case '\n':
            *next = LX_START;
            return ACT_NEXT;
        }
        if (c >= '1' && c <= '9') {
            *next = LX_DIGITS;
            return ACT_NEXT;
        }
        if (c >= 'a' && c <= 'z') {
            *next = LX_KEYWORD;
            return ACT_NEXT;
        }
        return ACT_ERROR;
    case LX_RECOVERY:
        if (c == '\t' || (in_string_range(c) && !strchr("[]{}:,", c))) {
            *next = LX_RECOVERY;
            return ACT_NEXT;
        }
        return ACT_RESYNC;
    case LX_DQ:
    case LX_SQ:
        if (c == '\\') {
            *next = st == LX_DQ ? LX_DQ_ESC : LX_SQ_ESC;
            return ACT_NEXT;
        }
        if (c == (st == LX_DQ ? '"' : '\'')) {
            *type = TOK_STRING;
            return ACT_EMIT;
        }
        if (in_string_range(c)) {
            *next = st;
            return ACT_NEXT;
        }
        return ACT_ERROR;
    case LX_DQ_ESC:
    case LX_SQ_ESC:
        if (in_string_range(c)) {
            *next = st == LX_DQ_ESC ? LX_DQ : LX_SQ;
            return ACT_NEXT;
        }
        return ACT_ERROR;
    case LX_ZERO:
        if (is_digit(c)) {
            return ACT_ERROR;
        }
        if (c == '.') {
            *next = LX_MANTISSA;
            return ACT_NEXT;
        }
        *type = TOK_INTEGER;
        return ACT_EMIT_BEFORE;
    case LX_SIGN:
        if (c == '0') {
            *next = LX_ZERO;
            return ACT_NEXT;
        }
        if (c >= '1' && c <= '9') {
            *next = LX_DIGITS;
            return ACT_NEXT;
        }
        return ACT_ERROR;
    case LX_DIGITS:
        if (is_digit(c)) {
            *next = LX_DIGITS;
            return ACT_NEXT;
        }
        if (c == 'e' || c == 'E') {
            *next = LX_EXP_E;
            return ACT_NEXT;
        }
        if (c == '.') {
            *next = LX_MANTISSA;
            return ACT_NEXT;
        }
        *type = TOK_INTEGER;
        return ACT_EMIT_BEFORE;
    case LX_MANTISSA:
        if (is_digit(c)) {
            *next = LX_MANTISSA_DIGITS;
            return ACT_NEXT;
        }
        return ACT_ERROR;
    case LX_MANTISSA_DIGITS:
        if (is_digit(c)) {
            *next = LX_MANTISSA_DIGITS;
            return ACT_NEXT;
        }
        if (c == 'e' || c == 'E') {
            *next = LX_EXP_E;
            return ACT_NEXT;
        }
        *type = TOK_FLOAT;
        return ACT_EMIT_BEFORE;
    case LX_EXP_E:
        if (c == '-' || c == '+') {
            *next = LX_EXP_SIGN;
            return ACT_NEXT;
        }
        if (is_digit(c)) {
            *next = LX_EXP_DIGITS;
            return ACT_NEXT;
        }
        return ACT_ERROR;
    case LX_EXP_SIGN:
        if (is_digit(c)) {
            *next = LX_EXP_DIGITS;
            return ACT_NEXT;
        }
        return ACT_ERROR;
    case LX_EXP_DIGITS:
        if (is_digit(c)) {
            *next = LX_EXP_DIGITS;
            return ACT_NEXT;
        }
        *type = TOK_FLOAT;
        return ACT_EMIT_BEFORE;
    case LX_KEYWORD:
        if (c >= 'a' && c <= 'z') {
            *next = LX_KEYWORD;
            return ACT_NEXT;
        }
        *type = TOK_KEYWORD;
        return ACT_EMIT_BEFORE;
    }
    g_assert_not_reached();
}

/* ---- parser ---------------------------------------------------------- */

typedef struct {
    const Token *toks;
    size_t n;
    size_t pos;
    GHashTable *big;
    Error *err;
} Parser;

static void G_GNUC_PRINTF(2, 3) parse_error(Parser *p, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    if (p->err) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_setg(&p->err, "JSON parse error, %s", msg);
    g_free(msg);
}

static const Token *peek(Parser *p)
{
    return p->pos < p->n ? &p->toks[p->pos] : NULL;
}

static const Token *pop(Parser *p)
{
    return p->pos < p->n ? &p->toks[p->pos++] : NULL;
}

static int hex4(const char *s)
{
    int cp = 0;

    for (int i = 0; i < 4; i++) {
        int d = g_ascii_xdigit_value(s[i]);

        if (d < 0) {
            return -1;
        }
        cp = cp << 4 | d;
    }
    return cp;
}

static json_t *parse_string(Parser *p, const Token *t)
{
    const char *s = t->str;
    const char quote = *s++;
    GString *out = g_string_new(NULL);
    char buf[5];

    while (*s != quote) {
        const char *beg = s;
        int cp;

        if (*s != '\\') {
            const char *end;

            cp = qjson_utf8_decode(s, 6, &end);
            if (cp < 0) {
                parse_error(p, "invalid UTF-8 sequence in string");
                goto fail;
            }
            g_string_append_len(out, s, end - s);
            s = end;
            continue;
        }
        s++;
        switch (*s++) {
        case '"':  g_string_append_c(out, '"'); break;
        case '\'': g_string_append_c(out, '\''); break;
        case '\\': g_string_append_c(out, '\\'); break;
        case '/':  g_string_append_c(out, '/'); break;
        case 'b':  g_string_append_c(out, '\b'); break;
        case 'f':  g_string_append_c(out, '\f'); break;
        case 'n':  g_string_append_c(out, '\n'); break;
        case 'r':  g_string_append_c(out, '\r'); break;
        case 't':  g_string_append_c(out, '\t'); break;
        case 'u':
            /*
             * A short escape such as \u00" reads into the closing quote;
             * hex4() stops at the first non-hex character, as the token
             * always ends with the quote and a NUL.
             */
            cp = hex4(s);
            s += strnlen(s, 4);
            if (cp >= 0xD800 && cp <= 0xDBFF && s[0] == '\\' && s[1] == 'u') {
                int low = hex4(s + 2);

                cp = 0x10000 + ((cp & 0x3FF) << 10);
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    cp |= low & 0x3FF;
                    s += 6;
                } else {
                    cp = -1;
                }
            }
            if (qjson_utf8_encode(buf, cp) < 0) {
                parse_error(p, "%.*s is not a valid Unicode character",
                            (int)(s - beg), beg);
                goto fail;
            }
            g_string_append(out, buf);
            break;
        default:
            parse_error(p, "invalid escape sequence in string");
            goto fail;
        }
    }
    {
        json_t *v = json_stringn_nocheck(out->str, out->len);

        g_string_free(out, TRUE);
        return v;
    }
fail:
    g_string_free(out, TRUE);
    return NULL;
}

static json_t *parse_number(Parser *p, const Token *t)
{
    if (t->type == TOK_INTEGER) {
        char *end;
        long long v;
        unsigned long long u;

        errno = 0;
        v = strtoll(t->str, &end, 10);
        if (errno == 0) {
            return json_integer(v);
        }
        if (t->str[0] != '-') {
            errno = 0;
            u = strtoull(t->str, &end, 10);
            if (errno == 0) {
                json_t *n = json_integer((json_int_t)u);

                if (!p->big) {
                    p->big = g_hash_table_new(NULL, NULL);
                }
                g_hash_table_add(p->big, n);
                return n;
            }
        }
        /* too large for 64 bits: a double, as QEMU does */
    }
    return json_real(g_ascii_strtod(t->str, NULL));
}

static json_t *parse_value(Parser *p);

static json_t *parse_object(Parser *p)
{
    json_t *obj = json_object();
    const Token *t;

    pop(p); /* '{' */
    t = peek(p);
    if (!t) {
        parse_error(p, "premature EOI");
        goto fail;
    }
    if (t->type == TOK_RCURLY) {
        pop(p);
        return obj;
    }
    for (;;) {
        json_t *key, *val;

        if (!peek(p)) {
            parse_error(p, "premature EOI");
            goto fail;
        }
        key = parse_value(p);
        if (!key || !json_is_string(key)) {
            json_decref(key);
            parse_error(p, "key is not a string in object");
            goto fail;
        }
        t = pop(p);
        if (!t || t->type != TOK_COLON) {
            json_decref(key);
            parse_error(p, t ? "missing : in object pair" : "premature EOI");
            goto fail;
        }
        val = parse_value(p);
        if (!val) {
            json_decref(key);
            parse_error(p, "Missing value in dict");
            goto fail;
        }
        if (json_object_get(obj, json_string_value(key))) {
            json_decref(key);
            json_decref(val);
            parse_error(p, "duplicate key");
            goto fail;
        }
        json_object_set_new_nocheck(obj, json_string_value(key), val);
        json_decref(key);

        t = pop(p);
        if (!t) {
            parse_error(p, "premature EOI");
            goto fail;
        }
        if (t->type == TOK_RCURLY) {
            return obj;
        }
        if (t->type != TOK_COMMA) {
            parse_error(p, "expected separator in dict");
            goto fail;
        }
    }
fail:
    json_decref(obj);
    return NULL;
}

static json_t *parse_array(Parser *p)
{
    json_t *arr = json_array();
    const Token *t;

    pop(p); /* '[' */
    t = peek(p);
    if (!t) {
        parse_error(p, "premature EOI");
        goto fail;
    }
    if (t->type == TOK_RSQUARE) {
        pop(p);
        return arr;
    }
    for (;;) {
        json_t *val = parse_value(p);

        if (!val) {
            parse_error(p, "expecting value");
            goto fail;
        }
        json_array_append_new(arr, val);
        t = pop(p);
        if (!t) {
            parse_error(p, "premature EOI");
            goto fail;
        }
        if (t->type == TOK_RSQUARE) {
            return arr;
        }
        if (t->type != TOK_COMMA) {
            parse_error(p, "expected separator in list");
            goto fail;
        }
    }
fail:
    json_decref(arr);
    return NULL;
}

static json_t *parse_value(Parser *p)
{
    const Token *t = peek(p);

    if (!t) {
        parse_error(p, "premature EOI");
        return NULL;
    }
    switch (t->type) {
    case TOK_LCURLY:
        return parse_object(p);
    case TOK_LSQUARE:
        return parse_array(p);
    case TOK_STRING:
        return parse_string(p, pop(p));
    case TOK_INTEGER:
    case TOK_FLOAT:
        return parse_number(p, pop(p));
    case TOK_KEYWORD:
        pop(p);
        if (!strcmp(t->str, "true")) {
            return json_true();
        }
        if (!strcmp(t->str, "false")) {
            return json_false();
        }
        if (!strcmp(t->str, "null")) {
            return json_null();
        }
        parse_error(p, "invalid keyword '%s'", t->str);
        return NULL;
    default:
        parse_error(p, "expecting value");
        return NULL;
    }
}

/* ---- splitter -------------------------------------------------------- */

static void tokens_clear(QJsonStream *s)
{
    for (guint i = 0; i < s->tokens->len; i++) {
        g_free(g_array_index(s->tokens, Token, i).str);
    }
    g_array_set_size(s->tokens, 0);
    s->tokens_size = 0;
    s->braces = 0;
    s->brackets = 0;
}

static void emit_parsed(QJsonStream *s)
{
    Parser p = {
        .toks = (const Token *)s->tokens->data,
        .n = s->tokens->len,
    };
    json_t *v = parse_value(&p);

    if (p.err) {
        json_decref(v);
        v = NULL;
        if (p.big) {
            g_hash_table_unref(p.big);
            p.big = NULL;
        }
    }
    tokens_clear(s);
    s->emit(s->opaque, v, p.big, p.err);
}

static void emit_error(QJsonStream *s, Error *err)
{
    tokens_clear(s);
    s->emit(s->opaque, NULL, NULL, err);
}

static void splitter_token(QJsonStream *s, TokType type, const char *str,
                           size_t len)
{
    Error *err = NULL;
    Token tok;

    switch (type) {
    case TOK_LCURLY:
        s->braces++;
        break;
    case TOK_RCURLY:
        s->braces--;
        break;
    case TOK_LSQUARE:
        s->brackets++;
        break;
    case TOK_RSQUARE:
        s->brackets--;
        break;
    case TOK_ERROR:
        error_setg(&err, "JSON parse error, stray '%s'", str);
        emit_error(s, err);
        return;
    case TOK_END:
        if (s->tokens->len) {
            emit_parsed(s);
        }
        return;
    default:
        break;
    }

    if (s->tokens_size + len + 1 > MAX_TOKEN_SIZE) {
        error_setg(&err, "JSON token size limit exceeded");
    } else if (s->tokens->len + 1 > MAX_TOKEN_COUNT) {
        error_setg(&err, "JSON token count limit exceeded");
    } else if (s->braces + s->brackets > MAX_NESTING) {
        error_setg(&err, "JSON nesting depth limit exceeded");
    }
    if (err) {
        emit_error(s, err);
        return;
    }

    tok.type = type;
    tok.len = len;
    tok.str = g_strndup(str, len);
    g_array_append_val(s->tokens, tok);
    s->tokens_size += len;

    if ((s->braces > 0 || s->brackets > 0)
        && s->braces >= 0 && s->brackets >= 0) {
        return;
    }
    emit_parsed(s);
}

/* ---- lexer driver ---------------------------------------------------- */

static void lex_char(QJsonStream *s, unsigned char c, bool flush)
{
    bool consumed = false;

    while (flush ? s->state != LX_START : !consumed) {
        LexState next = LX_START;
        TokType type = TOK_ERROR;
        /*
         * On flush @c is NUL, which no state consumes: every pending token
         * ends (ACT_EMIT_BEFORE), fails (ACT_ERROR) or resyncs.
         */
        LexAct act = lex_step(s->state, c, &next, &type);

        g_assert(!flush || (act != ACT_NEXT && act != ACT_EMIT));
        switch (act) {
        case ACT_NEXT:
            consumed = true;
            if (next == LX_START || next == LX_RECOVERY) {
                g_string_truncate(s->tok, 0);
            } else {
                g_string_append_c(s->tok, c);
            }
            s->state = next;
            break;
        case ACT_EMIT:
            consumed = true;
            g_string_append_c(s->tok, c);
            splitter_token(s, type, s->tok->str, s->tok->len);
            g_string_truncate(s->tok, 0);
            s->state = LX_START;
            break;
        case ACT_EMIT_BEFORE:
            splitter_token(s, type, s->tok->str, s->tok->len);
            g_string_truncate(s->tok, 0);
            s->state = LX_START;
            break;
        case ACT_RESYNC:
            s->state = LX_START;
            break;
        case ACT_ERROR:
            if (!flush) {
                consumed = true;
                g_string_append_c(s->tok, c);
            }
            splitter_token(s, TOK_ERROR, s->tok->str, s->tok->len);
            g_string_truncate(s->tok, 0);
            s->state = LX_RECOVERY;
            break;
        }
    }

    if (s->tok->len > MAX_TOKEN_SIZE) {
        splitter_token(s, TOK_OVERSIZE, s->tok->str, s->tok->len);
        g_string_truncate(s->tok, 0);
        s->state = LX_START;
    }
}

QJsonStream *qjson_stream_new(QJsonStreamEmit *emit, void *opaque)
{
    QJsonStream *s = g_new0(QJsonStream, 1);

    s->emit = emit;
    s->opaque = opaque;
    s->state = LX_START;
    s->tok = g_string_sized_new(64);
    s->tokens = g_array_new(FALSE, FALSE, sizeof(Token));
    return s;
}

void qjson_stream_feed(QJsonStream *s, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        lex_char(s, (unsigned char)buf[i], false);
    }
}

void qjson_stream_flush(QJsonStream *s)
{
    lex_char(s, 0, true);
    splitter_token(s, TOK_END, "", 0);
}

void qjson_stream_free(QJsonStream *s)
{
    if (!s) {
        return;
    }
    tokens_clear(s);
    g_array_free(s->tokens, TRUE);
    g_string_free(s->tok, TRUE);
    g_free(s);
}

typedef struct {
    json_t *value;
    GHashTable *big;
    Error *err;
    int count;
} ParseOne;

static void parse_one_cb(void *opaque, json_t *value, GHashTable *big,
                         Error *err)
{
    ParseOne *po = opaque;

    if (po->count++ == 0) {
        po->value = value;
        po->err = err;
        po->big = big;
        return;
    }
    json_decref(value);
    error_free(err);
    if (big) {
        g_hash_table_unref(big);
    }
}

json_t *qjson_parse(const char *str, GHashTable **big, Error **errp)
{
    ParseOne po = { 0 };
    QJsonStream *s = qjson_stream_new(parse_one_cb, &po);

    qjson_stream_feed(s, str, strlen(str));
    qjson_stream_flush(s);
    qjson_stream_free(s);
    if (big && po.count == 1 && po.value) {
        *big = g_steal_pointer(&po.big);
    } else if (big) {
        *big = NULL;
    }
    if (po.big) {
        g_hash_table_unref(po.big);
    }
    if (po.count > 1) {
        json_decref(po.value);
        error_free(po.err);
        error_setg(errp, "Expecting at most one JSON value");
        return NULL;
    }
    if (po.err || !po.value) {
        if (po.err) {
            error_propagate(errp, po.err);
        } else {
            error_setg(errp, "Expecting a JSON value");
        }
        return NULL;
    }
    return po.value;
}
