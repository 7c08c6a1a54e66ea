/* server.c - libmicrohttpd plumbing: request lifecycle, bounded bodies,
 * routing, authentication, problem+json answers, suspend/resume around
 * queued writes, and a graceful stop. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/jsonscan.h"
#include "http.h"
#include "request.h"

/* Bytes a request may allocate from its arena (parameters, strings). */
#define PT_REQ_ARENA_LIMIT (256 * 1024)

struct pt_http {
    pt_app *app;
    struct MHD_Daemon *d;
    size_t body_max;
    uint16_t port;
    atomic_int pending; /* suspended connections waiting for the writer */
};

/* ------------------------------------------------------------ decoding */

json_t *pt_http_decode_body(const char *body, size_t len, size_t max, pt_err *err)
{
    size_t off = 0;
    if (len > max) {
        pt_err_set(err, PT_ERR_TOO_LARGE, "body", "the body is larger than %zu bytes", max);
        return NULL;
    }
    if (len == 0) {
        pt_err_set(err, PT_ERR_INVALID, "body", "a JSON body is required");
        return NULL;
    }
    switch (pt_jsonscan(body, len, PT_JSON_MAX_DEPTH, &off)) {
    case PT_JSONSCAN_OK:
        break;
    case PT_JSONSCAN_TOO_DEEP:
        pt_err_set(err, PT_ERR_INVALID, "body", "JSON nested deeper than %d levels (byte %zu)",
                   PT_JSON_MAX_DEPTH, off);
        return NULL;
    case PT_JSONSCAN_BAD_UTF8:
        pt_err_set(err, PT_ERR_INVALID, "body", "the body is not valid UTF-8 (byte %zu)", off);
        return NULL;
    default:
        pt_err_set(err, PT_ERR_INVALID, "body", "the body holds a NUL byte (byte %zu)", off);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        /* jansson's text may quote the input: give the position only */
        pt_err_set(err, PT_ERR_INVALID, "body",
                   strstr(je.text, "duplicate") ? "duplicate object key at line %d, column %d"
                                                : "malformed JSON at line %d, column %d",
                   je.line, je.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        pt_err_set(err, PT_ERR_INVALID, "body", "the body must be a JSON object");
        return NULL;
    }
    return v;
}

/* ------------------------------------------------------------ answers */

void pt_req_json(pt_req *r, int status, json_t *doc)
{
    r->status = status;
    json_decref(r->resp);
    r->resp = doc;
}

void pt_req_problem(pt_req *r, pt_result code, const pt_err *err)
{
    r->status = pt_result_http_status(code);
    pt_err_clear(&r->err);
    if (err) r->err = *err;
    r->err.code = code;
    if (!r->err.detail[0])
        snprintf(r->err.detail, sizeof r->err.detail, "%s", pt_result_str(code));
}

const char *pt_req_query(pt_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result queue(pt_req *r)
{
    struct MHD_Response *resp;
    char *buf = NULL;
    size_t len = 0;
    const char *ctype = "application/json";
    if (r->status >= 400) {
        json_t *p = json_pack("{s:s, s:s, s:i, s:s}", "type", "", "title",
                              pt_result_str(r->err.code), "status", r->status, "detail",
                              r->err.detail);
        char type[96];
        snprintf(type, sizeof type, "urn:patto:problem:%s", pt_result_slug(r->err.code));
        json_object_set_new(p, "type", json_string(type));
        if (r->err.field[0]) json_object_set_new(p, "field", json_string(r->err.field));
        json_object_set_new(p, "instance", json_string(r->url));
        buf = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        ctype = "application/problem+json";
    } else if (r->raw) {
        resp = MHD_create_response_from_buffer(r->raw_len, (void *)r->raw, MHD_RESPMEM_MUST_COPY);
        ctype = r->raw_type;
        goto headers;
    } else if (r->resp) {
        buf = json_dumps(r->resp, JSON_COMPACT);
    }
    if (buf) len = strlen(buf);
    resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
headers:
    if (!resp) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    /* answers carry personal data: no shared cache may keep them */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (r->status == 503) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (r->status == 405 && r->allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ------------------------------------------------------------ writes */

static void op_done(pt_op *op)
{
    pt_req *r = op->done_ctx;
    pt_http *h = r->http; /* r may be freed once resumed */
    r->done = true;
    MHD_resume_connection(r->conn);
    /* counted here, on the writer, because a client that hung up while
     * its write was queued never comes back through on_request */
    atomic_fetch_sub(&h->pending, 1);
}

void pt_req_submit(pt_req *r)
{
    r->pending = true;
    r->op.done = op_done;
    r->op.done_ctx = r;
    atomic_fetch_add(&r->http->pending, 1);
    MHD_suspend_connection(r->conn);
    pt_app_submit(r->app, &r->op);
}

static void finish_op(pt_req *r)
{
    if (r->op.rc == PT_OK) {
        pt_req_json(r, r->op.status ? r->op.status : 200, r->op.out);
        r->op.out = NULL;
    } else {
        pt_req_problem(r, r->op.rc, &r->op.err);
    }
}

/* ------------------------------------------------------------ routing */

/* Matches path against a pattern with {param} segments; params point into
 * the arena. Returns 1 on match. */
static int match(pt_req *r, const char *pattern, const char *path, const char **params)
{
    size_t np = 0;
    const char *p = pattern, *u = path;
    while (*p && *u) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *ue = strchr(u, '/');
            if (!ue) ue = u + strlen(u);
            if (ue == u || np == PT_MAX_PARAMS) return 0;
            params[np++] = pt_arena_strndup(&r->arena, u, (size_t)(ue - u));
            p = pe + 1;
            u = ue;
            continue;
        }
        if (*p != *u) return 0;
        p++;
        u++;
    }
    return *p == '\0' && *u == '\0';
}

static bool query_allowed(const pt_route *rt, const char *key)
{
    for (const char *const *q = rt->query; q && *q; q++)
        if (strcmp(*q, key) == 0) return true;
    return false;
}

typedef struct query_check {
    const pt_route *rt;
    const char *bad;
    bool secret;
} query_check;

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    (void)value;
    query_check *q = cls;
    if (!strcasecmp(key, "api_key") || !strcasecmp(key, "key") || !strcasecmp(key, "token") ||
        !strcasecmp(key, "access_token") || !strcasecmp(key, "authorization")) {
        q->bad = key;
        q->secret = true;
        return MHD_NO;
    }
    if (!query_allowed(q->rt, key)) {
        q->bad = key;
        return MHD_NO;
    }
    return MHD_YES;
}

static void dispatch(pt_req *r)
{
    pt_err err;
    pt_err_clear(&err);
    const pt_route *found = NULL;
    char allow[128] = "";
    const char *params[PT_MAX_PARAMS] = {0};

    for (size_t i = 0; i < pt_route_count; i++) {
        const pt_route *rt = &pt_route_table[i];
        if (!match(r, rt->path, r->url, params)) continue;
        if (strcmp(rt->method, r->method) == 0) {
            found = rt;
            memcpy(r->params, params, sizeof params);
            break;
        }
        if (strlen(allow) + strlen(rt->method) + 3 < sizeof allow) {
            if (allow[0]) strcat(allow, ", ");
            strcat(allow, rt->method);
        }
    }
    if (!found) {
        if (allow[0]) {
            r->allow = pt_arena_strndup(&r->arena, allow, strlen(allow));
            pt_err_set(&err, PT_ERR_METHOD, "", "%s is not allowed here; allowed: %s", r->method,
                       allow);
            pt_req_problem(r, PT_ERR_METHOD, &err);
            return;
        }
        pt_err_set(&err, PT_ERR_NOT_FOUND, "", "no such resource");
        pt_req_problem(r, PT_ERR_NOT_FOUND, &err);
        return;
    }
    r->route = found;

    query_check q = {.rt = found};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_iter, &q);
    if (q.secret) {
        pt_err_set(&err, PT_ERR_INVALID, q.bad,
                   "API keys are never accepted in the query string (they end up in logs): "
                   "send 'Authorization: Bearer <key>' and revoke the key you just exposed");
        pt_req_problem(r, PT_ERR_INVALID, &err);
        return;
    }

    if (found->roles) {
        const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_AUTHORIZATION);
        if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
            pt_err_set(&err, PT_ERR_UNAUTHORIZED, "",
                       "send an API key as 'Authorization: Bearer <key>'");
            pt_req_problem(r, PT_ERR_UNAUTHORIZED, &err);
            return;
        }
        const char *tok = auth + 7;
        while (*tok == ' ') tok++;
        if (pt_auth(r->app, tok, strlen(tok), &r->who) != PT_OK) {
            pt_err_set(&err, PT_ERR_UNAUTHORIZED, "", "the API key is unknown or revoked");
            pt_req_problem(r, PT_ERR_UNAUTHORIZED, &err);
            return;
        }
        if (!(found->roles & PT_ROLE_BIT(r->who.role))) {
            pt_err_set(&err, PT_ERR_FORBIDDEN, "", "the role '%s' may not %s %s",
                       pt_role_name(r->who.role), found->method, found->path);
            pt_req_problem(r, PT_ERR_FORBIDDEN, &err);
            return;
        }
    }

    if (q.bad) {
        pt_err_set(&err, PT_ERR_INVALID, q.bad, "unknown query parameter '%.64s'", q.bad);
        pt_req_problem(r, PT_ERR_INVALID, &err);
        return;
    }

    if (found->json_body) {
        const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_TYPE);
        size_t n = strlen("application/json"), mp = strlen("application/merge-patch+json");
        /* a PATCH body is a JSON merge patch (RFC 7396), which has its own type */
        bool merge_patch = ct && !strcmp(found->method, "PATCH") &&
                           strncasecmp(ct, "application/merge-patch+json", mp) == 0 &&
                           (ct[mp] == '\0' || ct[mp] == ';' || ct[mp] == ' ');
        if (!merge_patch && (!ct || strncasecmp(ct, "application/json", n) != 0 ||
                             (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' '))) {
            pt_err_set(&err, PT_ERR_MEDIA_TYPE, "Content-Type",
                       "send the body as 'Content-Type: application/json'");
            pt_req_problem(r, PT_ERR_MEDIA_TYPE, &err);
            return;
        }
        if (r->too_large) {
            pt_err_set(&err, PT_ERR_TOO_LARGE, "body", "the body is larger than %zu bytes",
                       r->http->body_max);
            pt_req_problem(r, PT_ERR_TOO_LARGE, &err);
            return;
        }
        r->json = pt_http_decode_body(r->body, r->body_len, r->http->body_max, &err);
        if (!r->json) {
            pt_req_problem(r, err.code, &err);
            return;
        }
    } else if (r->body_len > 0 || r->too_large) {
        pt_err_set(&err, PT_ERR_INVALID, "body", "%s %s takes no body", found->method,
                   found->path);
        pt_req_problem(r, PT_ERR_INVALID, &err);
        return;
    }
    found->handler(r);
}

