/* test_concurrency.c - black-box: many clients writing at once, each on a
 * kept-alive connection. Every acknowledged event (201) must be in the
 * ledger exactly once, in the order its client saw it acknowledged, and
 * nothing unacknowledged may appear. Threads only collect; the
 * assertions run on the test's main thread. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ADMIN bb_key("admin")
#define NTHREADS 64
#define PER_THREAD 50

TestSuite(concurrency, .init = bb_suite_init, .fini = bb_suite_fini, .timeout = 120);

int main(int argc, char **argv)
{
    return bb_main(argc, argv);
}

static const char *const PURPOSES[] = {"marketing", "profiling", "cookies.analytics"};

typedef struct worker {
    pthread_t th;
    pthread_barrier_t *start;
    const char *key;
    char subject[40];
    /* results */
    long status[PER_THREAD];
    char event[PER_THREAD][40];
    char error[256];
    long connects;
    int ok; /* number of 201s */
} worker;

/* The i-th event of a worker: purposes round-robin, grant then withdraw. */
static const char *purpose_of(int i)
{
    return PURPOSES[i % 3];
}
static const char *action_of(int i)
{
    return (i / 3) % 2 ? "withdraw" : "grant";
}

static void *writer(void *arg)
{
    worker *w = arg;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(w->error, sizeof w->error, "curl_easy_init failed");
        return NULL;
    }
    pthread_barrier_wait(w->start);
    for (int i = 0; i < PER_THREAD; i++) {
        char body[512];
        const char *act = action_of(i);
        snprintf(body, sizeof body,
                 "{\"subject\":\"%s\",\"purpose\":\"%s\",\"action\":\"%s\","
                 "\"collected_via\":\"api\"%s,\"evidence\":{\"thread_event\":%d}}",
                 w->subject, purpose_of(i), act,
                 strcmp(act, "grant") == 0
                     ? ",\"notice\":{\"notice\":\"privacy\",\"version\":\"1\"}"
                     : "",
                 i);
        bb_req q = {.method = "POST",
                    .path = "/v1/consents",
                    .key = w->key,
                    .content_type = "application/json",
                    .body = body,
                    .body_len = strlen(body),
                    .has_body = true};
        bb_resp r;
        if (bb_request(h, &q, &r) != 0) {
            w->status[i] = -1;
            if (!w->error[0])
                snprintf(w->error, sizeof w->error, "event %d: %.200s", i, r.curl_error);
            continue;
        }
        w->status[i] = r.status;
        w->connects += r.connects;
        const json_t *e = json_object_get(r.json, "event");
        if (r.status == 201 && json_is_string(e)) {
            snprintf(w->event[i], sizeof w->event[i], "%s", json_string_value(e));
            w->ok++;
        } else if (!w->error[0]) {
            snprintf(w->error, sizeof w->error, "event %d: %ld %.200s", i, r.status,
                     r.body ? r.body : "");
        }
        bb_resp_clear(&r);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static json_t *full_history(const char *subject)
{
    bb_resp *r = bb_get(bb_fmt("/v1/subjects/%s/consents/history?limit=1000", subject), ADMIN);
    bb_assert_json(r, 200);
    cr_assert(bb_jnull(r->json, "next_cursor"), "more than 1000 events for %s", subject);
    return bb_jarr(r->json, "events");
}

Test(concurrency, every_acknowledged_event_is_in_the_ledger_exactly_once)
{
    static worker w[NTHREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    for (int t = 0; t < NTHREADS; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].start = &start;
        w[t].key = t % 2 ? bb_key("operator") : ADMIN;
        snprintf(w[t].subject, sizeof w[t].subject, "%s", bb_create_subject(ADMIN, NULL));
    }
    for (int t = 0; t < NTHREADS; t++)
        cr_assert_eq(pthread_create(&w[t].th, NULL, writer, &w[t]), 0);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(w[t].th, NULL);
    pthread_barrier_destroy(&start);

    int total_ok = 0;
    long total_connects = 0;
    for (int t = 0; t < NTHREADS; t++) {
        total_ok += w[t].ok;
        total_connects += w[t].connects;
    }
    for (int t = 0; t < NTHREADS; t++)
        cr_assert_eq(w[t].ok, PER_THREAD, "thread %d: %d of %d acknowledged; first error: %s", t,
                     w[t].ok, PER_THREAD, w[t].error);
    cr_assert_eq(total_ok, NTHREADS * PER_THREAD);
    /* keep-alive: each client used its connection again and again */
    for (int t = 0; t < NTHREADS; t++)
        cr_assert_leq(w[t].connects, 2, "thread %d opened %ld connections for %d requests", t,
                      w[t].connects, PER_THREAD);

    size_t total_events = 0;
    for (int t = 0; t < NTHREADS; t++) {
        json_t *evs = full_history(w[t].subject);
        size_t n = json_array_size(evs);
        total_events += n;
        /* nothing unacknowledged, nothing missing */
        cr_assert_eq(n, (size_t)w[t].ok, "subject %s: %zu events in history, %d acknowledged",
                     w[t].subject, n, w[t].ok);
        json_int_t last_seq = -1;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(evs, i);
            const char *id = bb_jstr(e, "event");
            /* exactly once */
            int seen = 0;
            for (int k = 0; k < PER_THREAD; k++)
                seen += strcmp(w[t].event[k], id) == 0;
            cr_assert_eq(seen, 1, "event %s of %s matches %d acknowledgements", id, w[t].subject,
                         seen);
            for (size_t j = 0; j < i; j++)
                cr_assert_str_neq(bb_jstr(json_array_get(evs, j), "event"), id,
                                  "event %s twice in the history of %s", id, w[t].subject);
            /* in the order the client saw them acknowledged */
            cr_assert_str_eq(id, w[t].event[i], "subject %s: history[%zu] is %s, expected %s",
                             w[t].subject, i, id, w[t].event[i]);
            cr_assert_str_eq(bb_jstr(e, "subject"), w[t].subject);
            cr_assert_str_eq(bb_jstr(e, "purpose"), purpose_of((int)i));
            cr_assert_str_eq(bb_jstr(e, "action"), action_of((int)i));
            cr_assert_eq(bb_jint(bb_jobj(e, "evidence"), "thread_event"), (json_int_t)i,
                         "evidence sealed under another event: %s", w[t].subject);
            json_int_t seq = bb_jint(e, "seq");
            cr_assert_gt(seq, last_seq, "seq not increasing in %s", w[t].subject);
            last_seq = seq;
        }
        /* the state is the last event per purpose */
        for (int p = 0; p < 3; p++) {
            int last = -1;
            for (int i = 0; i < PER_THREAD; i++)
                if (i % 3 == p) last = i;
            bb_resp *c = bb_check(ADMIN, w[t].subject, PURPOSES[p], NULL, NULL);
            bb_assert_json(c, 200);
            bool granted = strcmp(action_of(last), "grant") == 0;
            cr_assert_eq(bb_jbool(c->json, "allowed"), granted, "%s %s: %s", w[t].subject,
                         PURPOSES[p], c->body);
            cr_assert_str_eq(bb_jstr(c->json, "event"), w[t].event[last], "%s %s", w[t].subject,
                             PURPOSES[p]);
        }
    }
    cr_assert_eq(total_events, (size_t)(NTHREADS * PER_THREAD));
    cr_log_info("%d events from %d threads over %ld connections", total_ok, NTHREADS,
                total_connects);
}

