/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * User-creatable objects (-object, object-add, object-del) under
 * /objects: iothread, secret and memory-backend-ram, with
 * their properties for qom-list, qom-get and qom-set as QEMU 7.2 shows
 * them.  Every other type QEMU has is refused by name.
 */
#ifndef SYSTEM_OBJECT_H
#define SYSTEM_OBJECT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "qapi/dispatch.h"
#include "qapi/error.h"
#include "qapi/schema.h"

typedef struct UserObject UserObject;

/* Create the object a -object argument (keyval or JSON) describes. */
bool object_add_arg(QapiSchema *schema, const char *arg, Error **errp);

/*
 * Create an object from ObjectOptions @opts (validated; borrowed), as
 * object-add does.
 */
bool object_add(const json_t *opts, Error **errp);

/* The object with id @id, or NULL. */
UserObject *object_find(const char *id);
/*
 * A link that must not follow a deleted object to a new one of the same
 * id (QEMU's link properties read "" once their target is gone) keeps
 * the object's serial: object_by_serial() finds it while it exists.
 */
UserObject *object_by_serial(uint64_t serial);
uint64_t object_serial(const UserObject *o);
const char *object_id(const UserObject *o);
const char *object_type(const UserObject *o);

/* The type's own state (IOThread, ThrottleGroup, ...). */
void *object_state(const UserObject *o);

/* Has any object been created (the /objects container exists)? */
bool object_root_exists(void);

/* /objects' children for qom-list: [{"name", "type"}], appended. */
void object_list_children(json_t *list);

/* qom-list, qom-get, qom-set on object @o (QEMU's messages). */
json_t *object_qom_list(const UserObject *o);

/* qom-list-properties of object type @type (new reference), or NULL. */
json_t *object_class_properties(const char *type);
json_t *object_qom_get(const UserObject *o, const char *prop, Error **errp);
bool object_qom_set(UserObject *o, const char *prop, const json_t *value,
                    Error **errp);

/* Print -object help / -object TYPE,help as QEMU does; false: unknown. */
bool object_print_help(const char *arg);

extern const QapiHandler object_qmp_handlers[];
extern const size_t object_qmp_handlers_count;

#endif /* SYSTEM_OBJECT_H */
