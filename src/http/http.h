/* http.h - the HTTP shell: libmicrohttpd (epoll, thread pool) in front of
 * the services. A request's life: headers -> bounded body (PT_HTTP_BODY_MAX
 * by default) -> route -> key -> role -> strict JSON -> service. Reads
 * answer on the pool thread; writes are queued to the writer and the
 * connection is suspended until the group commit is durable, so that 64
 * concurrent writers need 64 queued ops, not 64 threads.
 *
 * Ownership: pt_http_start returns a server that borrows app; stop it with
 * pt_http_stop before closing app. */
#ifndef PT_HTTP_H
#define PT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/result.h"
#include "service/app.h"

#define PT_HTTP_BODY_MAX (64 * 1024)

typedef struct pt_http pt_http;

typedef struct pt_http_config {
    const char *host; /* "127.0.0.1", "0.0.0.0", "::1" */
    uint16_t port;    /* 0 = any free port */
    unsigned threads;
    size_t body_max;
} pt_http_config;

pt_result pt_http_start(pt_app *app, const pt_http_config *cfg, pt_http **out, pt_err *err);
uint16_t pt_http_port(pt_http *h);
/* Stops accepting, lets queued writes finish, stops. Accepts NULL. */
void pt_http_stop(pt_http *h);

/* The route table, for `patto routes` and the authorization matrix test. */
typedef struct pt_route_info {
    const char *method;
    const char *path; /* with {param} segments */
    unsigned roles;   /* PT_ROLE_BIT mask; 0 = public */
} pt_route_info;
/* Fills up to cap entries; returns the number of routes. */
size_t pt_http_routes(pt_route_info *out, size_t cap);

/* Pure request decoding, shared with the fuzz target: validates a body as
 * the server would (size, UTF-8, depth, JSON, duplicates). Returns the
 * parsed value or NULL with err set. */
json_t *pt_http_decode_body(const char *body, size_t len, size_t max, pt_err *err);

#endif
