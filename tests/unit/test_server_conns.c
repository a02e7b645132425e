/* server/conns.c: which connection a cap closes (the oldest idle one, never
 * one with a request in progress), the header deadline from connect or
 * from the previous answer, and the body rate judged window by window.
 * Sockets are socketpairs: a closed one reads EOF on the other end. */
#include "testutil.h"

#include "server/conns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static bs_conns_limits lim;

static void limits(void *ud, bs_conns_limits *out)
{
    (void)ud;
    *out = lim;
}

typedef struct {
    bs_conn c;
    int peer;
} pair;

static void open_pair(bs_conns *cs, pair *p, const char *ip, int64_t now)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    memset(&p->c, 0, sizeof p->c);
    p->c.fd = sv[0];
    p->peer = sv[1];
    fcntl(p->peer, F_SETFL, O_NONBLOCK);
    snprintf(p->c.ip, sizeof p->c.ip, "%s", ip);
    bs_conns_add(cs, &p->c, now);
}

/* 1 when the registry shut p down (its peer reads EOF). */
static int is_shut(pair *p)
{
    char b;
    ssize_t n = read(p->peer, &b, 1);
    return n == 0 || (n < 0 && errno != EAGAIN);
}

static void close_pair(bs_conns *cs, pair *p)
{
    bs_conns_remove(cs, &p->c);
    close(p->c.fd);
    close(p->peer);
}

static void reset_limits(void)
{
    lim = (bs_conns_limits){.max_total = 100,
                            .max_per_ip = 100,
                            .header_ms = 10000,
                            .min_body_rate = 0,
                            .body_window_ms = 10000};
}

static void test_conns_per_ip_cap_closes_oldest_idle(void **state)
{
    (void)state;
    reset_limits();
    lim.max_per_ip = 3;
    bs_conns *cs = bs_conns_new(limits, NULL);
    pair p[6];
    open_pair(cs, &p[0], "10.0.0.1", 0);
    open_pair(cs, &p[1], "10.0.0.1", 1);
    open_pair(cs, &p[2], "10.0.0.2", 2);                           /* another IP: never touched */
    assert_int_equal(bs_conns_begin(cs, &p[0].c, 3), BS_CONNS_OK); /* busy */
    open_pair(cs, &p[3], "10.0.0.1", 4);
    open_pair(cs, &p[4], "10.0.0.1", 5); /* 4th of 10.0.0.1: p[1] is the oldest idle */
    assert_false(is_shut(&p[0]));
    assert_true(is_shut(&p[1]));
    assert_false(is_shut(&p[2]));
    assert_false(is_shut(&p[3]));
    /* All busy: the newcomer holds no room, and says so at its request. */
    assert_int_equal(bs_conns_begin(cs, &p[3].c, 6), BS_CONNS_OK);
    assert_int_equal(bs_conns_begin(cs, &p[4].c, 6), BS_CONNS_OK);
    open_pair(cs, &p[5], "10.0.0.1", 7);
    assert_int_equal(bs_conns_begin(cs, &p[5].c, 8), BS_CONNS_OVER_IP);
    assert_false(is_shut(&p[0]) || is_shut(&p[3]) || is_shut(&p[4]));
    /* Exempted (an admin key), it stays; its next request is not checked. */
    bs_conns_admit(cs, &p[5].c);
    bs_conns_end(cs, &p[5].c, 9);
    assert_int_equal(bs_conns_begin(cs, &p[5].c, 10), BS_CONNS_OK);
    /* A trusted proxy has no per-IP cap. */
    pair t[5];
    memset(t, 0, sizeof t);
    for (int i = 0; i < 5; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        t[i].c.fd = sv[0];
        t[i].peer = sv[1];
        t[i].c.trusted = 1;
        fcntl(t[i].peer, F_SETFL, O_NONBLOCK);
        snprintf(t[i].c.ip, sizeof t[i].c.ip, "10.9.9.9");
        bs_conns_add(cs, &t[i].c, 20);
    }
    for (int i = 0; i < 5; i++) assert_false(is_shut(&t[i]));
    bs_conns_stats st;
    bs_conns_stats_get(cs, &st);
    assert_int_equal(st.evicted_idle, 1);
    assert_int_equal(st.open, 10); /* 6 opened of 10.0.0.x less the evicted, 5 trusted */
    for (int i = 0; i < 6; i++) close_pair(cs, &p[i]);
    for (int i = 0; i < 5; i++) close_pair(cs, &t[i]);
    bs_conns_stats_get(cs, &st);
    assert_int_equal(st.open, 0);
    bs_conns_free(cs);
}