/* ------------------------------------------------------------ read your writes */

typedef struct rw {
    pthread_t th;
    pthread_barrier_t *start;
    char subject[40];
    char error[320];
    int rounds;
} rw;

static long post(CURL *h, const char *body, bb_resp *r)
{
    bb_req q = {.method = "POST",
                .path = "/v1/consents",
                .key = bb_key("operator"),
                .content_type = "application/json",
                .body = body,
                .body_len = strlen(body),
                .has_body = true};
    return bb_request(h, &q, r) == 0 ? r->status : -1;
}

static int check_says(CURL *h, const char *subject, const char *want_reason, char *err, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/check?subject=%s&purpose=marketing&channel=sms", subject);
    bb_req q = {.method = "GET", .path = path, .key = bb_key("marketing")};
    bb_resp r;
    if (bb_request(h, &q, &r) != 0) {
        snprintf(err, cap, "check: %.200s", r.curl_error);
        return -1;
    }
    const json_t *reason = json_object_get(r.json, "reason");
    bool ok =
        r.status == 200 &&
        (want_reason ? json_is_string(reason) && strcmp(json_string_value(reason), want_reason) == 0
                     : json_is_true(json_object_get(r.json, "allowed")));
    if (!ok)
        snprintf(err, cap, "check wanted %s: %ld %.200s", want_reason ? want_reason : "allowed",
                 r.status, r.body ? r.body : "");
    bb_resp_clear(&r);
    return ok ? 0 : -1;
}

