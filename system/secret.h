/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * secret objects: a value given inline (data) or in a file, as text or
 * base64, optionally encrypted with AES-256-CBC under another secret
 * (keyid) and an IV, as QEMU's.  The value is decoded and decrypted
 * once, when the object is created.
 */
#ifndef SYSTEM_SECRET_H
#define SYSTEM_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "qapi/error.h"

/*
 * The value of secret @id (borrowed, NUL-terminated, @len bytes before
 * the NUL), or NULL with QEMU's messages (no such object, not a secret).
 */
const uint8_t *secret_lookup(const char *id, size_t *len, Error **errp);

#endif /* SYSTEM_SECRET_H */
