/*
 * The benches' open-loop HTTP/1.1 load generator (bench/common/loadgen; TS side: native.ts,
 * summary.ts).
 *
 * Why C: wrk2 (the usual open-loop tool) is not packaged in Debian, and a Node generator pauses
 * for its own JIT and GC on the CPU it shares with the upstream (its own lateness reached a p99 of
 * 3-16 ms). This one does no allocation after start-up, sleeps on a timerfd until the next due
 * time, and costs a few microseconds per request.
 *
 * Request i is due at t0 + i / rate, whatever happened before (no coordinated omission): it goes
 * out on an idle keep-alive connection, on a new one (up to --connections), or waits in a FIFO
 * until one is free. Its *written* time is taken when its bytes go on a socket, after any wait for
 * a connection (queue and connect included), so written - due is the generator's whole delay.
 * A request without a complete answer --timeout-ms after its *due* time ends as ERR_TIMEOUT.
 * Times are CLOCK_MONOTONIC milliseconds from t0.
 *
 *   openloop --port P --path PATH --rate R --warmup-ms W --duration-ms D --connections C
 *            --timeout-ms T --out FILE [--start-epoch-ms E] [--class HEADERS]... [--pattern 0,1,..]
 *            [--capture NAME]...
 *
 * --class: extra request header lines of one class ("name: value", several separated by "\n");
 * --pattern: class of request i is pattern[i % length] (default: class 0, or none without
 * --class); --capture: a response header (up to MAX_CAPTURE) whose value (first CAPTURE_LEN - 1
 * bytes) is kept per request; --start-epoch-ms: t0 at that CLOCK_REALTIME epoch time (default:
 * 20 ms from now). SIGUSR1 stops the schedule: no request due after it is sent, the ones out
 * finish (or time out), and the file holds the requests due until then.
 *
 * Prints {"t0EpochMs":…} once the schedule is fixed, writes OUT_FILE (layout below), then prints
 * {"done":true}. OUT_FILE, little-endian: int32 magic 0x32474c4f ("OLG2"), int32 total,
 * int32 warmup, int32 captures, int32 capture_len, int32 0, float64 intervalMs, float64 t0EpochMs;
 * then total × float64 written (-1: never written), total × float64 done, total × int32 status
 * (0: no answer), total × int32 error (ERR_*), total × int32 class; then per capture,
 * total × capture_len bytes: [0] = 0 when the header was absent, else 1 + value length, [1..] value.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum { ERR_NONE = 0, ERR_CONNECT = 1, ERR_CLOSED = 2, ERR_TIMEOUT = 3, ERR_PARSE = 4 };
enum { IDLE, CONNECTING, BUSY, CLOSED };

#define BUF_SIZE 16384
#define MAX_CLASSES 16
#define MAX_PATTERN 1024
#define MAX_CAPTURE 8
#define CAPTURE_LEN 32
#define REQUEST_MAX 2048

typedef struct {
  int fd;
  int state;
  int request; /* index in flight (or waiting for the connect), -1 when none */
  double idle_since;
  size_t used; /* bytes buffered of the current response */
  int head_done;
  int status;
  long long body_left; /* content-length mode: bytes left; -1: chunked; -2: until close */
  int close_after;
  char buf[BUF_SIZE];
} Conn;

static double *written_ms, *done_ms;
static int32_t *status_of, *error_of, *class_of;
static uint8_t *captured; /* captures × total × CAPTURE_LEN */
static Conn *conns;
static int nconns, max_conns, *idle, nidle, *queue, qhead, qtail, total, planned, finished;
static struct sockaddr_in target;
static char request_text[MAX_CLASSES][REQUEST_MAX];
static size_t request_len[MAX_CLASSES];
static int nclasses, pattern[MAX_PATTERN], npattern;
static const char *capture_name[MAX_CAPTURE];
static size_t capture_name_len[MAX_CAPTURE];
static int ncapture;
static int epfd;
static struct timespec t0_ts;
static volatile sig_atomic_t stop_requested;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)(ts.tv_sec - t0_ts.tv_sec) * 1e3 + (double)(ts.tv_nsec - t0_ts.tv_nsec) / 1e6;
}

