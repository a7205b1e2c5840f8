/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The secret object type, QEMU's way: exactly one of data= and file=;
 * format=base64 decodes the input; keyid= names a secret holding a
 * 32-byte AES-256 key and iv= a base64 16-byte IV, and the input (after
 * base64 when so formatted) is then AES-256-CBC ciphertext with PKCS#7
 * padding.  AES comes from nettle.  The properties keep what was given;
 * changing them later does not load the secret again, as in QEMU.
 */
#include "config.h"

#include <string.h>

#include <nettle/aes.h>
#include <nettle/cbc.h>

#include "qapi/qjson.h"
#include "system/object-int.h"
#include "system/secret.h"

typedef struct {
    uint8_t *value;             /* NUL-terminated */
    size_t len;
} Secret;

static const ObjectProp secret_props[] = {
    { "iv", "string" },
    { "keyid", "string" },
    { "loaded", "bool" },
    { "format", "QCryptoSecretFormat" },
    { "file", "string" },
    { "data", "string" },
    { NULL, NULL },
};

#define AES_KEY_LEN 32
#define AES_IV_LEN 16

/* QEMU's qbase64_decode(): its character check, then GLib's decoder. */
static uint8_t *base64_decode(const char *in, size_t *len, Error **errp)
{
    for (const char *p = in; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr("+/=", *p)) {
            error_setg(errp, "Base64 data contains invalid characters");
            return NULL;
        }
    }
    return g_base64_decode(in, len);
}

const uint8_t *secret_lookup(const char *id, size_t *len, Error **errp)
{
    UserObject *o = object_find(id);
    const Secret *s;

    if (!o) {
        error_setg(errp, "No secret with id '%s'", id);
        return NULL;
    }
    if (strcmp(object_type(o), "secret")) {
        error_setg(errp, "Object with id '%s' is not a secret", id);
        return NULL;
    }
    s = object_state(o);
    *len = s->len;
    return s->value;
}

static bool decrypt(const json_t *p, const uint8_t *in, size_t in_len,
                    Secret *out, Error **errp)
{
    const char *iv_b64 = qjson_get_str_or(p, "iv", NULL);
    const uint8_t *key;
    g_autofree uint8_t *iv = NULL;
    g_autofree uint8_t *ct = NULL;
    struct CBC_CTX(struct aes256_ctx, AES_BLOCK_SIZE) ctx;
    size_t key_len, iv_len, ct_len;
    uint8_t pad;

    key = secret_lookup(qjson_get_str(p, "keyid"), &key_len, errp);
    if (!key) {
        return false;
    }
    if (key_len != AES_KEY_LEN) {
        error_setg(errp, "Key should be 32 bytes in length");
        return false;
    }
    if (!iv_b64) {
        error_setg(errp, "IV is required to decrypt secret");
        return false;
    }
    iv = base64_decode(iv_b64, &iv_len, errp);
    if (!iv) {
        return false;
    }
    if (iv_len != AES_IV_LEN) {
        error_setg(errp, "IV should be 16 bytes in length not %zu", iv_len);
        return false;
    }
    if (!strcmp(qjson_get_str(p, "format"), "base64")) {
        ct = base64_decode((const char *)in, &ct_len, errp);
        if (!ct) {
            return false;
        }
    } else {
        ct = g_memdup2(in, in_len);
        ct_len = in_len;
    }
    if (ct_len % AES_BLOCK_SIZE) {
        error_setg(errp, "Length %zu must be a multiple of block size %d",
                   ct_len, AES_BLOCK_SIZE);
        return false;
    }
    out->value = g_malloc0(ct_len + 1);
    aes256_set_decrypt_key(&ctx.ctx, key);
    CBC_SET_IV(&ctx, iv);
    CBC_DECRYPT(&ctx, aes256_decrypt, ct_len, out->value, ct);
    /* an empty ciphertext decrypts to nothing, as QEMU lets it */
    pad = ct_len ? out->value[ct_len - 1] : 0;
    if (pad > AES_BLOCK_SIZE || pad > ct_len) {
        error_setg(errp, "Incorrect number of padding bytes (%d) found on "
                   "decrypted data", pad);
        return false;
    }
    out->len = ct_len - pad;
    out->value[out->len] = '\0';
    return true;
}

static bool secret_load(UserObject *o, Error **errp)
{
    const json_t *p = o->props;
    const char *data = qjson_get_str_or(p, "data", NULL);
    const char *file = qjson_get_str_or(p, "file", NULL);
    g_autofree char *input = NULL;
    Secret *s = o->state;
    size_t len;

    if (data && file) {
        error_setg(errp, "'file' and 'data' are mutually exclusive");
        return false;
    }
    if (file) {
        GError *gerr = NULL;

        if (!g_file_get_contents(file, &input, &len, &gerr)) {
            error_setg(errp, "Unable to read %s: %s", file, gerr->message);
            g_error_free(gerr);
            return false;
        }
    } else if (data) {
        input = g_strdup(data);
        len = strlen(data);
    } else {
        error_setg(errp, "Either 'file' or 'data' must be provided");
        return false;
    }
    if (json_object_get(p, "keyid")) {
        return decrypt(p, (uint8_t *)input, len, s, errp);
    }
    if (!strcmp(qjson_get_str(p, "format"), "base64")) {
        s->value = base64_decode(input, &s->len, errp);
        if (!s->value) {
            return false;
        }
        /* NUL-terminated like every secret value */
        s->value = g_realloc(s->value, s->len + 1);
        s->value[s->len] = '\0';
        return true;
    }
    s->len = len;
    s->value = (uint8_t *)g_steal_pointer(&input);
    return true;
}

static bool secret_create(UserObject *o, const json_t *given, Error **errp)
{
    const char *key;
    json_t *v;

    o->state = g_new0(Secret, 1);
    json_object_set_new(o->props, "format", json_string("raw"));
    json_object_foreach((json_t *)given, key, v) {
        /* "loaded" is QEMU's deprecated spelling of "load it now" */
        if (strcmp(key, "loaded")) {
            json_object_set(o->props, key, v);
        }
    }
    if (!secret_load(o, errp)) {
        return false;
    }
    json_object_set_new(o->props, "loaded", json_true());
    return true;
}

static void secret_finalize(UserObject *o)
{
    Secret *s = o->state;

    if (s) {
        if (s->value) {
            memset(s->value, 0, s->len);
        }
        g_free(s->value);
        g_free(s);
    }
}

static json_t *secret_get(const UserObject *o, const char *prop)
{
    /* a property never given reads as "" in QEMU */
    if (strcmp(prop, "loaded") && strcmp(prop, "format")
        && !json_object_get(o->props, prop)) {
        return json_string("");
    }
    return NULL;
}

static bool secret_set(UserObject *o, const char *prop, const json_t *v,
                       Error **errp)
{
    if (!strcmp(prop, "loaded")) {
        error_setg(errp, "Property 'secret.loaded' is not writable");
        return false;
    }
    if (!object_expect_str(prop, v, errp)) {
        return false;
    }
    if (!strcmp(prop, "format") && strcmp(json_string_value(v), "raw")
        && strcmp(json_string_value(v), "base64")) {
        error_setg(errp, "Parameter 'format' does not accept value '%s'",
                   json_string_value(v));
        return false;
    }
    json_object_set(o->props, prop, (json_t *)v);
    return true;
}

const ObjectClass secret_class = {
    .name = "secret",
    .parent = "secret_common",
    .props = secret_props,
    .create = secret_create,
    .finalize = secret_finalize,
    .get = secret_get,
    .set = secret_set,
};
