/* runas UID GID PROG ARGS...: drop to an unprivileged user and exec. */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: runas UID GID PROG ARGS...\n"); return 2; }
    gid_t g = atoi(argv[2]);
    if (setgroups(0, NULL) || setresgid(g, g, g) || setresuid(atoi(argv[1]), atoi(argv[1]), atoi(argv[1]))) {
        perror("runas");
        return 1;
    }
    execv(argv[3], argv + 3);
    perror("execv");
    return 127;
}
