/* request.h - one HTTP request in flight, shared by server.c (plumbing)
 * and routes.c (handlers). Everything a request allocates lives in its
 * arena or is released in pt_req_free. */
#ifndef PT_REQUEST_H
#define PT_REQUEST_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

#include "core/arena.h"
#include "service/service.h"

#define PT_MAX_PARAMS 4

typedef struct pt_req pt_req;
typedef void (*pt_handler)(pt_req *r);

typedef struct pt_route {
    const char *method;
    const char *path;
    unsigned roles;            /* 0 = public */
    bool json_body;            /* POST/PUT with a JSON document */
    const char *const *query;  /* allowed query parameters, NULL-terminated; NULL = none */
    pt_handler handler;
} pt_route;

struct pt_req {
    pt_app *app;
    struct pt_http *http;
    struct MHD_Connection *conn;
    pt_arena arena;
    const char *method;
    const char *url;
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    bool dispatched;
    const pt_route *route;
    const char *params[PT_MAX_PARAMS];
    pt_principal who;
    json_t *json;
    /* the answer */
    int status;
    json_t *resp;           /* JSON answer */
    const char *raw;        /* or a static body */
    size_t raw_len;
    const char *raw_type;
    const char *allow;      /* 405: the methods the path takes */
    pt_err err;             /* problem answer when status >= 400 */
    /* a queued write */
    pt_op op;
    bool pending;
    volatile bool done;
};

/* Handlers finish with one of these. */
void pt_req_json(pt_req *r, int status, json_t *doc); /* steals doc */
void pt_req_problem(pt_req *r, pt_result code, const pt_err *err);
/* Queues r->op (already prepared) and suspends the connection. */
void pt_req_submit(pt_req *r);
const char *pt_req_query(pt_req *r, const char *name);

extern const pt_route pt_route_table[];
extern const size_t pt_route_count;

#endif
