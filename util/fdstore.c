/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The named descriptors of every monitor in one list: there are a
 * handful at most (a management tool passes one, migrates through it,
 * and the migration takes it), so a walk is all a lookup needs.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "util/fdstore.h"

typedef struct NamedFd {
    const void *owner;
    char *name;
    int fd;
} NamedFd;

static GList *named;
static const void *current;

static GList *find(const void *owner, const char *name)
{
    for (GList *l = named; l; l = l->next) {
        NamedFd *n = l->data;

        if (n->owner == owner && !strcmp(n->name, name)) {
            return l;
        }
    }
    return NULL;
}

static int unlink_fd(GList *l)
{
    NamedFd *n = l->data;
    int fd = n->fd;

    named = g_list_delete_link(named, l);
    g_free(n->name);
    g_free(n);
    return fd;
}

void fdstore_add(const void *owner, const char *name, int fd)
{
    GList *l = find(owner, name);
    NamedFd *n;

    if (l) {
        n = l->data;
        close(n->fd);
        n->fd = fd;
        return;
    }
    n = g_new0(NamedFd, 1);
    n->owner = owner;
    n->name = g_strdup(name);
    n->fd = fd;
    named = g_list_append(named, n);
}

bool fdstore_close(const void *owner, const char *name)
{
    GList *l = find(owner, name);

    if (!l) {
        return false;
    }
    close(unlink_fd(l));
    return true;
}

int fdstore_take(const void *owner, const char *name)
{
    GList *l = find(owner, name);

    return l ? unlink_fd(l) : -1;
}

void fdstore_drop(const void *owner)
{
    GList *l = named;

    while (l) {
        GList *next = l->next;

        if (((NamedFd *)l->data)->owner == owner) {
            close(unlink_fd(l));
        }
        l = next;
    }
}

void fdstore_set_current(const void *owner)
{
    current = owner;
}

const void *fdstore_current(void)
{
    return current;
}
