/* Escape attempts from inside the container root. Prints one line per attempt:
 * "<name> <result>" where result is "ok:<first bytes>" or "err:<errno>". The test checks that
 * no attempt reads the host secret. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static void try_open(const char *name, int dirfd, const char *path) {
    int fd = openat(dirfd, path, O_RDONLY);
    if (fd < 0) { printf("%s err:%d\n", name, errno); return; }
    char buf[64] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0) n = 0;
    buf[n] = 0;
    char *nl = strchr(buf, '\n'); if (nl) *nl = 0;
    printf("%s ok:%s\n", name, buf);
    close(fd);
}

int main(int argc, char **argv) {
    const char *secret = argc > 1 ? argv[1] : "secret";
    char p[512];
    snprintf(p, sizeof p, "../%s", secret);           try_open("dotdot", AT_FDCWD, p);
    snprintf(p, sizeof p, "/../../../../%s", secret);  try_open("abs_dotdot", AT_FDCWD, p);
    snprintf(p, sizeof p, "/tmp/../../%s", secret);    try_open("mid_dotdot", AT_FDCWD, p);
    snprintf(p, sizeof p, "/../%s", secret);
    symlink(p, "/tmp/abs_link");                       try_open("abs_symlink", AT_FDCWD, "/tmp/abs_link");
    snprintf(p, sizeof p, "../../../../%s", secret);
    symlink(p, "/tmp/rel_link");                       try_open("rel_symlink", AT_FDCWD, "/tmp/rel_link");
    symlink("/", "/tmp/rootlink");
    snprintf(p, sizeof p, "/tmp/rootlink/../%s", secret); try_open("link_dotdot", AT_FDCWD, p);
    int d = open("/tmp", O_RDONLY | O_DIRECTORY);
    snprintf(p, sizeof p, "../../%s", secret);         try_open("dirfd_dotdot", d, p);
    for (int i = 0; i < 10; i++) chdir("..");
    try_open("chdir_dotdot", AT_FDCWD, secret);
    struct stat st;
    snprintf(p, sizeof p, "/../%s", secret);
    printf("stat %s\n", stat(p, &st) == 0 ? "ok" : "err");
    char cwd[256];
    printf("getcwd %s\n", getcwd(cwd, sizeof cwd) ? cwd : "err");
    snprintf(p, sizeof p, "/../%s", secret);
    printf("rename %s\n", rename("/tmp/abs_link", p) == 0 ? "ok" : "err");
    return 0;
}
