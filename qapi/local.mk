# SPDX-License-Identifier: GPL-2.0-or-later
QAPI_SCHEMA_FILES = \
	qapi/schema/bitmap.json \
	qapi/schema/block-core.json \
	qapi/schema/block.json \
	qapi/schema/block-export.json \
	qapi/schema/block-job.json \
	qapi/schema/control.json \
	qapi/schema/guest.json \
	qapi/schema/hmp-block.json \
	qapi/schema/introspect.json \
	qapi/schema/job.json \
	qapi/schema/machine.json \
	qapi/schema/migration.json \
	qapi/schema/qdev.json \
	qapi/schema/qom.json \
	qapi/schema/run-state.json \
	qapi/schema/trace.json \
	qapi/schema/transaction.json

EXTRA_DIST += $(QAPI_SCHEMA_FILES) qapi/schema/schema.gresource.xml \
	qapi/schema/import-qmp-ref.py

noinst_LIBRARIES += qapi/libqapi.a
qapi_libqapi_a_SOURCES = \
	qapi/error.c qapi/error.h \
	qapi/qjson.c qapi/qjson.h \
	qapi/json-stream.c qapi/json-stream.h \
	qapi/keyval.c qapi/keyval.h \
	qapi/opts.c qapi/opts.h \
	qapi/schema.c qapi/schema.h \
	qapi/validate.c qapi/validate.h \
	qapi/introspect.c qapi/introspect.h \
	qapi/dispatch.c qapi/dispatch.h \
	qapi/event.c qapi/event.h

# The schema text, embedded as a GResource.  Generated code is built on
# its own so that our warning flags do not apply to it.
noinst_LIBRARIES += qapi/libschema.a
nodist_qapi_libschema_a_SOURCES = qapi/schema-resource.c
qapi_libschema_a_CFLAGS = -std=gnu11 $(GLIB_CFLAGS) $(SAN_CFLAGS)
BUILT_SOURCES += qapi/schema-resource.c
CLEANFILES += qapi/schema-resource.c

qapi/schema-resource.c: $(QAPI_SCHEMA_FILES) qapi/schema/schema.gresource.xml
	$(AM_V_GEN)$(MKDIR_P) qapi && \
	$(GLIB_COMPILE_RESOURCES) --generate-source --manual-register \
		--c-name qapi_schema_res \
		--sourcedir=$(srcdir)/qapi/schema \
		--target=$@ $(srcdir)/qapi/schema/schema.gresource.xml

QAPI_LIBS = qapi/libqapi.a qapi/libschema.a util/libutil.a \
	$(GLIB_LIBS) $(JANSSON_LIBS) -lm
