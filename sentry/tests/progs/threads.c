/* Many threads doing emulated calls at once: each opens, stats and closes its own file. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

static int fails;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *work(void *arg) {
    long id = (long)arg;
    char p[64];
    snprintf(p, sizeof p, "/tmp/t%ld", id);
    for (int i = 0; i < 200; i++) {
        int fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0600);
        struct stat st;
        if (fd < 0 || write(fd, p, 4) != 4 || stat(p, &st) != 0 || st.st_size != 4) {
            pthread_mutex_lock(&mu); fails++; pthread_mutex_unlock(&mu);
        }
        if (fd >= 0) close(fd);
    }
    return NULL;
}

int main(void) {
    pthread_t t[8];
    for (long i = 0; i < 8; i++) pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    printf("fails %d\n", fails);
    return fails != 0;
}
