/*
 * pam_driver: a minimal PAM application for the end-to-end tests.
 *
 *   pam_driver SERVICE USER [--answers FILE] [--silent] [--repeat N]
 *              [--rhost HOST] [--no-conv] [--ops authenticate,setcred,acct_mgmt]
 *              [--confdir DIR] [--wait-for FILE] [--disallow-null]
 *              [--sigchld-ignore] [--mark]
 *   pam_driver --serve --confdir DIR
 *
 * --confdir uses pam_start_confdir (Linux-PAM >= 1.4) instead of pam_start,
 * so many drivers can run at once without pam_wrapper. --wait-for blocks
 * after pam_start until FILE exists (at most 60 s): a start line for
 * concurrency tests.
 *
 * --mark calls access("/pam_driver-mark/start") right before pam_start and
 * access("/pam_driver-mark/end") right after pam_end, so a syscall trace
 * (scripts/faultsweep.sh) can tell the login's calls from the driver's own.
 *
 * --serve is a long-running host (scripts/soak.sh): one process doing many
 * pam_start_confdir/pam_authenticate/pam_end cycles. It prints "ready PID",
 * then reads requests from stdin, one per line: SERVICE USER HEXANSWER
 * (one answer for the one prompt; "-" for none), and answers each with
 * "result SERVICE USER CODE" (CODE of pam_authenticate, or "start CODE"
 * when pam_start failed). It ends at end of input.
 *
 * Answers: one per prompt, one per line in FILE, hex-encoded so any bytes
 * can be sent. Special lines: NULLRESP (the conversation succeeds but
 * returns no response array), NULLSTR (response array with resp == NULL),
 * CONVERR (the conversation fails with PAM_CONV_ERR). Running out of
 * answers is a conversation error too.
 *
 * --sigchld-ignore sets SIGCHLD to SIG_IGN before pam_start, as some hosts
 * do (children are then reaped by the kernel; waitpid fails with ECHILD).
 *
 * Output on stdout, one event per line:
 *   prompt STYLE HEXMSG   | msg STYLE HEXMSG
 *   rc OP CODE            (OP: start, authenticate, setcred, acct_mgmt)
 *   env NAME=HEXVALUE     (the PAM environment after the last operation)
 *   threads BEFORE AFTER  | fds BEFORE AFTER
 *   children none|zombie|running  (waitpid(-1, WNOHANG) after pam_end)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char **answers;
static size_t n_answers, next_answer;

static void print_hex(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        printf("%02x", *p);
}

static int count_dir(const char *path) {
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static char *unhex(const char *line) {
    size_t len = strlen(line) / 2;
    char *out = calloc(len + 1, 1);
    for (size_t i = 0; out && i < len; i++) {
        unsigned int b;
        if (sscanf(line + 2 * i, "%2x", &b) != 1) {
            free(out);
            return NULL;
        }
        out[i] = (char)b;
    }
    return out;
}

static int conv(int num_msg, const struct pam_message **msg, struct pam_response **resp, void *appdata) {
    (void)appdata;
    struct pam_response *r = calloc((size_t)num_msg, sizeof *r);
    if (!r)
        return PAM_BUF_ERR;
    for (int i = 0; i < num_msg; i++) {
        int style = msg[i]->msg_style;
        int is_prompt = style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON;
        printf("%s %d ", is_prompt ? "prompt" : "msg", style);
        print_hex(msg[i]->msg);
        printf("\n");
        fflush(stdout);
        if (!is_prompt)
            continue;
        if (next_answer >= n_answers) {
            free(r);
            return PAM_CONV_ERR;
        }
        const char *a = answers[next_answer++];
        if (strcmp(a, "CONVERR") == 0) {
            free(r);
            return PAM_CONV_ERR;
        }
        if (strcmp(a, "NULLRESP") == 0) {
            free(r);
            *resp = NULL;
            return PAM_SUCCESS;
        }
        if (strcmp(a, "NULLSTR") == 0)
            continue;
        r[i].resp = unhex(a);
    }
    *resp = r;
    return PAM_SUCCESS;
}

static void load_answers(const char *file) {
    FILE *f = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    if (!f) {
        perror(file);
        exit(2);
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        answers = realloc(answers, (n_answers + 1) * sizeof *answers);
        answers[n_answers++] = strdup(line);
    }
    free(line);
    fclose(f);
}

static void free_answers(void) {
    for (size_t i = 0; i < n_answers; i++)
        free(answers[i]);
    free(answers);
    answers = NULL;
    n_answers = next_answer = 0;
}

/* The --serve loop: see the header. */
static int serve(const char *confdir) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    struct pam_conv pc = {conv, NULL};
    printf("ready %ld\n", (long)getpid());
    fflush(stdout);
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        char service[256], user[256], answer[4096];
        pam_handle_t *h = NULL;
        int rc;
        if (sscanf(line, "%255s %255s %4095s", service, user, answer) != 3) {
            printf("error bad request\n");
            fflush(stdout);
            continue;
        }
        free_answers();
        if (strcmp(answer, "-") != 0) {
            answers = malloc(sizeof *answers);
            if (answers) {
                answers[0] = strdup(answer);
                n_answers = 1;
            }
        }
        rc = pam_start_confdir(service, user, &pc, confdir, &h);
        if (rc != PAM_SUCCESS) {
            printf("result %s %s start %d\n", service, user, rc);
            fflush(stdout);
            continue;
        }
        rc = pam_authenticate(h, 0);
        pam_end(h, rc);
        printf("result %s %s %d\n", service, user, rc);
        fflush(stdout);
    }
    free(line);
    free_answers();
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--serve") && !strcmp(argv[2], "--confdir"))
        return serve(argv[3]);
    const char *ops = "authenticate", *rhost = NULL, *confdir = NULL, *wait_for = NULL;
    int flags = 0, repeat = 1, no_conv = 0, sigchld_ignore = 0, mark = 0;
    if (argc < 3) {
        fprintf(stderr, "usage: pam_driver SERVICE USER [options]\n");
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--answers") && i + 1 < argc)
            load_answers(argv[++i]);
        else if (!strcmp(argv[i], "--silent"))
            flags |= PAM_SILENT;
        else if (!strcmp(argv[i], "--disallow-null"))
            flags |= PAM_DISALLOW_NULL_AUTHTOK;
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rhost") && i + 1 < argc)
            rhost = argv[++i];
        else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
            ops = argv[++i];
        else if (!strcmp(argv[i], "--confdir") && i + 1 < argc)
            confdir = argv[++i];
        else if (!strcmp(argv[i], "--wait-for") && i + 1 < argc)
            wait_for = argv[++i];
        else if (!strcmp(argv[i], "--no-conv"))
            no_conv = 1;
        else if (!strcmp(argv[i], "--sigchld-ignore"))
            sigchld_ignore = 1;
        else if (!strcmp(argv[i], "--mark"))
            mark = 1;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    /* nss_wrapper opens its passwd file on the first lookup and keeps it:
       do one before the baseline so only the module's fds are compared. */
    (void)getpwnam(argv[2]);
    if (sigchld_ignore)
        signal(SIGCHLD, SIG_IGN);
    int threads_before = count_dir("/proc/self/task");
    int fds_before = count_dir("/proc/self/fd");
    struct pam_conv pc = {no_conv ? NULL : conv, NULL};
    pam_handle_t *h = NULL;
    if (mark)
        (void)access("/pam_driver-mark/start", F_OK);
    int rc = confdir ? pam_start_confdir(argv[1], argv[2], &pc, confdir, &h)
                     : pam_start(argv[1], argv[2], &pc, &h);
    printf("rc start %d\n", rc);
    fflush(stdout);
    if (rc != PAM_SUCCESS)
        return 0;
    for (int i = 0; wait_for && i < 6000 && access(wait_for, F_OK) != 0; i++)
        usleep(10000);
    if (rhost)
        pam_set_item(h, PAM_RHOST, rhost);
    for (int n = 0; n < repeat; n++) {
        char *list = strdup(ops), *save = NULL;
        for (char *op = strtok_r(list, ",", &save); op; op = strtok_r(NULL, ",", &save)) {
            if (!strcmp(op, "authenticate"))
                rc = pam_authenticate(h, flags);
            else if (!strcmp(op, "setcred"))
                rc = pam_setcred(h, flags | PAM_ESTABLISH_CRED);
            else if (!strcmp(op, "acct_mgmt"))
                rc = pam_acct_mgmt(h, flags);
            else
                rc = -1;
            printf("rc %s %d\n", op, rc);
            fflush(stdout);
        }
        free(list);
    }
    char **env = pam_getenvlist(h);
    for (char **e = env; e && *e; e++) {
        char *eq = strchr(*e, '=');
        if (eq) {
            *eq = 0;
            printf("env %s=", *e);
            print_hex(eq + 1);
            printf("\n");
        }
        free(*e);
    }
    free(env);
    pam_end(h, rc);
    if (mark)
        (void)access("/pam_driver-mark/end", F_OK);
    printf("threads %d %d\n", threads_before, count_dir("/proc/self/task"));
    printf("fds %d %d\n", fds_before, count_dir("/proc/self/fd"));
    {
        int st;
        pid_t w = waitpid(-1, &st, WNOHANG);
        printf("children %s\n", w > 0 ? "zombie" : w == 0 ? "running" : errno == ECHILD ? "none" : "error");
    }
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char path[300], target[300];
        ssize_t n;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        printf("fd %s %s\n", e->d_name, target);
    }
    if (d)
        closedir(d);
    return 0;
}
