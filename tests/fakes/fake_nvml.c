/* A stand-in for NVIDIA's libnvidia-ml.so.1, for tests on machines without a GPU.
 *
 * It answers the NVML calls mlflow_sysmetrics makes from a plain-text description of a
 * machine named by FAKE_NVML_SPEC (one line per fact):
 *   driver 580.159.04
 *   cuda 13000
 *   init_error 9            (nvmlInit_v2 fails with this code)
 *   init_sleep_ms 5000 [<n>] (nvmlInit_v2 hangs this long, from its n-th call on, 1 by default:
 *                           2 answers the first, the facts' pass, and hangs the ledger's session)
 *   gpu <mem bytes> <cc major> <cc minor> <mig: -1 unsupported, 0 off, 1 on> <bus id> <uuid> <name...>
 *   mig <parent index> <mem bytes> <gpu instance id> <compute instance id> <uuid> <name...>
 *   handle_error <index> <code>          (nvmlDeviceGetHandleByIndex_v2 fails for that GPU,
 *                                         e.g. 4 = NVML_ERROR_NO_PERMISSION, what a SLURM job
 *                                         gets for the GPUs it was not given)
 *   mig_handle_error <parent> <slot> <code>  (nvmlDeviceGetMigDeviceHandleByIndex fails)
 *   power <index> <milliwatts>           (nvmlDeviceGetEnforcedPowerLimit; else NOT_SUPPORTED)
 *   pcie <index> <max generation> <width> (nvmlDeviceGetMaxPcieLinkGeneration, ...CurrPcieLinkWidth)
 *   nvlink <index> <links> <active links> (nvmlDeviceGetNvLinkState: links 0..links-1, the first
 *                                         <active> active; INVALID_ARGUMENT past the last link;
 *                                         NOT_SUPPORTED without this line)
 *   ecc <index> <0|1>                    (nvmlDeviceGetEccMode: current = pending = the value;
 *                                         NOT_SUPPORTED without this line, as on GeForce boards)
 *   counter <index> <name> <v1> [<v2> ...] (a cumulative counter: the first read answers v1, the
 *                                         next v2, and so on, the last repeating; names: energy
 *                                         (mJ, nvmlDeviceGetTotalEnergyConsumption), power_violation
 *                                         and thermal_violation (ns, nvmlDeviceGetViolationStatus
 *                                         with NVML_PERF_POLICY_POWER / _THERMAL), ecc_uncorrected
 *                                         (nvmlDeviceGetTotalEccErrors, uncorrected, volatile),
 *                                         pcie_replays (nvmlDeviceGetPcieReplayCounter);
 *                                         NOT_SUPPORTED for a counter without a line)
 *   accounting <index> <0|1> <max bytes> [<max2> ...]  (nvmlDeviceGetAccountingMode, and the
 *                                         maxMemoryUsage nvmlDeviceGetAccountingStats reports for
 *                                         any pid: the first read the first value, and so on;
 *                                         18446744073709551615 is NVML_VALUE_NOT_AVAILABLE)
 *   accounting_unknown <index>            (nvmlDeviceGetAccountingStats answers NOT_FOUND: the
 *                                         pid asked is not one the driver knows)
 *   accounting_util <index> <pct1> [<pct2> ...]  (gpuUtilization, "percent of time over the
 *                                         process's lifetime during which one or more kernels
 *                                         was executing", of the first accounting read, then the
 *                                         next; 4294967295 is NVML_VALUE_NOT_AVAILABLE)
 *   accounting_sums <index> <samples>:<sum> [...]  (sampleCount and sumGpuUtil, "in unit of pct
 *                                         * 100", of the first nvmlDeviceGetAccountingStats_v2
 *                                         read, then the next; without the line 0:0)
 *   accounting_ended <index> <ms>          (the process has ended: isRunning 0 and time, "amount
 *                                         of time in ms during which the compute context was
 *                                         active"; else isRunning 1, time 0 and startTime the
 *                                         moment the library read its description, in us)
 *   (one accounting read: one call of nvmlDeviceGetAccountingStats or _v2, for any pid)
 *   gpm <index> <pct1> [<pct2> ...]       (GPM, Hopper and newer: nvmlGpmQueryDeviceSupport says
 *                                         the GPU is supported, else isSupportedDevice 0 and
 *                                         nvmlGpmSampleGet NOT_SUPPORTED, as before Hopper; the
 *                                         first nvmlGpmMetricsGet of two samples of that GPU, the
 *                                         first taken before the second, answers pct1 for
 *                                         NVML_GPM_METRIC_GRAPHICS_UTIL (1), the next pct2, ...;
 *                                         other metrics NOT_SUPPORTED in their nvmlReturn; a
 *                                         version other than 1 ARGUMENT_VERSION_MISMATCH (25))
 *   process <index> <bytes> [other]       (nvmlDeviceGetComputeRunningProcesses_v3 lists the
 *                                         calling process holding that much; "other": a process
 *                                         of another pid instead, as inside a container, where
 *                                         NVML lists the host's pids)
 *   field <index> <field id> <v1> [<v2> ...]  (nvmlDeviceGetFieldValues: that field answers v1,
 *                                         then v2, ..., as an unsigned long long; the NVLink
 *                                         throughput fields 138-141 only for scopeId UINT_MAX (all
 *                                         links); a field without a line: NOT_SUPPORTED)
 *   power_max <index> <milliwatts>        (nvmlDeviceGetPowerManagementLimitConstraints' max)
 * Built with -DLEAVE_OUT_<function> (nvmlDeviceGetViolationStatus, nvmlDeviceGetFieldValues,
 * nvmlDeviceGetTotalEccErrors, nvmlDeviceGetAccountingStats_v2, nvmlGpmQueryDeviceSupport),
 * the library lacks that function, as a newer NVML lacks one it deprecated (nvml.h of CUDA 13
 * marks nvmlDeviceGetViolationStatus for removal in CUDA 14) and an older one those that came
 * later (GPM with CUDA 12's NVML, accounting's sums with driver 610's).
 * fake_nvml_gpm_samples() answers how many GPM samples are allocated and not freed.
 * nvmlDeviceGetCount_v2 counts every gpu line, refused or not, as nvml.h says it does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEVICES 64

typedef struct device {
    char name[96];
    char uuid[96];
    char bus[32];
    unsigned long long memory;
    int cc_major, cc_minor, mig;
    int parent, gi, ci, handle_error, is_mig;
    unsigned power_mw, pcie_gen, pcie_width;
    int nvlinks, nvlinks_active;
    int ecc, ecc_known;
    unsigned long long counter_values[5][8];
    int counter_count[5], counter_reads[5];
    int accounting, accounting_known, accounting_unknown;
    unsigned long long accounting_max[8];
    int accounting_count, accounting_reads;
    unsigned accounting_util[8];
    int accounting_util_count;
    unsigned accounting_samples[8];
    unsigned long long accounting_sums[8];
    int accounting_sums_count, accounting_ended;
    unsigned long long accounting_time_ms;
    int gpm, gpm_count, gpm_reads;
    double gpm_util[8];
    unsigned long long process_bytes;
    int process_known, process_other;
    unsigned field_ids[16];
    unsigned long long field_values[16][8];
    int field_count[16], field_reads[16], fields;
    unsigned power_max_mw;
    int slot_error[8];
    struct device *children[8];
    int child_count;
} device_t;

typedef struct { unsigned long long total, free, used; } memory_t;
typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} pci_t;

static device_t gpus[MAX_DEVICES];
static device_t migs[MAX_DEVICES];
static int gpu_count, mig_count, loaded, init_error, init_sleep_ms, init_sleep_from = 1, init_calls;
static unsigned long long loaded_at_us;
static char driver[80] = "0.0";
static int cuda = 0;

static void rest_of_line(const char *line, int skip, char *out, size_t size) {
    const char *p = line;
    for (int i = 0; i < skip && p; i++) {
        p = strchr(p, ' ');
        if (p) p++;
    }
    snprintf(out, size, "%s", p ? p : "");
    out[strcspn(out, "\n")] = 0;
}

static void load(void) {
    if (loaded) return;
    loaded = 1;
    struct timeval now;
    gettimeofday(&now, NULL);
    loaded_at_us = (unsigned long long)now.tv_sec * 1000000ull + (unsigned long long)now.tv_usec;
    const char *path = getenv("FAKE_NVML_SPEC");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "driver ", 7)) sscanf(line + 7, "%79s", driver);
        else if (!strncmp(line, "cuda ", 5)) cuda = atoi(line + 5);
        else if (!strncmp(line, "init_error ", 11)) init_error = atoi(line + 11);
        else if (!strncmp(line, "init_sleep_ms ", 14)) sscanf(line + 14, "%d %d", &init_sleep_ms, &init_sleep_from);
        else if (!strncmp(line, "handle_error ", 13)) {
            int index, code;
            if (sscanf(line + 13, "%d %d", &index, &code) == 2 && index >= 0 && index < MAX_DEVICES)
                gpus[index].handle_error = code;
        } else if (!strncmp(line, "power ", 6)) {
            int index; unsigned mw;
            if (sscanf(line + 6, "%d %u", &index, &mw) == 2 && index >= 0 && index < MAX_DEVICES)
                gpus[index].power_mw = mw;
        } else if (!strncmp(line, "pcie ", 5)) {
            int index; unsigned gen, width;
            if (sscanf(line + 5, "%d %u %u", &index, &gen, &width) == 3 && index >= 0 && index < MAX_DEVICES) {
                gpus[index].pcie_gen = gen; gpus[index].pcie_width = width;
            }
        } else if (!strncmp(line, "nvlink ", 7)) {
            int index, links, active;
            if (sscanf(line + 7, "%d %d %d", &index, &links, &active) == 3 && index >= 0 && index < MAX_DEVICES) {
                gpus[index].nvlinks = links; gpus[index].nvlinks_active = active;
            }
        } else if (!strncmp(line, "counter ", 8)) {
            int index, consumed = 0, slot = -1;
            char name[32];
            if (sscanf(line + 8, "%d %31s %n", &index, name, &consumed) == 2 && index >= 0 && index < MAX_DEVICES) {
                const char *names[5] = {"energy", "power_violation", "thermal_violation", "ecc_uncorrected", "pcie_replays"};
                for (int i = 0; i < 5; i++) if (!strcmp(name, names[i])) slot = i;
                if (slot >= 0) {
                    const char *p = line + 8 + consumed;
                    unsigned long long value; int used;
                    while (gpus[index].counter_count[slot] < 8 && sscanf(p, "%llu%n", &value, &used) == 1) {
                        gpus[index].counter_values[slot][gpus[index].counter_count[slot]++] = value;
                        p += used;
                    }
                }
            }
        } else if (!strncmp(line, "accounting ", 11)) {
            int index, mode, consumed = 0;
            if (sscanf(line + 11, "%d %d %n", &index, &mode, &consumed) == 2 && index >= 0 && index < MAX_DEVICES) {
                const char *p = line + 11 + consumed;
                unsigned long long value; int used;
                gpus[index].accounting = mode; gpus[index].accounting_known = 1;
                while (gpus[index].accounting_count < 8 && sscanf(p, "%llu%n", &value, &used) == 1) {
                    gpus[index].accounting_max[gpus[index].accounting_count++] = value;
                    p += used;
                }
            }
        } else if (!strncmp(line, "accounting_util ", 16)) {
            int index, consumed = 0;
            if (sscanf(line + 16, "%d %n", &index, &consumed) == 1 && index >= 0 && index < MAX_DEVICES) {
                device_t *d = &gpus[index];
                const char *p = line + 16 + consumed;
                unsigned value; int used;
                while (d->accounting_util_count < 8 && sscanf(p, "%u%n", &value, &used) == 1) {
                    d->accounting_util[d->accounting_util_count++] = value;
                    p += used;
                }
            }
        } else if (!strncmp(line, "accounting_sums ", 16)) {
            int index, consumed = 0;
            if (sscanf(line + 16, "%d %n", &index, &consumed) == 1 && index >= 0 && index < MAX_DEVICES) {
                device_t *d = &gpus[index];
                const char *p = line + 16 + consumed;
                unsigned samples; unsigned long long sum; int used;
                while (d->accounting_sums_count < 8 && sscanf(p, " %u:%llu%n", &samples, &sum, &used) == 2) {
                    d->accounting_samples[d->accounting_sums_count] = samples;
                    d->accounting_sums[d->accounting_sums_count++] = sum;
                    p += used;
                }
            }
        } else if (!strncmp(line, "accounting_ended ", 17)) {
            int index; unsigned long long ms;
            if (sscanf(line + 17, "%d %llu", &index, &ms) == 2 && index >= 0 && index < MAX_DEVICES) {
                gpus[index].accounting_ended = 1; gpus[index].accounting_time_ms = ms;
            }
        } else if (!strncmp(line, "gpm ", 4)) {
            int index, consumed = 0;
            if (sscanf(line + 4, "%d %n", &index, &consumed) == 1 && index >= 0 && index < MAX_DEVICES) {
                device_t *d = &gpus[index];
                const char *p = line + 4 + consumed;
                double value; int used;
                d->gpm = 1;
                while (d->gpm_count < 8 && sscanf(p, "%lf%n", &value, &used) == 1) {
                    d->gpm_util[d->gpm_count++] = value;
                    p += used;
                }
            }
        } else if (!strncmp(line, "accounting_unknown ", 19)) {
            int index;
            if (sscanf(line + 19, "%d", &index) == 1 && index >= 0 && index < MAX_DEVICES)
                gpus[index].accounting_unknown = 1;
        } else if (!strncmp(line, "process ", 8)) {
            int index; unsigned long long bytes; char other[16] = "";
            if (sscanf(line + 8, "%d %llu %15s", &index, &bytes, other) >= 2 && index >= 0 && index < MAX_DEVICES) {
                gpus[index].process_bytes = bytes; gpus[index].process_known = 1;
                gpus[index].process_other = !strcmp(other, "other");
            }
        } else if (!strncmp(line, "field ", 6)) {
            int index, consumed = 0; unsigned id;
            if (sscanf(line + 6, "%d %u %n", &index, &id, &consumed) == 2 && index >= 0 && index < MAX_DEVICES &&
                gpus[index].fields < 16) {
                device_t *d = &gpus[index];
                int slot = d->fields++;
                const char *p = line + 6 + consumed;
                unsigned long long value; int used;
                d->field_ids[slot] = id;
                while (d->field_count[slot] < 8 && sscanf(p, "%llu%n", &value, &used) == 1) {
                    d->field_values[slot][d->field_count[slot]++] = value;
                    p += used;
                }
            }
        } else if (!strncmp(line, "power_max ", 10)) {
            int index; unsigned mw;
            if (sscanf(line + 10, "%d %u", &index, &mw) == 2 && index >= 0 && index < MAX_DEVICES)
                gpus[index].power_max_mw = mw;
        } else if (!strncmp(line, "ecc ", 4)) {
            int index, mode;
            if (sscanf(line + 4, "%d %d", &index, &mode) == 2 && index >= 0 && index < MAX_DEVICES) {
                gpus[index].ecc = mode; gpus[index].ecc_known = 1;
            }
        } else if (!strncmp(line, "mig_handle_error ", 17)) {
            int parent, slot, code;
            if (sscanf(line + 17, "%d %d %d", &parent, &slot, &code) == 3 && parent >= 0 &&
                parent < MAX_DEVICES && slot >= 0 && slot < 8)
                gpus[parent].slot_error[slot] = code;
        }
        else if (!strncmp(line, "gpu ", 4) && gpu_count < MAX_DEVICES) {
            device_t *d = &gpus[gpu_count++];
            sscanf(line + 4, "%llu %d %d %d %31s %95s", &d->memory, &d->cc_major, &d->cc_minor, &d->mig,
                   d->bus, d->uuid);
            rest_of_line(line, 7, d->name, sizeof d->name);
        } else if (!strncmp(line, "mig ", 4) && mig_count < MAX_DEVICES) {
            device_t *d = &migs[mig_count++];
            sscanf(line + 4, "%d %llu %d %d %95s", &d->parent, &d->memory, &d->gi, &d->ci, d->uuid);
            rest_of_line(line, 6, d->name, sizeof d->name);
            d->mig = -1;
            d->is_mig = 1;
            if (d->parent >= 0 && d->parent < gpu_count && gpus[d->parent].child_count < 8)
                gpus[d->parent].children[gpus[d->parent].child_count++] = d;
        }
    }
    fclose(f);
}

int nvmlInit_v2(void) {
    load();
    if (init_sleep_ms && ++init_calls >= init_sleep_from) {
        struct timespec t = {init_sleep_ms / 1000, (init_sleep_ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
    }
    return init_error;
}
int nvmlShutdown(void) { return 0; }
const char *nvmlErrorString(int code) {
    switch (code) {
    case 4: return "Insufficient Permissions";
    case 9: return "Driver Not Loaded";
    case 15: return "GPU is lost";
    default: return "Unknown Error";
    }
}

static int copy(const char *text, char *out, unsigned int size) {
    if (strlen(text) + 1 > size) return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */
    strcpy(out, text);
    return 0;
}
int nvmlSystemGetDriverVersion(char *out, unsigned int size) { return copy(driver, out, size); }
int nvmlSystemGetCudaDriverVersion_v2(int *out) { *out = cuda; return cuda ? 0 : 3; }
int nvmlDeviceGetCount_v2(unsigned int *count) { *count = gpu_count; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, device_t **handle) {
    if (index >= (unsigned)gpu_count) return 2;
    if (gpus[index].handle_error) return gpus[index].handle_error;
    *handle = &gpus[index];
    return 0;
}
int nvmlDeviceGetName(device_t *d, char *out, unsigned int size) { return copy(d->name, out, size); }
int nvmlDeviceGetUUID(device_t *d, char *out, unsigned int size) { return copy(d->uuid, out, size); }
int nvmlDeviceGetMemoryInfo(device_t *d, memory_t *m) {
    m->total = d->memory; m->free = d->memory; m->used = 0;
    return 0;
}
int nvmlDeviceGetCudaComputeCapability(device_t *d, int *major, int *minor) {
    *major = d->cc_major; *minor = d->cc_minor;
    return 0;
}
int nvmlDeviceGetPciInfo_v3(device_t *d, pci_t *pci) {
    memset(pci, 0, sizeof *pci);
    snprintf(pci->busId, sizeof pci->busId, "%s", d->bus);
    return 0;
}
int nvmlDeviceGetMigMode(device_t *d, unsigned int *current, unsigned int *pending) {
    if (d->mig < 0) return 3; /* NVML_ERROR_NOT_SUPPORTED */
    *current = *pending = (unsigned)d->mig;
    return 0;
}
int nvmlDeviceGetMaxMigDeviceCount(device_t *d, unsigned int *count) { *count = 7; return 0; }
int nvmlDeviceGetMigDeviceHandleByIndex(device_t *d, unsigned int index, device_t **handle) {
    if (index < 8 && d->slot_error[index]) return d->slot_error[index];
    if (index >= (unsigned)d->child_count) return 6; /* NVML_ERROR_NOT_FOUND */
    *handle = d->children[index];
    return 0;
}
int nvmlDeviceGetGpuInstanceId(device_t *d, unsigned int *id) {
    if (!d->is_mig) return 3;
    *id = (unsigned)d->gi;
    return 0;
}
int nvmlDeviceGetComputeInstanceId(device_t *d, unsigned int *id) {
    if (!d->is_mig) return 3;
    *id = (unsigned)d->ci;
    return 0;
}
int nvmlDeviceGetEnforcedPowerLimit(device_t *d, unsigned int *limit) {
    if (!d->power_mw) return 3;
    *limit = d->power_mw;
    return 0;
}
int nvmlDeviceGetMaxPcieLinkGeneration(device_t *d, unsigned int *gen) {
    if (!d->pcie_gen) return 3;
    *gen = d->pcie_gen;
    return 0;
}
int nvmlDeviceGetCurrPcieLinkWidth(device_t *d, unsigned int *width) {
    if (!d->pcie_width) return 3;
    *width = d->pcie_width;
    return 0;
}
int nvmlDeviceGetNvLinkState(device_t *d, unsigned int link, unsigned int *active) {
    if (!d->nvlinks) return 3;               /* NVML_ERROR_NOT_SUPPORTED */
    if (link >= (unsigned)d->nvlinks) return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *active = link < (unsigned)d->nvlinks_active ? 1 : 0;
    return 0;
}
int nvmlDeviceGetEccMode(device_t *d, unsigned int *current, unsigned int *pending) {
    if (!d->ecc_known) return 3;             /* NVML_ERROR_NOT_SUPPORTED */
    *current = *pending = (unsigned)d->ecc;  /* NVML_FEATURE_ENABLED is 1 */
    return 0;
}

