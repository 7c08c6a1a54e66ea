/* bench_fsync.c - the durable-write ceiling of a filesystem: write 4 KiB
 * then fdatasync, in a loop, for SECONDS (at most MAX_SYNCS times). That is
 * the rate a server doing one fsync per request would reach; a group
 * commit should beat it by the batch size.
 *
 * The file is preallocated (16 MiB) and overwritten in a cycle, as a
 * reused SQLite WAL is, so the loop measures data syncs, not file growth.
 *
 * usage: bench_fsync PATH [SECONDS]   (PATH must not exist; it is removed)
 * Prints one "RESULT syncs=N seconds=S syncs_per_s=R" line. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define FILE_BLOCKS 4096 /* 16 MiB */
#define MAX_SYNCS 10000000L

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench_fsync PATH [SECONDS]\n");
        return 2;
    }
    const char *path = argv[1];
    double secs = argc == 3 ? atof(argv[2]) : 3.0;
    if (!(secs > 0 && secs <= 60)) {
        fprintf(stderr, "bench_fsync: SECONDS must be in (0, 60]\n");
        return 2;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "bench_fsync: cannot create %s: %s\n", path, strerror(errno));
        return 3;
    }
    static char buf[BLOCK];
    memset(buf, 'x', sizeof buf);
    for (int i = 0; i < FILE_BLOCKS; i++)
        if (write(fd, buf, BLOCK) != BLOCK) {
            fprintf(stderr, "bench_fsync: write: %s\n", strerror(errno));
            goto fail;
        }
    if (fsync(fd) != 0) {
        fprintf(stderr, "bench_fsync: fsync: %s\n", strerror(errno));
        goto fail;
    }
    long n = 0;
    double t0 = now_s(), t;
    do {
        buf[0] = (char)n;
        off_t off = (off_t)(n % FILE_BLOCKS) * BLOCK;
        if (pwrite(fd, buf, BLOCK, off) != BLOCK || fdatasync(fd) != 0) {
            fprintf(stderr, "bench_fsync: %s\n", strerror(errno));
            goto fail;
        }
        n++;
        t = now_s() - t0;
    } while (t < secs && n < MAX_SYNCS);
    close(fd);
    unlink(path);
    printf("4 KiB write + fdatasync: %ld in %.2f s (%.0f/s)\n", n, t, (double)n / t);
    printf("RESULT syncs=%ld seconds=%.3f syncs_per_s=%.0f\n", n, t, (double)n / t);
    return 0;
fail:
    close(fd);
    unlink(path);
    return 3;
}
