/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -smp's topology completion and checks (QEMU 7.2's rules and words),
 * seen through query-hotpluggable-cpus and query-cpus-fast.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qapi/qjson.h"
#include "system/cpu.h"
#include "system/machine.h"

typedef struct {
    const char *spec;
    unsigned cpus, maxcpus, sockets, cores, threads;
    const char *error;          /* NULL: accepted */
} SmpCase;

static const SmpCase smp_cases[] = {
    { "1,sockets=1,cores=1,threads=1", 1, 1, 1, 1, 1, NULL },
    { "4", 4, 4, 1, 4, 1, NULL },
    { "2,maxcpus=4", 2, 4, 1, 4, 1, NULL },
    { "sockets=2,cores=2,threads=2", 8, 8, 2, 2, 2, NULL },
    { "4,cores=2", 4, 4, 2, 2, 1, NULL },
    { "4,sockets=2", 4, 4, 2, 2, 1, NULL },
    { "6,sockets=2,cores=3", 6, 6, 2, 3, 1, NULL },
    { "2,maxcpus=1", 0, 0, 0, 0, 0,
      "Invalid CPU topology: maxcpus must be equal to or greater than smp: "
      "sockets (1) * dies (1) * cores (1) * threads (1) == maxcpus (1) < "
      "smp_cpus (2)" },
    { "2,sockets=3", 0, 0, 0, 0, 0,
      "Invalid CPU topology: product of the hierarchy must match maxcpus: "
      "sockets (3) * dies (1) * cores (0) * threads (1) != maxcpus (2)" },
    { "4,sockets=65536,dies=65536,cores=65536,threads=65536", 0, 0, 0, 0, 0,
      "Invalid CPU topology: product of the hierarchy must match maxcpus: "
      "sockets (65536) * dies (65536) * cores (65536) * threads (65536) != "
      "maxcpus (4)" },
    { "x", 0, 0, 0, 0, 0, "Parameter 'smp.cpus' expects integer" },
    { "1,bogus=2", 0, 0, 0, 0, 0, "Parameter 'smp.bogus' is unexpected" },
};

static json_t *call(const char *name)
{
    json_t *ret = NULL;
    Error *err = NULL;

    for (size_t i = 0; i < cpu_qmp_handlers_count; i++) {
        if (!strcmp(cpu_qmp_handlers[i].name, name)) {
            assert_true(cpu_qmp_handlers[i].fn(NULL, &ret, &err));
        }
    }
    assert_null(err);
    assert_non_null(ret);
    return ret;
}

static void test_smp(void **state)
{
    MachineConfig mc = { .type = "pc-i440fx-7.2", .accel = "tcg" };

    machine_set_config(&mc);
    for (size_t i = 0; i < G_N_ELEMENTS(smp_cases); i++) {
        const SmpCase *c = &smp_cases[i];
        Error *err = NULL;
        bool ok = cpu_parse_smp(c->spec, &err);
        g_autoptr(json_t) slots = NULL;
        g_autoptr(json_t) cpus = NULL;
        const json_t *last;

        if (c->error) {
            assert_false(ok);
            assert_string_equal(error_get_pretty(err), c->error);
            error_free(err);
            continue;
        }
        assert_true(ok);
        assert_true(cpu_check_machine(&mc, NULL));
        slots = call("query-hotpluggable-cpus");
        cpus = call("query-cpus-fast");
        assert_int_equal(json_array_size(slots), c->maxcpus);
        assert_int_equal(json_array_size(cpus), c->cpus);
        assert_int_equal(cpu_count(), c->cpus);
        /* the first slot listed is the last: its ids are the maxima */
        last = json_object_get(json_array_get(slots, 0), "props");
        assert_int_equal(qjson_get_int(last, "socket-id"), c->sockets - 1);
        assert_int_equal(qjson_get_int(last, "core-id"), c->cores - 1);
        assert_int_equal(qjson_get_int(last, "thread-id"), c->threads - 1);
    }
}

static void test_machine_limit(void **state)
{
    MachineConfig pc = { .type = "pc-i440fx-7.2", .accel = "tcg" };
    MachineConfig none = { .type = "none", .accel = "tcg" };
    Error *err = NULL;

    assert_true(cpu_parse_smp("256", NULL));
    assert_false(cpu_check_machine(&pc, &err));
    assert_string_equal(error_get_pretty(err), "Invalid SMP CPUs 256. The "
                        "max CPUs supported by machine 'pc-i440fx-7.2' is "
                        "255");
    error_free(err);
    /* -M none has no vCPUs, whatever -smp says */
    assert_true(cpu_parse_smp("1", NULL));
    machine_set_config(&none);
    assert_int_equal(cpu_count(), 0);
    assert_int_equal(cpu_board_shift(), 0);
}

static void test_models(void **state)
{
    Error *err = NULL;

    assert_true(cpu_parse_model("max", NULL));
    assert_true(cpu_parse_model("qemu64", NULL));
    assert_false(cpu_parse_model("host", &err));
    assert_string_equal(error_get_pretty(err),
                        "CPU model 'host' requires KVM or HVF");
    error_free(err);
    err = NULL;
    assert_false(cpu_parse_model("Skylake-Client", &err));
    assert_string_equal(error_get_pretty(err),
                        "unable to find CPU model 'Skylake-Client'");
    error_free(err);
}

/* -cpu's flags: off is what the models are, on is refused by name */
static const struct {
    const char *spec;
    const char *error;
} feature_cases[] = {
    { "qemu64,fpu=off,sse4.1=off,lahf_lm=off,-svm,sse3=off", NULL },
    { "qemu64,fpu=on", "CPU feature 'fpu' cannot be turned on: qmpd's CPU "
      "models have no feature flags" },
    { "max,+x2apic", "CPU feature 'x2apic' cannot be turned on: qmpd's CPU "
      "models have no feature flags" },
    { "qemu64,avx", "CPU feature 'avx' cannot be turned on: qmpd's CPU "
      "models have no feature flags" },
    { "qemu64,foo=off", "can't apply global qemu64-x86_64-cpu.foo=off: "
      "Property 'qemu64-x86_64-cpu.foo' not found" },
    { "qemu64,fpu=bar", "can't apply global qemu64-x86_64-cpu.fpu=bar: "
      "Parameter 'fpu' expects 'on' or 'off'" },
    { "foo,fpu=off", "unable to find CPU model 'foo'" },
};

static void test_features(void **state)
{
    for (size_t i = 0; i < G_N_ELEMENTS(feature_cases); i++) {
        Error *err = NULL;
        bool ok = cpu_parse_model(feature_cases[i].spec, &err);

        if (!feature_cases[i].error) {
            assert_true(ok);
            continue;
        }
        assert_false(ok);
        assert_string_equal(error_get_pretty(err), feature_cases[i].error);
        error_free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smp),
        cmocka_unit_test(test_machine_limit),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_features),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
