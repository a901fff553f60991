/*
 * perfctl.c: the bench's end of perf record's control pipes (perfctl.h).
 */
#include "perfctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* perf answers within milliseconds; longer means it is gone or stuck. */
#define ACK_TIMEOUT_MS 1000

/* -2: the environment is not read yet; -1: no control (absent or failed). */
static int ctl_fd = -2, ack_fd = -1;

/* An open descriptor from the environment variable name, or -1. */
static int env_fd(const char *name) {
  const char *s = getenv(name);
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < 0 || v > 1 << 20 || fcntl((int)v, F_GETFD) < 0) {
    fprintf(stderr, "stackscan-bench: %s=%s is not an open file descriptor; perf control off\n",
            name, s);
    return -1;
  }
  return (int)v;
}

static void init(void) {
  ctl_fd = env_fd("STACKSCAN_PERF_CTL_FD");
  ack_fd = ctl_fd < 0 ? -1 : env_fd("STACKSCAN_PERF_ACK_FD");
  if (ack_fd < 0) ctl_fd = -1;
}

static void give_up(const char *cmd, const char *why) {
  fprintf(stderr, "stackscan-bench: perf control: %s: %s; profiling the rest unfiltered\n", cmd,
          why);
  ctl_fd = ack_fd = -1;
}

/* Sends cmd ("enable" / "disable") and waits for perf's ack. */
static void command(const char *cmd) {
  if (ctl_fd == -2) init();
  if (ctl_fd < 0) return;
  char line[16];
  int n = snprintf(line, sizeof line, "%s\n", cmd);
  if (write(ctl_fd, line, (size_t)n) != n) {
    give_up(cmd, strerror(errno));
    return;
  }
  struct pollfd p = {.fd = ack_fd, .events = POLLIN};
  int r;
  while ((r = poll(&p, 1, ACK_TIMEOUT_MS)) < 0 && errno == EINTR) {}
  char ack[16];
  /* perf writes "ack\n" and its NUL in one write, so one read takes it; a
   * NUL left over from an earlier answer is skipped. */
  ssize_t got = r > 0 ? read(ack_fd, ack, sizeof ack) : -1;
  const char *a = ack;
  while (got > 0 && *a == '\0') a++, got--;
  if (got < 4 || memcmp(a, "ack\n", 4) != 0) give_up(cmd, r == 0 ? "no ack from perf" : "bad ack");
}

void perfctl_enable(void) { command("enable"); }
void perfctl_disable(void) { command("disable"); }
