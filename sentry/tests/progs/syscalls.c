/* Make raw syscalls and report the result: for each number on the command line print
 * "<nr> <ret> <errno>". All arguments are -1 so that a call the filter wrongly let through
 * fails in the kernel (bad pointer, bad flags) instead of changing the host. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long nr = strtol(argv[i], NULL, 0);
        errno = 0;
        long r = syscall(nr, -1L, -1L, -1L, -1L, -1L, -1L);
        printf("%ld %ld %d\n", nr, r, r < 0 ? errno : 0);
        fflush(stdout);
    }
    return 0;
}