int nvmlDeviceGetHandleByUUID(const char *uuid, device_t **handle) {
    load();
    for (int i = 0; i < gpu_count; i++)
        if (!strcmp(gpus[i].uuid, uuid)) { *handle = &gpus[i]; return gpus[i].handle_error; }
    return 6; /* NVML_ERROR_NOT_FOUND */
}

static int next_value(device_t *d, int slot, unsigned long long *out) {
    if (!d->counter_count[slot]) return 3; /* NVML_ERROR_NOT_SUPPORTED */
    int read = d->counter_reads[slot] < d->counter_count[slot] ? d->counter_reads[slot] : d->counter_count[slot] - 1;
    d->counter_reads[slot]++;
    *out = d->counter_values[slot][read];
    return 0;
}
int nvmlDeviceGetTotalEnergyConsumption(device_t *d, unsigned long long *energy) { return next_value(d, 0, energy); }
typedef struct { unsigned long long referenceTime, violationTime; } violation_t;
#ifndef LEAVE_OUT_nvmlDeviceGetViolationStatus
int nvmlDeviceGetViolationStatus(device_t *d, unsigned int policy, violation_t *out) {
    if (policy > 1) return 3;
    out->referenceTime = 0;
    return next_value(d, 1 + (int)policy, &out->violationTime);
}
#endif
#ifndef LEAVE_OUT_nvmlDeviceGetTotalEccErrors
int nvmlDeviceGetTotalEccErrors(device_t *d, unsigned int type, unsigned int counter, unsigned long long *count) {
    if (type != 1 || counter != 0) return 2; /* only uncorrected, volatile is asked */
    return next_value(d, 3, count);
}
#endif
/* nvml.h nvmlFieldValue_t: fieldId, scopeId, timestamp, latencyUsec, valueType, nvmlReturn, value */
typedef struct {
    unsigned int fieldId, scopeId;
    long long timestamp, latencyUsec;
    unsigned int valueType, nvmlReturn;
    union { double d; unsigned int ui; unsigned long ul; unsigned long long ull; long long sll; } value;
} field_value_t;
#ifndef LEAVE_OUT_nvmlDeviceGetFieldValues
int nvmlDeviceGetFieldValues(device_t *d, int count, field_value_t *values) {
    for (int i = 0; i < count; i++) {
        field_value_t *v = &values[i];
        int slot = -1;
        for (int f = 0; f < d->fields; f++) if (d->field_ids[f] == v->fieldId) slot = f;
        v->valueType = 3; /* NVML_VALUE_TYPE_UNSIGNED_LONG_LONG */
        v->timestamp = 0; v->latencyUsec = 0;
        if (slot < 0 || !d->field_count[slot]) { v->nvmlReturn = 3; continue; }
        if (v->fieldId >= 138 && v->fieldId <= 141 && v->scopeId != 0xFFFFFFFFu) { v->nvmlReturn = 2; continue; }
        int read = d->field_reads[slot] < d->field_count[slot] ? d->field_reads[slot] : d->field_count[slot] - 1;
        d->field_reads[slot]++;
        v->value.ull = d->field_values[slot][read];
        v->nvmlReturn = 0;
    }
    return 0;
}
#endif
int nvmlDeviceGetPowerManagementLimitConstraints(device_t *d, unsigned int *min, unsigned int *max) {
    if (!d->power_max_mw) return 3;
    *min = 100000; *max = d->power_max_mw;
    return 0;
}
int nvmlDeviceGetPcieReplayCounter(device_t *d, unsigned int *value) {
    unsigned long long wide;
    int code = next_value(d, 4, &wide);
    if (!code) *value = (unsigned int)wide;
    return code;
}
int nvmlDeviceGetAccountingMode(device_t *d, unsigned int *mode) {
    if (!d->accounting_known) return 3;
    *mode = (unsigned)d->accounting;
    return 0;
}
typedef struct {
    unsigned int gpuUtilization, memoryUtilization;
    unsigned long long maxMemoryUsage, time, startTime;
    unsigned int isRunning, reserved[5];
} accounting_t;
/* nvml.h nvmlAccountingStats_v2_t */
typedef struct {
    unsigned int pid, isRunning, gpuUtilization, memoryUtilization;
    unsigned long long maxMemoryUsage;
    unsigned int sampleCount;
    unsigned long long sumGpuUtil, sumFbUtil, time, startTime;
} accounting_v2_t;
/* One accounting read: its index into each list (the last repeating), or a code to answer. */
static int accounting_read(device_t *d) {
    if (!d->accounting_known || !d->accounting) return -3;
    if (d->accounting_unknown) return -6; /* NVML_ERROR_NOT_FOUND: no such pid */
    return d->accounting_reads++;
}
static int nth(int read, int count) { return read < count ? read : count - 1; }
static void accounting_common(device_t *d, int read, unsigned *util, unsigned long long *max,
                              unsigned *running, unsigned long long *time, unsigned long long *start) {
    *max = d->accounting_count ? d->accounting_max[nth(read, d->accounting_count)] : 0;
    *util = d->accounting_util_count ? d->accounting_util[nth(read, d->accounting_util_count)] : 0;
    *running = !d->accounting_ended;
    *time = d->accounting_ended ? d->accounting_time_ms : 0;
    *start = loaded_at_us;
}
int nvmlDeviceGetAccountingStats(device_t *d, unsigned int pid, accounting_t *stats) {
    int read = accounting_read(d);
    if (read < 0) return -read;
    memset(stats, 0, sizeof *stats);
    accounting_common(d, read, &stats->gpuUtilization, &stats->maxMemoryUsage, &stats->isRunning,
                      &stats->time, &stats->startTime);
    return 0;
}
#ifndef LEAVE_OUT_nvmlDeviceGetAccountingStats_v2
int nvmlDeviceGetAccountingStats_v2(device_t *d, accounting_v2_t *stats) {
    if (!stats) return 2;
    int read = accounting_read(d);
    if (read < 0) return -read;
    unsigned pid = stats->pid;
    memset(stats, 0, sizeof *stats);
    stats->pid = pid;
    accounting_common(d, read, &stats->gpuUtilization, &stats->maxMemoryUsage, &stats->isRunning,
                      &stats->time, &stats->startTime);
    if (d->accounting_sums_count) {
        stats->sampleCount = d->accounting_samples[nth(read, d->accounting_sums_count)];
        stats->sumGpuUtil = d->accounting_sums[nth(read, d->accounting_sums_count)];
    }
    return 0;
}
#endif
typedef struct { unsigned int pid; unsigned long long usedGpuMemory; unsigned int gpuInstanceId, computeInstanceId; } process_t;
int nvmlDeviceGetComputeRunningProcesses_v3(device_t *d, unsigned int *count, process_t *infos) {
    if (!d->process_known) { *count = 0; return 0; }
    if (*count < 1) { *count = 1; return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */ }
    infos[0].pid = d->process_other ? (unsigned)getpid() + 100000u : (unsigned)getpid();
    infos[0].usedGpuMemory = d->process_bytes;
    infos[0].gpuInstanceId = infos[0].computeInstanceId = 0xFFFFFFFF;
    *count = 1;
    return 0;
}