/* ------------------------------------------------------------ MHD glue */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    pt_http *h = cls;
    pt_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->app = h->app;
        r->http = h;
        r->conn = conn;
        pt_arena_init(&r->arena, PT_REQ_ARENA_LIMIT);
        r->method = method;
        r->url = url;
        *con_cls = r;
        /* refuse early what cannot fit, rather than read it */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > h->body_max) r->too_large = true;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (!r->too_large && r->body_len + n <= h->body_max) {
            if (r->body_len + n > r->body_cap) {
                size_t cap = r->body_cap ? r->body_cap : 4096;
                while (cap < r->body_len + n) cap *= 2;
                if (cap > h->body_max) cap = h->body_max;
                char *nb = realloc(r->body, cap);
                if (!nb) return MHD_NO;
                r->body = nb;
                r->body_cap = cap;
            }
            memcpy(r->body + r->body_len, upload_data, n);
            r->body_len += n;
        } else {
            r->too_large = true;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->pending) {
        if (!r->done) return MHD_YES; /* spurious wake-up */
        r->pending = false;
        finish_op(r);
        return queue(r);
    }
    if (!r->dispatched) {
        r->dispatched = true;
        dispatch(r);
        if (r->pending) return MHD_YES;
    }
    return queue(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    pt_req *r = *con_cls;
    if (!r) return;
    json_decref(r->json);
    json_decref(r->resp);
    pt_op_clear(&r->op);
    if (r->body) {
        /* bodies hold personal data */
        pt_wipe(r->body, r->body_len);
        free(r->body);
    }
    pt_arena_destroy(&r->arena);
    free(r);
    *con_cls = NULL;
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    /* libmicrohttpd's messages name sockets and states, never bodies */
    fputs("patto: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

pt_result pt_http_start(pt_app *app, const pt_http_config *cfg, pt_http **out, pt_err *err)
{
    pt_http *h = calloc(1, sizeof *h);
    if (!h) return pt_err_set(err, PT_ERR_NOMEM, "", "out of memory");
    h->app = app;
    h->body_max = cfg->body_max ? cfg->body_max : PT_HTTP_BODY_MAX;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    const char *host = cfg->host && *cfg->host ? cfg->host : "127.0.0.1";
    if (strchr(host, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(cfg->port);
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) goto badhost;
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons(cfg->port);
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) goto badhost;
    }
    h->d = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, h,
                            MHD_OPTION_EXTERNAL_LOGGER, on_log, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads ? cfg->threads : 2),
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!h->d) {
        free(h);
        return pt_err_set(err, PT_ERR_IO, "listen",
                          "cannot listen on %s:%u (in use, or not an address of this machine)",
                          host, cfg->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : cfg->port;
    *out = h;
    return PT_OK;
badhost:
    free(h);
    return pt_err_set(err, PT_ERR_INVALID, "listen", "'%s' is not an IP address", host);
}

uint16_t pt_http_port(pt_http *h) { return h->port; }

void pt_http_stop(pt_http *h)
{
    if (!h) return;
    /* stop accepting, then let suspended writes come back from the writer */
    MHD_quiesce_daemon(h->d);
    for (int i = 0; i < 1000 && atomic_load(&h->pending) > 0; i++) usleep(10000);
    MHD_stop_daemon(h->d);
    free(h);
}

size_t pt_http_routes(pt_route_info *out, size_t cap)
{
    for (size_t i = 0; i < pt_route_count && i < cap; i++) {
        out[i].method = pt_route_table[i].method;
        out[i].path = pt_route_table[i].path;
        out[i].roles = pt_route_table[i].roles;
    }
    return pt_route_count;
}
