/* Escape attempt on the ptrace platform: a child cloned with CLONE_UNTRACED is not followed by
 * the tracer. Its emulated calls must fail (RET_TRACE with no tracer: ENOSYS), not run
 * unchecked; pass-through calls still work. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    long pid = syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) {
        printf("clone: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        int fd = open("/etc/passwd", O_RDONLY);
        int open_err = fd >= 0 ? 0 : errno;
        struct utsname u;
        int uname_err = uname(&u) == 0 ? 0 : errno;
        int pass_ok = getppid() > 0;
        /* exit code: open errno, uname errno, pass ok packed in one byte each (small values) */
        _exit((open_err == ENOSYS) * 1 + (uname_err == ENOSYS) * 2 + pass_ok * 4);
    }
    int st;
    waitpid(pid, &st, 0);
    int c = WEXITSTATUS(st);
    printf("open_enosys=%d uname_enosys=%d pass_ok=%d\n", c & 1, (c >> 1) & 1, (c >> 2) & 1);
    return 0;
}