/* GPM (nvml.h: nvmlGpmSupport_t, nvmlGpmSample_t, nvmlGpmMetric_t, nvmlGpmMetricsGet_t). */
#define GPM_METRIC_MAX 333 /* NVML_GPM_METRIC_MAX of CUDA 13's nvml.h */
typedef struct { unsigned int version, isSupportedDevice; } gpm_support_t;
typedef struct gpm_sample { device_t *device; long taken; } gpm_sample_t;
typedef struct {
    unsigned int metricId;
    int nvmlReturn;
    double value;
    char *shortName, *longName, *unit;
} gpm_metric_t;
typedef struct {
    unsigned int version, numMetrics;
    gpm_sample_t *sample1, *sample2;
    gpm_metric_t metrics[GPM_METRIC_MAX];
} gpm_metrics_get_t;
static int gpm_allocated;
int fake_nvml_gpm_samples(void) { return gpm_allocated; }
#ifndef LEAVE_OUT_nvmlGpmQueryDeviceSupport
static long gpm_taken;
int nvmlGpmQueryDeviceSupport(device_t *d, gpm_support_t *support) {
    if (!support) return 2;
    if (support->version != 1) return 25; /* NVML_ERROR_ARGUMENT_VERSION_MISMATCH */
    support->isSupportedDevice = (unsigned)d->gpm;
    return 0;
}
int nvmlGpmSampleAlloc(gpm_sample_t **sample) {
    if (!sample) return 2;
    *sample = calloc(1, sizeof **sample);
    if (!*sample) return 20; /* NVML_ERROR_MEMORY */
    gpm_allocated++;
    return 0;
}
int nvmlGpmSampleFree(gpm_sample_t *sample) {
    if (!sample) return 2;
    free(sample);
    gpm_allocated--;
    return 0;
}
int nvmlGpmSampleGet(device_t *d, gpm_sample_t *sample) {
    if (!sample) return 2;
    if (!d->gpm) return 3;
    sample->device = d;
    sample->taken = ++gpm_taken;
    return 0;
}
int nvmlGpmMetricsGet(gpm_metrics_get_t *get) {
    if (!get) return 2;
    if (get->version != 1) return 25;
    gpm_sample_t *first = get->sample1, *second = get->sample2;
    if (get->numMetrics > GPM_METRIC_MAX || !first || !second || !first->device ||
        first->device != second->device || first->taken >= second->taken)
        return 2;
    device_t *d = first->device;
    int read = nth(d->gpm_reads, d->gpm_count);
    d->gpm_reads++;
    for (unsigned i = 0; i < get->numMetrics; i++) {
        gpm_metric_t *m = &get->metrics[i];
        m->shortName = m->longName = m->unit = NULL;
        if (m->metricId == 1 && d->gpm_count) {
            m->nvmlReturn = 0;
            m->value = d->gpm_util[read];
        } else {
            m->nvmlReturn = 3;
            m->value = 0;
        }
    }
    return 0;
}
#endif