static void *reader_writer(void *arg)
{
    rw *x = arg;
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    char grant[400], withdraw[300];
    snprintf(grant, sizeof grant,
             "{\"subject\":\"%s\",\"purpose\":\"marketing\",\"action\":\"grant\","
             "\"collected_via\":\"phone\",\"channels\":[\"sms\"],"
             "\"notice\":{\"notice\":\"privacy\",\"version\":\"1\"}}",
             x->subject);
    snprintf(withdraw, sizeof withdraw,
             "{\"subject\":\"%s\",\"purpose\":\"marketing\",\"action\":\"withdraw\","
             "\"collected_via\":\"phone\"}",
             x->subject);
    pthread_barrier_wait(x->start);
    for (int i = 0; i < 20 && !x->error[0]; i++) {
        bb_resp r;
        long st = post(h, grant, &r);
        bb_resp_clear(&r);
        if (st != 201) {
            snprintf(x->error, sizeof x->error, "round %d grant: %ld", i, st);
            break;
        }
        if (check_says(h, x->subject, NULL, x->error, sizeof x->error) != 0) break;
        st = post(h, withdraw, &r);
        bb_resp_clear(&r);
        if (st != 201) {
            snprintf(x->error, sizeof x->error, "round %d withdraw: %ld", i, st);
            break;
        }
        if (check_says(h, x->subject, "withdrawn", x->error, sizeof x->error) != 0) break;
        x->rounds++;
    }
    curl_easy_cleanup(h);
    return NULL;
}

Test(concurrency, each_client_reads_its_own_writes_under_load)
{
    enum { N = 32 };
    static rw x[N];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    for (int t = 0; t < N; t++) {
        memset(&x[t], 0, sizeof x[t]);
        x[t].start = &start;
        snprintf(x[t].subject, sizeof x[t].subject, "%s", bb_create_subject(ADMIN, NULL));
    }
    for (int t = 0; t < N; t++)
        cr_assert_eq(pthread_create(&x[t].th, NULL, reader_writer, &x[t]), 0);
    for (int t = 0; t < N; t++)
        pthread_join(x[t].th, NULL);
    pthread_barrier_destroy(&start);
    for (int t = 0; t < N; t++) {
        cr_assert_eq(x[t].rounds, 20, "client %d (%s) stopped after %d rounds: %s", t, x[t].subject,
                     x[t].rounds, x[t].error);
        cr_assert_eq(bb_history_len(ADMIN, x[t].subject), 40);
    }
}

/* ------------------------------------------------------------ one new person, many clients */

typedef struct same {
    pthread_t th;
    pthread_barrier_t *start;
    const char *body;
    long status;
    char subject[40];
    char error[256];
} same;

static void *same_identifier(void *arg)
{
    same *s = arg;
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    pthread_barrier_wait(s->start);
    bb_resp r;
    s->status = post(h, s->body, &r);
    const json_t *sub = json_object_get(r.json, "subject");
    if (json_is_string(sub)) snprintf(s->subject, sizeof s->subject, "%s", json_string_value(sub));
    if (s->status != 201)
        snprintf(s->error, sizeof s->error, "%ld %.200s", s->status, r.body ? r.body : "");
    bb_resp_clear(&r);
    curl_easy_cleanup(h);
    return NULL;
}

Test(concurrency, a_new_identifier_from_many_clients_is_one_subject)
{
    enum { N = 32 };
    static same s[N];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    const char *email = bb_fmt("%s@race.example.com", bb_unique("same"));
    const char *body = bb_fmt("{\"identifier\":{\"type\":\"email\",\"value\":\"%s\"},"
                              "\"purpose\":\"profiling\",\"action\":\"deny\","
                              "\"collected_via\":\"web_form\"}",
                              email);
    for (int t = 0; t < N; t++) {
        memset(&s[t], 0, sizeof s[t]);
        s[t].start = &start;
        s[t].body = body;
    }
    for (int t = 0; t < N; t++)
        cr_assert_eq(pthread_create(&s[t].th, NULL, same_identifier, &s[t]), 0);
    for (int t = 0; t < N; t++)
        pthread_join(s[t].th, NULL);
    pthread_barrier_destroy(&start);
    for (int t = 0; t < N; t++) {
        cr_assert_eq(s[t].status, 201, "client %d: %s", t, s[t].error);
        cr_assert_str_eq(s[t].subject, s[0].subject, "client %d got another subject", t);
    }
    bb_resp *l = bb_get(
        bb_fmt("/v1/subjects?identifier_type=email&identifier=%s", bb_urlencode(email)), ADMIN);
    bb_assert_json(l, 200);
    cr_assert_str_eq(bb_jstr(l->json, "subject"), s[0].subject);
    cr_assert_eq(bb_history_len(ADMIN, s[0].subject), N);
}
