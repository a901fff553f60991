/*
 * machine.h: which machine a run is on, for the JSON context.
 *
 * The machine key names what decides speed, so that baselines are kept per
 * kind of machine: architecture, CPU vendor and model, PU count, e.g.
 * "x86_64-amd-epyc-2pu". Two VMs of one key can still differ (another host
 * CPU behind the same model name, other neighbours), so the context also
 * carries the CPU's family and model, the kernel, the hypervisor and a host
 * id; reports/compare gates raw times only between runs of the same key
 * and host id, and times over the run's own memory floor otherwise.
 */
#ifndef HARNESS_MACHINE_H
#define HARNESS_MACHINE_H

#include <stddef.h>

typedef struct machine_info {
  char key[96];       /* arch-vendor-model-Npu, lower case, e.g. x86_64-amd-epyc-2pu */
  char cpu[320];      /* "AuthenticAMD family 25 model 17: AMD EPYC" (what /proc/cpuinfo says) */
  char kernel[208];   /* uname: "Linux 6.1.0-13-amd64 x86_64" */
  char virt[32];      /* hypervisor ("KVM", "Xen", ...), "none" on bare metal, or "unknown" */
  char host_id[24];   /* FNV-1a 64 of /etc/machine-id in hex (not the id itself), or "unknown" */
} machine_info;

/* The key of a CPU: arch, vendor ("AuthenticAMD" -> amd, "GenuineIntel" ->
 * intel, "" -> cpu), up to three words of the model name that name the part
 * (not the vendor, "Processor", core counts or clocks), PU count:
 * ("x86_64", "AuthenticAMD", "AMD EPYC 7B13 64-Core Processor", 2) ->
 * "x86_64-amd-epyc-7b13-2pu". Truncated to len. */
void machine_key(const char *arch, const char *vendor, const char *model_name, int pus, char *out,
                 size_t len);

/* Fills mi for this machine with pus PUs (the topology's count). Never
 * fails: what cannot be read is "unknown" (the key then says "cpu"). */
void machine_get(machine_info *mi, int pus);

#endif /* HARNESS_MACHINE_H */
