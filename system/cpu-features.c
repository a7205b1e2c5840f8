/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -cpu MODEL,FEATURE=off: the CPUID feature flags a command line may
 * name.  qmpd's CPU models carry no flags, so a flag turned off asks
 * for what the guest already is and is accepted (libvirt restores a
 * saved domain with every flag of its model's definition off, having
 * read none from the running CPU); a flag turned on asks for more and
 * is refused by name.  Names are QEMU 7.2's (its -cpu help list and
 * the aliases it accepts), '_' read as '-' as QEMU reads them.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "system/cpu.h"

/* QEMU 7.2's "Recognized CPUID flags", in strcmp order (bsearch) */
static const char *const cpu_feature_names[] = {
    "3dnow", "3dnowext", "3dnowprefetch", "abm", "ace2", "ace2-en", "acpi",
    "adx", "aes", "amd-no-ssb", "amd-ssbd", "amd-stibp", "amx-bf16",
    "amx-int8", "amx-tile", "apic", "arat", "arch-capabilities", "arch-lbr",
    "avic", "avx", "avx-vnni", "avx2", "avx512-4fmaps", "avx512-4vnniw",
    "avx512-bf16", "avx512-fp16", "avx512-vp2intersect", "avx512-vpopcntdq",
    "avx512bitalg", "avx512bw", "avx512cd", "avx512dq", "avx512er", "avx512f",
    "avx512ifma", "avx512pf", "avx512vbmi", "avx512vbmi2", "avx512vl",
    "avx512vnni", "bmi1", "bmi2", "bus-lock-detect", "cid", "cldemote",
    "clflush", "clflushopt", "clwb", "clzero", "cmov", "cmp-legacy",
    "core-capability", "cr8legacy", "cx16", "cx8", "dca", "de",
    "decodeassists", "ds", "ds-cpl", "dtes64", "erms", "est", "extapic",
    "f16c", "flushbyasid", "fma", "fma4", "fpu", "fsgsbase", "fsrm",
    "full-width-write", "fxsr", "fxsr-opt", "gfni", "hle", "ht", "hypervisor",
    "ia64", "ibpb", "ibrs", "ibrs-all", "ibs", "intel-pt", "intel-pt-lip",
    "invpcid", "invtsc", "kvm-asyncpf", "kvm-asyncpf-int",
    "kvm-hint-dedicated", "kvm-mmu", "kvm-msi-ext-dest-id", "kvm-nopiodelay",
    "kvm-poll-control", "kvm-pv-eoi", "kvm-pv-ipi", "kvm-pv-sched-yield",
    "kvm-pv-tlb-flush", "kvm-pv-unhalt", "kvm-steal-time", "kvmclock",
    "kvmclock-stable-bit", "la57", "lahf-lm", "lbrv", "lm", "lwp", "mca",
    "mce", "md-clear", "mds-no", "misalignsse", "mmx", "mmxext", "monitor",
    "movbe", "movdir64b", "movdiri", "mpx", "msr", "mtrr", "nodeid-msr",
    "npt", "nrip-save", "nx", "osvw", "pae", "pat", "pause-filter", "pbe",
    "pcid", "pclmulqdq", "pcommit", "pdcm", "pdpe1gb", "perfctr-core",
    "perfctr-nb", "pfthreshold", "pge", "phe", "phe-en", "pks", "pku", "pmm",
    "pmm-en", "pn", "pni", "popcnt", "pschange-mc-no", "pse", "pse36",
    "rdctl-no", "rdpid", "rdrand", "rdseed", "rdtscp", "rsba", "rtm", "sep",
    "serialize", "sgx", "sgx-debug", "sgx-exinfo", "sgx-kss", "sgx-mode64",
    "sgx-provisionkey", "sgx-tokenkey", "sgx1", "sgx2", "sgxlc", "sha-ni",
    "skinit", "skip-l1dfl-vmentry", "smap", "smep", "smx", "spec-ctrl",
    "split-lock-detect", "ss", "ssb-no", "ssbd", "sse", "sse2", "sse4.1",
    "sse4.2", "sse4a", "ssse3", "stibp", "svm", "svm-lock", "svme-addr-chk",
    "syscall", "taa-no", "tbm", "tce", "tm", "tm2", "topoext", "tsc",
    "tsc-adjust", "tsc-deadline", "tsc-scale", "tsx-ctrl", "tsx-ldtrk",
    "umip", "v-vmsave-vmload", "vaes", "vgif", "virt-ssbd", "vmcb-clean",
    "vme", "vmx", "vmx-activity-hlt", "vmx-activity-shutdown",
    "vmx-activity-wait-sipi", "vmx-apicv-register", "vmx-apicv-vid",
    "vmx-apicv-x2apic", "vmx-apicv-xapic", "vmx-cr3-load-noexit",
    "vmx-cr3-store-noexit", "vmx-cr8-load-exit", "vmx-cr8-store-exit",
    "vmx-desc-exit", "vmx-encls-exit", "vmx-entry-ia32e-mode",
    "vmx-entry-load-bndcfgs", "vmx-entry-load-efer", "vmx-entry-load-pat",
    "vmx-entry-load-perf-global-ctrl", "vmx-entry-load-pkrs",
    "vmx-entry-load-rtit-ctl", "vmx-entry-noload-debugctl", "vmx-ept",
    "vmx-ept-1gb", "vmx-ept-2mb", "vmx-ept-advanced-exitinfo",
    "vmx-ept-execonly", "vmx-eptad", "vmx-eptp-switching",
    "vmx-exit-ack-intr", "vmx-exit-clear-bndcfgs", "vmx-exit-clear-rtit-ctl",
    "vmx-exit-load-efer", "vmx-exit-load-pat",
    "vmx-exit-load-perf-global-ctrl", "vmx-exit-load-pkrs",
    "vmx-exit-nosave-debugctl", "vmx-exit-save-efer", "vmx-exit-save-pat",
    "vmx-exit-save-preemption-timer", "vmx-flexpriority", "vmx-hlt-exit",
    "vmx-ins-outs", "vmx-intr-exit", "vmx-invept", "vmx-invept-all-context",
    "vmx-invept-single-context", "vmx-invept-single-context-noglobals",
    "vmx-invlpg-exit", "vmx-invpcid-exit", "vmx-invvpid",
    "vmx-invvpid-all-context", "vmx-invvpid-single-addr", "vmx-io-bitmap",
    "vmx-io-exit", "vmx-monitor-exit", "vmx-movdr-exit", "vmx-msr-bitmap",
    "vmx-mtf", "vmx-mwait-exit", "vmx-nmi-exit", "vmx-page-walk-4",
    "vmx-page-walk-5", "vmx-pause-exit", "vmx-ple", "vmx-pml",
    "vmx-posted-intr", "vmx-preemption-timer", "vmx-rdpmc-exit",
    "vmx-rdrand-exit", "vmx-rdseed-exit", "vmx-rdtsc-exit", "vmx-rdtscp-exit",
    "vmx-secondary-ctls", "vmx-shadow-vmcs", "vmx-store-lma", "vmx-true-ctls",
    "vmx-tsc-offset", "vmx-tsc-scaling", "vmx-unrestricted-guest",
    "vmx-vintr-pending", "vmx-vmfunc", "vmx-vmwrite-vmexit-fields",
    "vmx-vnmi", "vmx-vnmi-pending", "vmx-vpid", "vmx-wbinvd-exit",
    "vmx-xsaves", "vmx-zero-len-inject", "vpclmulqdq", "waitpkg", "wbnoinvd",
    "wdt", "x2apic", "xcrypt", "xcrypt-en", "xfd", "xgetbv1", "xop", "xsave",
    "xsavec", "xsaveerptr", "xsaveopt", "xsaves", "xstore", "xstore-en",
    "xtpr",
};

