/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The object types' side of system/object.c: each type is a class with
 * its QOM properties and the hooks that create, check, change and end
 * one object.  Only system/object*.c and the types' files include this.
 */
#ifndef SYSTEM_OBJECT_INT_H
#define SYSTEM_OBJECT_INT_H

#include "system/object.h"

typedef struct ObjectProp {
    const char *name;
    const char *qom_type;       /* as qom-list shows it */
} ObjectProp;

typedef struct ObjectClass {
    const char *name;
    const char *parent;         /* qom-list-types' "parent" */
    const ObjectProp *props;    /* NULL-terminated, qom-list's order */
    /*
     * Fill @o->props with the defaults, then apply what was given
     * (validated ObjectOptions members without qom-type and id,
     * borrowed) property by property, then complete the object (QEMU's
     * order of checks); false with @errp set, and @finalize is still
     * called.
     */
    bool (*create)(UserObject *o, const json_t *given, Error **errp);
    void (*finalize)(UserObject *o);
    /* optional: does something use @o (object-del is refused)? */
    bool (*in_use)(const UserObject *o);
    /* optional: a property's value not kept in @o->props (new ref) */
    json_t *(*get)(const UserObject *o, const char *prop);
    /* set @prop (one of @props) after creation; NULL: as QEMU refuses */
    bool (*set)(UserObject *o, const char *prop, const json_t *v,
                Error **errp);
} ObjectClass;

struct UserObject {
    char *id;
    uint64_t serial;            /* unique for the process's lifetime */
    const ObjectClass *cls;
    json_t *props;              /* property values qom-get shows */
    void *state;
};

/* QEMU's "Invalid parameter type for '%s', expected: integer" checks. */
bool object_expect_int(const char *name, const json_t *v, Error **errp);
bool object_expect_str(const char *name, const json_t *v, Error **errp);
bool object_expect_bool(const char *name, const json_t *v, Error **errp);

extern const ObjectClass iothread_class;
extern const ObjectClass secret_class;
extern const ObjectClass memory_backend_ram_class;
extern const ObjectClass throttle_group_class;

#endif /* SYSTEM_OBJECT_INT_H */
