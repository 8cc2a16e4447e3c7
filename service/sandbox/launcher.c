/* rlef-exec: apply a test's rlimits, then exec it (built inside each sandbox by the
   runner; see runner.build_launcher). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
static void lim(int r, unsigned long long soft, unsigned long long hard) {
    struct rlimit l = {soft, hard};
    if (setrlimit(r, &l)) { perror("rlef-exec: setrlimit"); _exit(126); }
}
int main(int argc, char **argv) {
    if (argc < 9 || strcmp(argv[7], "--")) {
        fputs("rlef-exec: bad arguments\n", stderr);
        return 126;
    }
    close(atoi(argv[1]));
    unsigned long long cpu = strtoull(argv[2], 0, 10), as = strtoull(argv[3], 0, 10);
    unsigned long long nproc = strtoull(argv[4], 0, 10), fsize = strtoull(argv[5], 0, 10);
    unsigned long long nofile = strtoull(argv[6], 0, 10);
    lim(RLIMIT_CPU, cpu, cpu + 1);
    lim(RLIMIT_CORE, 0, 0);
    lim(RLIMIT_NOFILE, nofile, nofile);
    lim(RLIMIT_FSIZE, fsize, fsize);
    if (as) { lim(RLIMIT_STACK, RLIM_INFINITY, RLIM_INFINITY); lim(RLIMIT_AS, as, as); }
    else lim(RLIMIT_STACK, 256ULL << 20, 256ULL << 20);
    if (nproc) lim(RLIMIT_NPROC, nproc, nproc);
    signal(SIGPIPE, SIG_DFL); signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL);
    execvp(argv[8], argv + 8);
    fprintf(stderr, "cannot execute %s: %s\n", argv[8], strerror(errno));
    return 127;
}
