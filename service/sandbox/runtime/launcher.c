/* rlef-exec: apply the rlimits it is given, then exec the program.
   argv: FD COUNT (RESOURCE SOFT HARD){COUNT} -- PROGRAM ARGS...
   The table comes from limits.py (the one place limits are decided); this only applies
   it. Built inside each sandbox by the runner into a sealed memfd (see state.py). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int fail(const char *what) {
    fprintf(stderr, "rlef-exec: %s\n", what);
    return 126;
}

int main(int argc, char **argv) {
    if (argc < 4) return fail("bad arguments");
    close(atoi(argv[1]));
    long count = strtol(argv[2], 0, 10);
    if (count < 0 || count > 32 || argc < 3 + 3 * count + 2) return fail("bad arguments");
    for (long i = 0; i < count; i++) {
        struct rlimit l;
        int res = atoi(argv[3 + 3 * i]);
        l.rlim_cur = strtoull(argv[4 + 3 * i], 0, 10);
        l.rlim_max = strtoull(argv[5 + 3 * i], 0, 10);
        if (setrlimit(res, &l)) { perror("rlef-exec: setrlimit"); return 126; }
    }
    int sep = 3 + 3 * count;
    if (strcmp(argv[sep], "--")) return fail("bad arguments");
    /* programs are the first the OOM killer takes, never the runner */
    int fd = open("/proc/self/oom_score_adj", O_WRONLY);
    if (fd >= 0) { if (write(fd, "1000", 4) < 0) {} close(fd); }
    signal(SIGPIPE, SIG_DFL); signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL);
    execvp(argv[sep + 1], argv + sep + 1);
    fprintf(stderr, "cannot execute %s: %s\n", argv[sep + 1], strerror(errno));
    return 127;
}
