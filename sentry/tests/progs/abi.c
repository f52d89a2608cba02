/* Other syscall ABIs: "i386" makes getpid through int 0x80, "x32" through the x32 bit,
 * "clone_ns" asks clone for a user namespace, "seccomp" tries to stack a listener.
 * The first two must kill the process (SIGSYS); the others must fail with EPERM. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/seccomp.h>
#include <linux/filter.h>

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "i386")) {
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");
        printf("i386 survived %ld\n", ret);
    } else if (!strcmp(what, "x32")) {
        long r = syscall(0x40000000 | 39);
        printf("x32 survived %ld\n", r);
    } else if (!strcmp(what, "clone_ns")) {
        long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        printf("clone_ns %ld %d\n", r, r < 0 ? errno : 0);
        if (r == 0) _exit(0);
    } else if (!strcmp(what, "seccomp")) {
        struct sock_filter f[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
        struct sock_fprog p = { 1, f };
        long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &p);
        printf("seccomp %ld %d\n", r, r < 0 ? errno : 0);
    }
    return 0;
}
