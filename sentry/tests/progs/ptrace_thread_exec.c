/* A non-leader thread execs while the leader keeps making emulated calls: the exec'ing thread
 * takes over the leader's tid (the tracer must not answer the leader's stale call into it). */
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

static void *execer(void *arg) {
    (void)arg;
    usleep(20000);
    char *argv[] = {"/bin/sh", "-c", "echo exec-from-thread-ok", NULL};
    char *envp[] = {"PATH=/bin", NULL};
    execve("/bin/sh", argv, envp);
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, execer, NULL);
    for (;;) {
        int fd = open("/etc/passwd", O_RDONLY);
        if (fd >= 0)
            close(fd);
    }
}