static void on_stop(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void complete(int index, int status, int error) {
  if (done_ms[index] >= 0) return;
  done_ms[index] = now_ms();
  status_of[index] = status;
  error_of[index] = error;
  finished++;
}

static void drop(Conn *c, int error) {
  if (c->request >= 0) complete(c->request, 0, error);
  c->request = -1;
  if (c->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  c->state = CLOSED;
}

static void send_on(Conn *c, int index) {
  c->request = index;
  c->used = 0;
  c->head_done = 0;
  c->state = BUSY;
  int k = class_of[index];
  written_ms[index] = now_ms();
  ssize_t n = send(c->fd, request_text[k], request_len[k], MSG_NOSIGNAL);
  /* A few hundred bytes into an empty socket buffer: a short write would be a broken socket. */
  if (n != (ssize_t)request_len[k]) {
    written_ms[index] = -1;
    drop(c, ERR_CLOSED);
  }
}

static Conn *open_conn(void) {
  Conn *c = NULL;
  for (int i = 0; i < nconns; i++) {
    if (conns[i].state == CLOSED) {
      c = &conns[i];
      break;
    }
  }
  if (c == NULL) {
    if (nconns >= max_conns) return NULL;
    c = &conns[nconns++];
  }
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  c->request = -1;
  if (c->fd < 0) {
    c->state = CLOSED;
    return c;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
  c->state = CONNECTING;
  if (connect(c->fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
    drop(c, ERR_CONNECT);
  }
  return c;
}

/* Hand out due requests: idle connections first, then new ones, else they wait in the queue. */
static void dispatch_queue(void) {
  while (qhead < qtail) {
    if (nidle > 0) {
      Conn *c = &conns[idle[--nidle]];
      send_on(c, queue[qhead++]);
      continue;
    }
    Conn *c = open_conn();
    if (c == NULL) return;
    if (c->state == CLOSED) {
      complete(queue[qhead++], 0, ERR_CONNECT);
      continue;
    }
    c->request = queue[qhead++];
  }
}

static void make_idle(Conn *c) {
  c->request = -1;
  c->state = IDLE;
  c->idle_since = now_ms();
  idle[nidle++] = (int)(c - conns);
}

/* Keep the value of a captured header line (`line` after the name and colon, up to `end`). */
static void capture(int which, int index, const char *value, const char *end) {
  while (value < end && (*value == ' ' || *value == '\t')) value++;
  while (end > value && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t')) end--;
  size_t len = (size_t)(end - value);
  if (len > CAPTURE_LEN - 1) len = CAPTURE_LEN - 1;
  uint8_t *slot = captured + ((size_t)which * (size_t)planned + (size_t)index) * CAPTURE_LEN;
  slot[0] = (uint8_t)(len + 1);
  memcpy(slot + 1, value, len);
}

/* Parse what is buffered: 1 when the response is complete, 0 when more is needed, -1 on error. */
static int parse(Conn *c) {
  if (!c->head_done) {
    char *end = memmem(c->buf, c->used, "\r\n\r\n", 4);
    if (end == NULL) return c->used >= BUF_SIZE ? -1 : 0;
    size_t head_len = (size_t)(end - c->buf) + 4;
    if (c->used < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0) return -1;
    c->status = atoi(c->buf + 9);
    c->body_left = -2;
    c->close_after = 0;
    int final = c->status >= 200;
    for (char *line = memchr(c->buf, '\n', head_len) + 1; line < end; line = memchr(line, '\n', (size_t)(end - line) + 2) + 1) {
      char *eol = memchr(line, '\n', (size_t)(end - line) + 2);
      if (strncasecmp(line, "content-length:", 15) == 0) c->body_left = atoll(line + 15);
      else if (strncasecmp(line, "transfer-encoding:", 18) == 0) c->body_left = -1;
      else if (strncasecmp(line, "connection:", 11) == 0 && strncasecmp(line + 11, " close", 6) == 0) c->close_after = 1;
      else if (final) {
        for (int k = 0; k < ncapture; k++) {
          size_t n = capture_name_len[k];
          if (strncasecmp(line, capture_name[k], n) == 0 && line[n] == ':') capture(k, c->request, line + n + 1, eol);
        }
      }
    }
    if (!final) { /* informational: the real head follows */
      memmove(c->buf, c->buf + head_len, c->used - head_len);
      c->used -= head_len;
      return parse(c);
    }
    c->head_done = 1;
    memmove(c->buf, c->buf + head_len, c->used - head_len);
    c->used -= head_len;
  }
  if (c->body_left >= 0) {
    size_t take = c->used < (size_t)c->body_left ? c->used : (size_t)c->body_left;
    c->body_left -= (long long)take;
    memmove(c->buf, c->buf + take, c->used - take);
    c->used -= take;
    return c->body_left == 0 ? 1 : 0;
  }
  if (c->body_left == -1) {
    /* Chunked: skip "size\r\n data\r\n" until the zero chunk and its empty trailer. */
    for (;;) {
      char *eol = memmem(c->buf, c->used, "\r\n", 2);
      if (eol == NULL) return 0;
      long size = strtol(c->buf, NULL, 16);
      size_t need = (size_t)(eol - c->buf) + 2 + (size_t)size + 2;
      if (c->used < need) return 0;
      memmove(c->buf, c->buf + need, c->used - need);
      c->used -= need;
      if (size == 0) return 1;
    }
  }
  c->used = 0; /* until close */
  return 0;
}

static void on_readable(Conn *c) {
  for (;;) {
    if (c->used >= BUF_SIZE) {
      drop(c, ERR_PARSE);
      return;
    }
    ssize_t n = recv(c->fd, c->buf + c->used, BUF_SIZE - c->used, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      drop(c, ERR_CLOSED);
      return;
    }
    if (n == 0) {
      if (c->request >= 0 && c->head_done && c->body_left == -2) {
        complete(c->request, c->status, ERR_NONE);
        c->request = -1;
      }
      drop(c, ERR_CLOSED);
      return;
    }
    if (c->request < 0) { /* nothing asked: an unsolicited answer */
      drop(c, ERR_PARSE);
      return;
    }
    c->used += (size_t)n;
    int r = parse(c);
    if (r < 0) {
      drop(c, ERR_PARSE);
      return;
    }
    if (r == 1) {
      complete(c->request, c->status, ERR_NONE);
      if (c->close_after) {
        c->request = -1;
        drop(c, ERR_CLOSED);
      } else {
        make_idle(c);
      }
      dispatch_queue();
      return;
    }
  }
}

static void arm(int tfd, double at_ms) {
  struct itimerspec its = {0};
  double s = at_ms / 1e3;
  long long sec = (long long)s;
  its.it_value.tv_sec = t0_ts.tv_sec + sec;
  its.it_value.tv_nsec = t0_ts.tv_nsec + (long)((s - (double)sec) * 1e9);
  if (its.it_value.tv_nsec >= 1000000000L) {
    its.it_value.tv_sec++;
    its.it_value.tv_nsec -= 1000000000L;
  }
  timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void usage(void) {
  fprintf(stderr,
          "usage: openloop --port P --path PATH --rate R --warmup-ms W --duration-ms D --connections C "
          "--timeout-ms T --out FILE [--start-epoch-ms E] [--class HEADERS]... [--pattern 0,1,...] "
          "[--capture NAME]...\n");
  exit(2);
}

/* Request text of one class: the request line, Host, User-Agent, then the class's lines. */
static void build_request(int k, const char *path, int port, const char *extra) {
  char *out = request_text[k];
  size_t n = (size_t)snprintf(out, REQUEST_MAX, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: homeostat-openloop\r\n",
                              path, port);
  for (const char *p = extra; p != NULL && *p != '\0';) {
    const char *nl = strchr(p, '\n');
    size_t len = nl == NULL ? strlen(p) : (size_t)(nl - p);
    if (len > 0 && p[len - 1] == '\r') len--;
    if (len > 0) {
      if (n + len + 4 >= REQUEST_MAX) {
        fprintf(stderr, "openloop: headers of class %d too long\n", k);
        exit(2);
      }
      memcpy(out + n, p, len);
      n += len;
      memcpy(out + n, "\r\n", 2);
      n += 2;
    }
    p = nl == NULL ? NULL : nl + 1;
  }
  memcpy(out + n, "\r\n", 2);
  request_len[k] = n + 2;
}

int main(int argc, char **argv) {
  int port = 0;
  const char *path = NULL, *out = NULL, *classes[MAX_CLASSES];
  double rate = 0, warmup_ms = 0, duration_ms = 0, timeout_ms = 0, start_epoch = 0;
  for (int i = 1; i < argc; i++) {
    const char *flag = argv[i];
    if (i + 1 >= argc) usage();
    const char *value = argv[++i];
    if (strcmp(flag, "--port") == 0) port = atoi(value);
    else if (strcmp(flag, "--path") == 0) path = value;
    else if (strcmp(flag, "--rate") == 0) rate = atof(value);
    else if (strcmp(flag, "--warmup-ms") == 0) warmup_ms = atof(value);
    else if (strcmp(flag, "--duration-ms") == 0) duration_ms = atof(value);
    else if (strcmp(flag, "--connections") == 0) max_conns = atoi(value);
    else if (strcmp(flag, "--timeout-ms") == 0) timeout_ms = atof(value);
    else if (strcmp(flag, "--out") == 0) out = value;
    else if (strcmp(flag, "--start-epoch-ms") == 0) start_epoch = atof(value);
    else if (strcmp(flag, "--class") == 0) {
      if (nclasses >= MAX_CLASSES) usage();
      classes[nclasses++] = value;
    } else if (strcmp(flag, "--capture") == 0) {
      if (ncapture >= MAX_CAPTURE) usage();
      capture_name_len[ncapture] = strlen(value);
      capture_name[ncapture++] = value;
    } else if (strcmp(flag, "--pattern") == 0) {
      for (const char *p = value; *p != '\0';) {
        if (npattern >= MAX_PATTERN) usage();
        char *next;
        long k = strtol(p, &next, 10);
        if (next == p) usage();
        pattern[npattern++] = (int)k;
        p = *next == ',' ? next + 1 : next;
      }
    } else usage();
  }
  if (port <= 0 || path == NULL || out == NULL || rate <= 0 || max_conns <= 0 || timeout_ms <= 0 ||
      duration_ms <= 0 || strlen(path) > 900) {
    fprintf(stderr, "openloop: bad arguments\n");
    usage();
  }
  if (nclasses == 0) classes[nclasses++] = "";
  if (npattern == 0) pattern[npattern++] = 0;
  for (int k = 0; k < npattern; k++) {
    if (pattern[k] < 0 || pattern[k] >= nclasses) {
      fprintf(stderr, "openloop: pattern names class %d of %d\n", pattern[k], nclasses);
      return 2;
    }
  }
  for (int k = 0; k < nclasses; k++) build_request(k, path, port, classes[k]);

  /* Gone with the bench: a generator left behind would load the next run. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  struct sigaction sa = {0};
  sa.sa_handler = on_stop; /* no SA_RESTART: epoll_wait returns EINTR */
  sigaction(SIGUSR1, &sa, NULL);

  double interval = 1e3 / rate;
  int warmup = (int)(warmup_ms / interval);
  total = planned = warmup + (int)(duration_ms / interval);
  /* Everything up front. calloc'd memory is mapped lazily: a long --duration-ms that SIGUSR1 cuts
     short costs only the pages the requests sent touched. */
  written_ms = calloc((size_t)total, sizeof *written_ms);
  done_ms = calloc((size_t)total, sizeof *done_ms);
  status_of = calloc((size_t)total, sizeof *status_of);
  error_of = calloc((size_t)total, sizeof *error_of);
  class_of = calloc((size_t)total, sizeof *class_of);
  captured = calloc((size_t)total * (size_t)(ncapture > 0 ? ncapture : 1), CAPTURE_LEN);
  conns = calloc((size_t)max_conns, sizeof *conns);
  idle = calloc((size_t)max_conns, sizeof *idle);
  queue = calloc((size_t)total, sizeof *queue);
  if (!written_ms || !done_ms || !status_of || !error_of || !class_of || !captured || !conns || !idle || !queue) {
    fprintf(stderr, "openloop: out of memory\n");
    return 1;
  }
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)port);
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  epfd = epoll_create1(0);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev);

  struct timespec real, mono;
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  double real_ms = (double)real.tv_sec * 1e3 + (double)real.tv_nsec / 1e6;
  /* t0: at the epoch time asked for, else a little later so the first due times are not behind. */
  double lead_ms = start_epoch > 0 ? start_epoch - real_ms : 20;
  long long lead_ns = (long long)(lead_ms * 1e6);
  long long t0_ns = (long long)mono.tv_sec * 1000000000LL + mono.tv_nsec + lead_ns;
  t0_ts.tv_sec = (time_t)(t0_ns / 1000000000LL);
  t0_ts.tv_nsec = (long)(t0_ns % 1000000000LL);
  double t0_epoch = real_ms + lead_ms;
  printf("{\"t0EpochMs\":%.3f}\n", t0_epoch);
  fflush(stdout);

  int next = 0;
  arm(tfd, 0);
  struct epoll_event events[256];
  double last_sweep = 0;
  while (finished < total) {
    int n = epoll_wait(epfd, events, 256, 100);
    if (stop_requested && next < total) {
      total = next; /* nothing more is sent; the file holds the requests due so far */
      struct itimerspec off = {0};
      timerfd_settime(tfd, 0, &off, NULL);
    }
    for (int i = 0; i < n; i++) {
      Conn *c = events[i].data.ptr;
      if (c == NULL) {
        uint64_t expirations;
        ssize_t ignored = read(tfd, &expirations, sizeof expirations);
        (void)ignored;
        continue;
      }
      if (c->state == CLOSED) continue;
      if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          drop(c, ERR_CONNECT);
          dispatch_queue();
          continue;
        }
        if (!(events[i].events & EPOLLOUT)) continue;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        if (c->request >= 0) send_on(c, c->request);
        else make_idle(c);
        dispatch_queue();
        continue;
      }
      if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        on_readable(c);
        if (c->state == CLOSED) {
          /* An idle connection the server closed: take it off the idle list. */
          for (int k = 0; k < nidle; k++) {
            if (idle[k] == (int)(c - conns)) {
              idle[k] = idle[--nidle];
              break;
            }
          }
          dispatch_queue();
        }
      }
    }
    double t = now_ms();
    if (t >= 0) {
      int due_now = (int)(t / interval) + 1;
      if (due_now > total) due_now = total;
      while (next < due_now) {
        written_ms[next] = done_ms[next] = -1;
        class_of[next] = pattern[next % npattern];
        queue[qtail++] = next++;
      }
      dispatch_queue();
    }
    if (next < total) arm(tfd, next * interval);
    if (t - last_sweep >= 10) {
      last_sweep = t;
      for (int k = 0; k < nconns; k++) {
        Conn *c = &conns[k];
        if (c->request >= 0 && c->state != CLOSED && t - c->request * interval > timeout_ms) drop(c, ERR_TIMEOUT);
      }
      /* The queue is in due order: the expired ones are at its head. */
      while (qhead < qtail && t - queue[qhead] * interval > timeout_ms) complete(queue[qhead++], 0, ERR_TIMEOUT);
      /* Close connections idle for 2 s, before a server's keep-alive timeout (Node: 5 s) closes
         them under a request. The idle list is a stack: the oldest are at its bottom. */
      int kept = 0;
      for (int k = 0; k < nidle; k++) {
        Conn *c = &conns[idle[k]];
        if (t - c->idle_since > 2000) {
          c->state = CLOSED;
          epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
          close(c->fd);
          c->fd = -1;
        } else {
          idle[kept++] = idle[k];
        }
      }
      nidle = kept;
    }
  }

  FILE *f = fopen(out, "wb");
  if (f == NULL) {
    perror("openloop: result file");
    return 1;
  }
  if (warmup > total) warmup = total;
  int32_t header[6] = {0x32474c4f, total, warmup, ncapture, CAPTURE_LEN, 0};
  fwrite(header, sizeof header[0], 6, f);
  fwrite(&interval, sizeof interval, 1, f);
  fwrite(&t0_epoch, sizeof t0_epoch, 1, f);
  fwrite(written_ms, sizeof *written_ms, (size_t)total, f);
  fwrite(done_ms, sizeof *done_ms, (size_t)total, f);
  fwrite(status_of, sizeof *status_of, (size_t)total, f);
  fwrite(error_of, sizeof *error_of, (size_t)total, f);
  fwrite(class_of, sizeof *class_of, (size_t)total, f);
  /* Captures were laid out for the planned total; write each one's first `total` slots. */
  for (int k = 0; k < ncapture; k++) fwrite(captured + (size_t)k * (size_t)planned * CAPTURE_LEN, CAPTURE_LEN, (size_t)total, f);
  if (fclose(f) != 0) {
    perror("openloop: result file");
    return 1;
  }
  for (int k = 0; k < nconns; k++)
    if (conns[k].fd >= 0 && conns[k].state != CLOSED) close(conns[k].fd);
  printf("{\"done\":true}\n");
  return 0;
}
