/*
 * perfctl.h: lets `perf record --control` sample inside collections only.
 *
 * reports/perfrecord --gc-only starts `perf record -D -1 --control=fd:C,A`
 * (events off until told) and gives the bench the other ends of the two
 * pipes in the environment:
 *   STACKSCAN_PERF_CTL_FD   the bench writes "enable\n" / "disable\n" here
 *   STACKSCAN_PERF_ACK_FD   perf answers "ack\n" here after each command
 * run.c brackets each timed ref_gc() with perfctl_enable/perfctl_disable,
 * outside the timed interval, so the profile holds the cycles and nothing
 * of the wake-ups between them. Without the variables both calls return at
 * once; a control channel that fails (perf gone, no ack within a second)
 * prints one line on stderr and is not used again.
 */
#ifndef HARNESS_PERFCTL_H
#define HARNESS_PERFCTL_H

void perfctl_enable(void);
void perfctl_disable(void);

#endif /* HARNESS_PERFCTL_H */
