/* Unit tests for the witness helpers (service/witness.c): what a log line
 * may say about a URL, address checks, and the e-mail message. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "service/witness.h"

#define ROOT "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
static const char NOTE[] = "patto/demo\n42\n" ROOT "\n\n"
                           "\xE2\x80\x94 patto AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";

Test(witness, url_for_log_drops_credentials_path_and_query)
{
    char out[256];
    cr_assert_str_eq(pt_witness_url_for_log("https://u:secret@hooks.example.com/t/SECRET?k=v",
                                            out, sizeof out),
                     "https://hooks.example.com");
    cr_assert_str_eq(pt_witness_url_for_log("smtp://me:pw@127.0.0.1:2525", out, sizeof out),
                     "smtp://127.0.0.1:2525");
    cr_assert_str_eq(pt_witness_url_for_log("http://[::1]:8080/x", out, sizeof out),
                     "http://[::1]:8080");
    cr_assert_str_eq(pt_witness_url_for_log("not a url", out, sizeof out), "(invalid url)");
    cr_assert_str_eq(pt_witness_url_for_log(NULL, out, sizeof out), "(invalid url)");
}

Test(witness, addresses)
{
    cr_assert_eq(pt_witness_check_addresses("dpo@example.com", 0), 0);
    cr_assert_eq(pt_witness_check_addresses("dpo@example.com, audit@example.org", 1), 0);
    cr_assert_eq(pt_witness_check_addresses("dpo@example.com, audit@example.org", 0), -1);
    cr_assert_eq(pt_witness_check_addresses("", 1), -1);
    cr_assert_eq(pt_witness_check_addresses("dpo", 1), -1);
    cr_assert_eq(pt_witness_check_addresses("@example.com", 1), -1);
    cr_assert_eq(pt_witness_check_addresses("dpo@", 1), -1);
    cr_assert_eq(pt_witness_check_addresses("a@b@c", 1), -1);
    cr_assert_eq(pt_witness_check_addresses("dpo@example.com,", 1), -1);
    cr_assert_eq(pt_witness_check_addresses("dpo@example.com\r\nBcc: x@y", 1), -1);
    cr_assert_eq(pt_witness_check_addresses("<dpo@example.com>", 1), -1);
}

Test(witness, mail_message)
{
    char *m = pt_witness_mail_format("patto@localhost", "dpo@example.com", NOTE, 0);
    cr_assert_not_null(m);
    cr_assert(strncmp(m, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n", 39) == 0, "%s", m);
    cr_assert_not_null(strstr(m, "\r\nFrom: patto@localhost\r\n"));
    cr_assert_not_null(strstr(m, "\r\nTo: dpo@example.com\r\n"));
    cr_assert_not_null(strstr(m, "\r\nSubject: patto checkpoint patto/demo, tree size 42\r\n"));
    cr_assert_not_null(strstr(m, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
    /* the body is the note, line by line, with CRLF line ends */
    const char *body = strstr(m, "\r\n\r\n");
    cr_assert_not_null(body);
    body += 4;
    char want[sizeof NOTE * 2], *w = want;
    for (const char *p = NOTE; *p; p++) {
        if (*p == '\n') *w++ = '\r';
        *w++ = *p;
    }
    *w = '\0';
    cr_assert_str_eq(body, want);
    free(m);
}

Test(witness, mail_subject_non_ascii_is_encoded)
{
    static const char note[] = "caf\xC3\xA9.example/demo\n1\n" ROOT "\n\n\xE2\x80\x94 x y\n";
    char *m = pt_witness_mail_format("a@b.c", "d@e.f", note, 0);
    cr_assert_not_null(m);
    cr_assert_not_null(strstr(m, "\r\nSubject: =?UTF-8?B?"), "%s", m);
    free(m);
}

Test(witness, mail_refuses_what_is_not_a_checkpoint)
{
    cr_assert_null(pt_witness_mail_format("a@b.c", "d@e.f", "hello\n\nworld\n", 0));
    cr_assert_null(pt_witness_mail_format("a@b.c", "d@e.f", "no blank line\n", 0));
}
