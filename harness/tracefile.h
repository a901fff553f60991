/*
 * tracefile.h: --trace=FILE, the collections' timelines as Chrome trace
 * event JSON (chrome://tracing, Perfetto). One process per benchmark run
 * (its name the benchmark's), one thread per mark worker, one complete
 * event ("ph": "X") per span ref_trace_events reports, with the cycle's
 * number and the span's items in args. At most TRACEFILE_CYCLES cycles of
 * each benchmark run are kept, so the file stays small however long a run
 * is. The file is written under FILE.tmp and renamed when the bench ends
 * well, so a failed run leaves no half-written trace.
 */
#ifndef HARNESS_TRACEFILE_H
#define HARNESS_TRACEFILE_H

#include <stdbool.h>
#include <stddef.h>

#define TRACEFILE_CYCLES 32
#define TRACEFILE_EVENTS 65536  /* per worker and cycle (ref_trace_enable) */

/* Opens FILE.tmp; 0, or -1 with a one-line message in err. */
int tracefile_open(const char *path, char *err, size_t errlen);
bool tracefile_on(void);
/* A benchmark run begins: its cycles go under a process named name. */
void tracefile_begin(const char *name);
/* Appends the last cycle's spans of every worker (ref_trace_events). */
void tracefile_cycle(int nworkers);
/* Ends the file and renames it into place (ok), or removes it. Returns 0,
 * or -1 with a one-line message on stderr. */
int tracefile_close(bool ok);

#endif /* HARNESS_TRACEFILE_H */
