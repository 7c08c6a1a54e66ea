/* arena.h - a per-request bump allocator: everything a request allocates
 * through it is freed at once when the request ends, so handlers need no
 * individual frees on their error paths. Not thread-safe; one per request.
 * Ownership: pt_arena_destroy frees every block; pointers die with it. */
#ifndef PT_ARENA_H
#define PT_ARENA_H

#include <stddef.h>

typedef struct pt_arena_block pt_arena_block;
typedef struct pt_arena {
    pt_arena_block *head;
    size_t total; /* bytes handed out, for the limit */
    size_t limit; /* 0 = unlimited */
} pt_arena;

void pt_arena_init(pt_arena *a, size_t limit);
/* Returns NULL when out of memory or over the limit. 16-byte aligned. */
void *pt_arena_alloc(pt_arena *a, size_t n);
char *pt_arena_strndup(pt_arena *a, const char *s, size_t n);
char *pt_arena_printf(pt_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Accepts NULL. */
void pt_arena_destroy(pt_arena *a);

#endif
