/*
 * machine.c: the machine key and the facts beside it (machine.h), from
 * /proc/cpuinfo, uname, CPUID and /etc/machine-id.
 */
#include "machine.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* The value of the first "name<TAB>: value" line of /proc/cpuinfo, or "". */
static void cpuinfo_field(const char *name, char *out, size_t len) {
  out[0] = '\0';
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[1024];
  size_t n = strlen(name);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, name, n) != 0) continue;
    const char *v = line + n;
    while (*v == '\t' || *v == ' ') v++;
    if (*v != ':') continue; /* "model name" is not "model" */
    for (v++; *v == ' '; v++) {}
    snprintf(out, len, "%s", v);
    out[strcspn(out, "\n")] = '\0';
    break;
  }
  fclose(f);
}

/* Appends token to the slug buf ("-"-separated), lower case. */
static void slug_add(char *buf, size_t len, const char *tok, size_t toklen) {
  size_t at = strlen(buf);
  if (at && at + 1 < len) buf[at++] = '-';
  for (size_t i = 0; i < toklen && at + 1 < len; i++)
    buf[at++] = (char)tolower((unsigned char)tok[i]);
  buf[at] = '\0';
}

/* Words of a model name that say nothing about the part. */
static int noise_word(const char *w, size_t n, const char *vendor) {
  static const char *const words[] = {"amd", "intel", "r", "tm", "cpu", "processor", "with",
                                      "radeon", "graphics"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strlen(words[i]) == n && strncasecmp(w, words[i], n) == 0) return 1;
  return strlen(vendor) == n && strncasecmp(w, vendor, n) == 0;
}

static int is_core_word(const char *w, size_t n) {
  return (n == 4 && strncasecmp(w, "core", 4) == 0) || (n == 5 && strncasecmp(w, "cores", 5) == 0);
}

/* "AMD EPYC 7B13 64-Core Processor" -> "epyc-7b13": at most three words,
 * none after '@' (the clock), no "N-Core" count. */
static void model_slug(const char *model, const char *vendor, char *out, size_t len) {
  out[0] = '\0';
  int words = 0;
  const char *p = model;
  while (words < 3) {
    while (*p && !isalnum((unsigned char)*p) && *p != '@') p++;
    if (!*p || *p == '@') break;
    const char *w = p;
    while (isalnum((unsigned char)*p)) p++;
    size_t n = (size_t)(p - w);
    const char *q = p; /* the next word, to drop "64-Core" */
    while (*q && !isalnum((unsigned char)*q) && *q != '@') q++;
    size_t qn = 0;
    while (isalnum((unsigned char)q[qn])) qn++;
    if (isdigit((unsigned char)w[0]) && strspn(w, "0123456789") == n && is_core_word(q, qn)) {
      p = q + qn;
      continue;
    }
    if (noise_word(w, n, vendor)) continue;
    slug_add(out, len, w, n);
    words++;
  }
}

/* CPUID's vendor strings as people write them. */
static void vendor_slug(const char *vendor, char *out, size_t len) {
  if (strcmp(vendor, "AuthenticAMD") == 0) vendor = "amd";
  else if (strcmp(vendor, "GenuineIntel") == 0) vendor = "intel";
  else if (!vendor[0]) vendor = "cpu";
  out[0] = '\0';
  slug_add(out, len, vendor, strlen(vendor));
  for (char *c = out; *c; c++)
    if (!isalnum((unsigned char)*c)) *c = '-';
}

/* The hypervisor's name from CPUID leaf 0x40000000, "none" without the
 * hypervisor bit; elsewhere /sys/hypervisor/type or "unknown". */
static void hypervisor(char *out, size_t len) {
  snprintf(out, len, "unknown");
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return;
  if (!(c & (1u << 31))) {
    snprintf(out, len, "none");
    return;
  }
  char sig[13] = {0};
  __cpuid(0x40000000, a, b, c, d);
  memcpy(sig, &b, 4);
  memcpy(sig + 4, &c, 4);
  memcpy(sig + 8, &d, 4);
  static const char *const known[][2] = {
      {"KVMKVMKVM", "KVM"},       {"Microsoft Hv", "Hyper-V"}, {"VMwareVMware", "VMware"},
      {"XenVMMXenVMM", "Xen"},    {"TCGTCGTCGTCG", "QEMU-TCG"}, {"VBoxVBoxVBox", "VirtualBox"}};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(sig, known[i][0]) == 0) {
      snprintf(out, len, "%s", known[i][1]);
      return;
    }
  snprintf(out, len, "%s", sig[0] ? sig : "yes");
#else
  FILE *f = fopen("/sys/hypervisor/type", "r");
  if (f && fgets(out, (int)len, f)) out[strcspn(out, "\n")] = '\0';
  if (f) fclose(f);
#endif
}

/* A hash of /etc/machine-id: tells hosts apart without publishing the id. */
static void host_id(char *out, size_t len) {
  snprintf(out, len, "unknown");
  FILE *f = fopen("/etc/machine-id", "r");
  if (!f) return;
  char id[128];
  if (fgets(id, sizeof id, f)) {
    uint64_t h = 0xcbf29ce484222325u;
    for (const char *c = id; *c && *c != '\n'; c++) h = (h ^ (unsigned char)*c) * 0x100000001b3u;
    snprintf(out, len, "%016llx", (unsigned long long)h);
  }
  fclose(f);
}

void machine_key(const char *arch, const char *vendor, const char *model_name, int pus, char *out,
                 size_t len) {
  char vs[32], ms[64];
  vendor_slug(vendor, vs, sizeof vs);
  model_slug(model_name, vs, ms, sizeof ms);
  snprintf(out, len, "%s-%s%s%s-%dpu", arch[0] ? arch : "unknown", vs, ms[0] ? "-" : "", ms, pus);
}

void machine_get(machine_info *mi, int pus) {
  struct utsname u;
  if (uname(&u) != 0) memset(&u, 0, sizeof u);
  char vendor[64], family[32], model[32], name[128];
  cpuinfo_field("vendor_id", vendor, sizeof vendor);
  if (!vendor[0]) cpuinfo_field("CPU implementer", vendor, sizeof vendor);
  cpuinfo_field("cpu family", family, sizeof family);
  cpuinfo_field("model", model, sizeof model);
  cpuinfo_field("model name", name, sizeof name);
  if (!name[0]) cpuinfo_field("CPU part", name, sizeof name);
  machine_key(u.machine, vendor, name, pus, mi->key, sizeof mi->key);
  snprintf(mi->cpu, sizeof mi->cpu, "%s family %s model %s: %s", vendor[0] ? vendor : "unknown",
           family[0] ? family : "?", model[0] ? model : "?", name[0] ? name : "unknown");
  snprintf(mi->kernel, sizeof mi->kernel, "%s %s %s", u.sysname, u.release, u.machine);
  hypervisor(mi->virt, sizeof mi->virt);
  host_id(mi->host_id, sizeof mi->host_id);
}
