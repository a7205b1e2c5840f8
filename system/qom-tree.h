/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QOM tree qmpd models, as paths: the root, /machine with its
 * containers and the guest's devices, /objects with the user objects.
 * Resolves a path as QEMU does, and serves qom-list and qom-set.
 */
#ifndef SYSTEM_QOM_TREE_H
#define SYSTEM_QOM_TREE_H

#include <jansson.h>

#include "qapi/dispatch.h"
#include "qapi/error.h"

/*
 * The object @path names, absolute or partial (the one object whose
 * path ends with it), as a path that stays valid until the tree
 * changes; NULL with QEMU's DeviceNotFound error.
 */
const char *qom_resolve(const char *path, Error **errp);

/*
 * qom-get on a container (the root, /objects, /machine/peripheral,
 * peripheral-anon, unattached) or a user object (@obj resolved):
 * true when @obj is one of them, with *@ret or @errp set.
 */
bool qom_tree_get(const char *obj, const char *prop, json_t **ret,
                  Error **errp);

extern const QapiHandler qom_tree_qmp_handlers[];
extern const size_t qom_tree_qmp_handlers_count;

#endif /* SYSTEM_QOM_TREE_H */
