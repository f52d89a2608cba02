/* TOCTOU: a second thread flips the path buffer between a harmless name and an escape while
 * the main thread opens (and execs) it. Prints how many opens read the secret. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <stdlib.h>

static char path[256];
static char good[256], bad[256];
static volatile int stop;

static void *flipper(void *arg) {
    (void)arg;
    while (!stop) {
        /* Hold each value for a while so both are seen by opens. */
        memcpy(path, good, sizeof path);
        __asm__ volatile("" ::: "memory"); /* keep the store: the other thread reads it */
        for (volatile int i = 0; i < 2000; i++) {}
        memcpy(path, bad, sizeof path);
        __asm__ volatile("" ::: "memory");
        for (volatile int i = 0; i < 2000; i++) {}
    }
    return NULL;
}

int main(int argc, char **argv) {
    int iters = argc > 2 ? atoi(argv[2]) : 2000;
    snprintf(good, sizeof good, "/tmp/harmless");
    snprintf(bad, sizeof bad, "/../../../../%s", argc > 1 ? argv[1] : "secret");
    int f = open(good, O_CREAT | O_WRONLY, 0644); write(f, "harmless\n", 9); close(f);
    pthread_t t;
    pthread_create(&t, NULL, flipper, NULL);
    int leaked = 0, opened = 0;
    for (int i = 0; i < iters; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        opened++;
        char buf[32] = {0};
        read(fd, buf, sizeof buf - 1);
        if (strncmp(buf, "harmless", 8) != 0) leaked++;
        close(fd);
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("opened %d leaked %d\n", opened, leaked);
    return leaked ? 1 : 0;
}
