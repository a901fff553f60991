/*
 * tracefile.c: --trace=FILE (tracefile.h).
 */
#include "tracefile.h"

#include "ref.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct {
  FILE *f;
  char path[4096], tmp[4100];
  int pid;            /* the current benchmark run's process id in the trace */
  int cycles;         /* cycles written for it */
  bool first;         /* no event written yet: no comma before the next */
  bool failed;        /* a write failed */
  uint64_t t_origin;  /* the first cycle's first event: ts are relative to it */
} tf;

int tracefile_open(const char *path, char *err, size_t errlen) {
  if (strlen(path) >= sizeof tf.path) {
    snprintf(err, errlen, "--trace: path too long");
    return -1;
  }
  snprintf(tf.path, sizeof tf.path, "%s", path);
  snprintf(tf.tmp, sizeof tf.tmp, "%s.tmp", path);
  tf.f = fopen(tf.tmp, "w");
  if (!tf.f) {
    snprintf(err, errlen, "--trace: cannot write %s: %s", tf.tmp, strerror(errno));
    return -1;
  }
  tf.first = true;
  fputs("{\"displayTimeUnit\": \"ns\", \"traceEvents\": [\n", tf.f);
  return 0;
}

bool tracefile_on(void) { return tf.f != NULL; }

static void sep(void) {
  if (!tf.first) fputs(",\n", tf.f);
  tf.first = false;
}

/* A JSON string's body: the names here are benchmark names, but quote and
 * backslash are escaped all the same. */
static void put_escaped(const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', tf.f);
    if ((unsigned char)*s >= 0x20) fputc(*s, tf.f);
  }
}

void tracefile_begin(const char *name) {
  if (!tf.f) return;
  tf.pid++;
  tf.cycles = 0;
  sep();
  fprintf(tf.f, "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"args\": {\"name\": \"",
          tf.pid);
  put_escaped(name);
  fputs("\"}}", tf.f);
}

void tracefile_cycle(int nworkers) {
  if (!tf.f || tf.cycles >= TRACEFILE_CYCLES) return;
  tf.cycles++;
  for (int w = 0; w < nworkers; w++) {
    const ref_trace_event *ev;
    size_t n = ref_trace_events(w, &ev, NULL);
    for (size_t k = 0; k < n; k++) {
      if (tf.t_origin == 0) tf.t_origin = ev[k].t0_ns;
      sep();
      fprintf(tf.f,
              "{\"name\": \"%s\", \"cat\": \"gc\", \"ph\": \"X\", \"pid\": %d, \"tid\": %d, "
              "\"ts\": %.3f, \"dur\": %.3f, \"args\": {\"cycle\": %d, \"items\": %llu}}",
              ref_trace_kind_name((ref_trace_kind)ev[k].kind), tf.pid, w,
              (double)(ev[k].t0_ns - tf.t_origin) / 1e3,
              (double)(ev[k].t1_ns - ev[k].t0_ns) / 1e3, tf.cycles,
              (unsigned long long)ev[k].items);
    }
  }
  if (ferror(tf.f)) tf.failed = true;
}

int tracefile_close(bool ok) {
  if (!tf.f) return 0;
  fputs("\n]}\n", tf.f);
  bool bad = ferror(tf.f) || tf.failed;
  if (fclose(tf.f) != 0) bad = true;
  tf.f = NULL;
  if (!ok || bad) {
    remove(tf.tmp);
    if (bad) fprintf(stderr, "stackscan-bench: --trace: writing %s failed\n", tf.tmp);
    return bad ? -1 : 0;
  }
  if (rename(tf.tmp, tf.path) != 0) {
    fprintf(stderr, "stackscan-bench: --trace: cannot rename %s to %s: %s\n", tf.tmp, tf.path,
            strerror(errno));
    remove(tf.tmp);
    return -1;
  }
  return 0;
}