/* the other names QEMU 7.2 takes for some of them */
static const char *const cpu_feature_aliases[] = {
    "sse3", "pclmuldq", "sse4-1", "sse4-2", "xd", "ffxsr", "i64",
};

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_feature(const char *name)
{
    if (bsearch(&name, cpu_feature_names, G_N_ELEMENTS(cpu_feature_names),
                sizeof(cpu_feature_names[0]), cmp_name)) {
        return true;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(cpu_feature_aliases); i++) {
        if (!strcmp(cpu_feature_aliases[i], name)) {
            return true;
        }
    }
    return false;
}

bool cpu_parse_features(const char *model, const char *features,
                        Error **errp)
{
    g_auto(GStrv) items = g_strsplit(features, ",", -1);

    for (int i = 0; items[i]; i++) {
        g_autofree char *name = NULL;
        const char *value = "on";
        char *eq;

        if (items[i][0] == '+' || items[i][0] == '-') {
            /* QEMU's legacy +FLAG / -FLAG */
            value = items[i][0] == '+' ? "on" : "off";
            name = g_strdup(items[i] + 1);
        } else {
            name = g_strdup(items[i]);
            eq = strchr(name, '=');
            if (eq) {
                *eq = '\0';
                value = items[i] + (eq - name) + 1;
            }
        }
        g_strdelimit(name, "_", '-');
        if (!is_feature(name)) {
            error_setg(errp, "can't apply global %s-x86_64-cpu.%s=%s: "
                       "Property '%s-x86_64-cpu.%s' not found", model, name,
                       value, model, name);
            return false;
        }
        if (strcmp(value, "on") && strcmp(value, "off")) {
            error_setg(errp, "can't apply global %s-x86_64-cpu.%s=%s: "
                       "Parameter '%s' expects 'on' or 'off'", model, name,
                       value, name);
            return false;
        }
        if (!strcmp(value, "on")) {
            error_setg(errp, "CPU feature '%s' cannot be turned on: qmpd's "
                       "CPU models have no feature flags", name);
            return false;
        }
    }
    return true;
}