static void test_conns_global_cap(void **state)
{
    (void)state;
    reset_limits();
    lim.max_total = 2;
    bs_conns *cs = bs_conns_new(limits, NULL);
    pair p[4];
    open_pair(cs, &p[0], "10.0.0.1", 0);
    open_pair(cs, &p[1], "10.0.0.2", 1);
    open_pair(cs, &p[2], "10.0.0.3", 2); /* p[0], idle, makes room */
    assert_true(is_shut(&p[0]));
    assert_int_equal(bs_conns_begin(cs, &p[1].c, 3), BS_CONNS_OK);
    assert_int_equal(bs_conns_begin(cs, &p[2].c, 3), BS_CONNS_OK);
    open_pair(cs, &p[3], "10.0.0.4", 4);
    assert_int_equal(bs_conns_begin(cs, &p[3].c, 5), BS_CONNS_OVER_TOTAL);
    assert_false(is_shut(&p[1]) || is_shut(&p[2]));
    for (int i = 0; i < 4; i++) close_pair(cs, &p[i]);
    bs_conns_free(cs);
}

static void test_conns_header_deadline(void **state)
{
    (void)state;
    reset_limits();
    lim.header_ms = 1000;
    bs_conns *cs = bs_conns_new(limits, NULL);
    pair a, b;
    open_pair(cs, &a, "10.0.0.1", 0);
    open_pair(cs, &b, "10.0.0.1", 0);
    assert_int_equal(bs_conns_begin(cs, &b.c, 500), BS_CONNS_OK); /* headers in time */
    assert_int_equal(bs_conns_sweep(cs, &lim, 999), 0);
    assert_int_equal(bs_conns_sweep(cs, &lim, 1000), 1);
    assert_true(is_shut(&a));
    /* A busy one is never timed out; from its answer the deadline runs again. */
    assert_int_equal(bs_conns_sweep(cs, &lim, 5000), 0);
    bs_conns_end(cs, &b.c, 5000);
    assert_int_equal(bs_conns_sweep(cs, &lim, 5999), 0);
    assert_false(is_shut(&b));
    assert_int_equal(bs_conns_sweep(cs, &lim, 6000), 1);
    assert_true(is_shut(&b));
    bs_conns_stats st;
    bs_conns_stats_get(cs, &st);
    assert_int_equal(st.header_timeouts, 2);
    close_pair(cs, &a);
    close_pair(cs, &b);
    bs_conns_free(cs);
}

static void test_conns_body_rate_by_window(void **state)
{
    (void)state;
    reset_limits();
    lim.min_body_rate = 100;
    lim.body_window_ms = 1000;
    bs_conns *cs = bs_conns_new(limits, NULL);
    pair a;
    open_pair(cs, &a, "10.0.0.1", 0);
    assert_int_equal(bs_conns_begin(cs, &a.c, 0), BS_CONNS_OK);
    bs_conns_body(cs, &a.c, 1, 0);
    bs_conns_body_bytes(&a.c, 10000); /* a fast first window */
    assert_int_equal(bs_conns_sweep(cs, &lim, 999), 0);
    assert_int_equal(bs_conns_sweep(cs, &lim, 1000), 0);
    bs_conns_body_bytes(&a.c, 100); /* exactly the rate */
    assert_int_equal(bs_conns_sweep(cs, &lim, 2000), 0);
    bs_conns_body_bytes(&a.c, 99); /* the fast start buys nothing */
    assert_int_equal(bs_conns_sweep(cs, &lim, 3000), 1);
    assert_true(is_shut(&a));
    /* Once the body is in, the rate no longer applies. */
    pair b;
    open_pair(cs, &b, "10.0.0.1", 0);
    assert_int_equal(bs_conns_begin(cs, &b.c, 0), BS_CONNS_OK);
    bs_conns_body(cs, &b.c, 1, 0);
    bs_conns_body(cs, &b.c, 0, 10);
    assert_int_equal(bs_conns_sweep(cs, &lim, 5000), 0);
    assert_false(is_shut(&b));
    close_pair(cs, &a);
    close_pair(cs, &b);
    bs_conns_free(cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conns_per_ip_cap_closes_oldest_idle),
        cmocka_unit_test(test_conns_global_cap),
        cmocka_unit_test(test_conns_header_deadline),
        cmocka_unit_test(test_conns_body_rate_by_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
