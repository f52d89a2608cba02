/* What fd injection must keep from a native open: lowest free fd, O_CLOEXEC, no leaked fds,
 * the caller's signal mask. Prints one line; run natively and under the sentry and compare. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    sigset_t want, got;
    sigemptyset(&want);
    sigaddset(&want, SIGUSR1);
    sigprocmask(SIG_SETMASK, &want, NULL);
    close(0);
    int a = open("/etc/passwd", O_RDONLY);
    int b = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    int c = open("/etc/passwd", O_RDONLY);
    int fb = fcntl(b, F_GETFD) & FD_CLOEXEC;
    int fc = fcntl(c, F_GETFD) & FD_CLOEXEC;
    int n = 0;
    for (int i = 0; i < 256; i++)
        if (fcntl(i, F_GETFD) != -1)
            n++;
    for (int i = 0; i < 300; i++) {
        int x = open("/etc/passwd", O_RDONLY);
        if (x != c + 1) {
            printf("loop %d got fd %d\n", i, x);
            return 1;
        }
        close(x);
    }
    sigprocmask(SIG_SETMASK, NULL, &got);
    int same = 1;
    for (int s = 1; s < 32; s++)
        if (sigismember(&got, s) != sigismember(&want, s))
            same = 0;
    char buf[5] = {0};
    read(a, buf, 4);
    printf("a=%d b=%d cloexec_b=%d c=%d cloexec_c=%d open=%d mask_kept=%d read=%s\n", a, b, fb, c,
           fc, n, same, buf);
    return 0;
}
