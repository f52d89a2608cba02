/* Per-call cost of a few syscalls; run natively and under the sentry by examples/bench.rs.
 * Prints "<name> <ns per call>". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

#define BENCH(name, n, body) do { \
    for (int i = 0; i < (n) / 10; i++) { body; } \
    double t0 = now(); \
    for (int i = 0; i < (n); i++) { body; } \
    printf("%s %.0f\n", name, (now() - t0) / (n)); \
} while (0)

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    struct utsname u;
    struct stat st;
    int fd = open("/tmp/bench", O_CREAT | O_RDWR, 0644);
    char buf[64];
    BENCH("getppid(pass)", n, syscall(SYS_getppid));
    BENCH("pread(pass)", n, pread(fd, buf, sizeof buf, 0));
    BENCH("uname(emulated)", n, uname(&u));
    BENCH("fstat(emulated-local)", n, fstat(fd, &st));
    BENCH("stat(emulated-gofer)", n, stat("/tmp/bench", &st));
    BENCH("open+close(emulated-gofer)", n, close(open("/tmp/bench", O_RDONLY)));
    return 0;
}
