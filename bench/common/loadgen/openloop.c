/*
 * Open-loop HTTP/1.1 load generator for the proxy bench (the fixed-rate latency measurement).
 *
 * Why C: wrk2 (the usual open-loop tool) is not packaged in Debian, and the Node generator
 * (openLoop.ts) pauses for its own JIT and GC on the CPU it shares with the upstream: its own
 * lateness reached a p99 of 3-16 ms, above the 2 ms the bench is meant to resolve. This one does
 * no allocation after start-up, sleeps on a timerfd until the next due time, and costs a few
 * microseconds per request.
 *
 * Request i is due at t0 + i / rate, whatever happened before (no coordinated omission): it goes
 * out on an idle keep-alive connection, on a new one (up to --connections), or waits in a FIFO
 * until one is free. Times are CLOCK_MONOTONIC milliseconds from t0.
 *
 *   openloop PORT PATH RATE WARMUP_MS DURATION_MS CONNECTIONS TIMEOUT_MS OUT_FILE
 *
 * Prints {"t0EpochMs":…} once the schedule is fixed, writes OUT_FILE (layout below), then prints
 * {"done":true}. OUT_FILE: int32 total, int32 warmup, float64 intervalMs, then total × float64
 * sent, total × float64 done, total × int32 status (0: no answer), total × int32 error (ERR_*).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum { ERR_NONE = 0, ERR_CONNECT = 1, ERR_CLOSED = 2, ERR_TIMEOUT = 3, ERR_PARSE = 4 };
enum { IDLE, CONNECTING, BUSY, CLOSED };

#define BUF_SIZE 65536

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

static double *sent_ms, *done_ms;
static int32_t *status_of, *error_of;
static Conn *conns;
static int nconns, max_conns, *idle, nidle, *queue, qhead, qtail, total, finished;
static struct sockaddr_in target;
static char request_text[1024];
static size_t request_len;
static int epfd;
static struct timespec t0_ts;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)(ts.tv_sec - t0_ts.tv_sec) * 1e3 + (double)(ts.tv_nsec - t0_ts.tv_nsec) / 1e6;
}

static void complete(int index, int status, int error) {
  if (done_ms[index] >= 0) return;
  done_ms[index] = now_ms();
  if (sent_ms[index] < 0) sent_ms[index] = done_ms[index]; /* never sent: failed where it stood */
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
  sent_ms[index] = now_ms();
  ssize_t n = send(c->fd, request_text, request_len, MSG_NOSIGNAL);
  /* A few dozen bytes into an empty socket buffer: a short write would be a broken socket. */
  if (n != (ssize_t)request_len) drop(c, ERR_CLOSED);
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
    return NULL;
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
    for (char *line = memchr(c->buf, '\n', head_len) + 1; line < end; line = memchr(line, '\n', (size_t)(end - line) + 2) + 1) {
      if (strncasecmp(line, "content-length:", 15) == 0) c->body_left = atoll(line + 15);
      else if (strncasecmp(line, "transfer-encoding:", 18) == 0) c->body_left = -1;
      else if (strncasecmp(line, "connection:", 11) == 0 && strncasecmp(line + 11, " close", 6) == 0) c->close_after = 1;
    }
    if (c->status < 200) { /* informational: the real head follows */
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

int main(int argc, char **argv) {
  if (argc != 9) {
    fprintf(stderr, "usage: openloop PORT PATH RATE WARMUP_MS DURATION_MS CONNECTIONS TIMEOUT_MS OUT_FILE\n");
    return 2;
  }
  int port = atoi(argv[1]);
  const char *path = argv[2];
  double rate = atof(argv[3]), warmup_ms = atof(argv[4]), duration_ms = atof(argv[5]);
  max_conns = atoi(argv[6]);
  double timeout_ms = atof(argv[7]);
  const char *out = argv[8];
  if (port <= 0 || rate <= 0 || max_conns <= 0 || timeout_ms <= 0 || strlen(path) > 900) {
    fprintf(stderr, "openloop: bad arguments\n");
    return 2;
  }
  double interval = 1e3 / rate;
  int warmup = (int)(warmup_ms / interval);
  total = warmup + (int)(duration_ms / interval);
  sent_ms = malloc((size_t)total * sizeof *sent_ms);
  done_ms = malloc((size_t)total * sizeof *done_ms);
  status_of = calloc((size_t)total, sizeof *status_of);
  error_of = calloc((size_t)total, sizeof *error_of);
  conns = calloc((size_t)max_conns, sizeof *conns);
  idle = calloc((size_t)max_conns, sizeof *idle);
  queue = calloc((size_t)total, sizeof *queue);
  if (!sent_ms || !done_ms || !status_of || !error_of || !conns || !idle || !queue) {
    fprintf(stderr, "openloop: out of memory\n");
    return 1;
  }
  for (int i = 0; i < total; i++) sent_ms[i] = done_ms[i] = -1;
  request_len = (size_t)snprintf(request_text, sizeof request_text,
                                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: homeostat-openloop\r\n\r\n", path, port);
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)port);
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  epfd = epoll_create1(0);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev);

  clock_gettime(CLOCK_MONOTONIC, &t0_ts);
  t0_ts.tv_nsec += 20 * 1000000L; /* start a little later so the first due times are not behind */
  if (t0_ts.tv_nsec >= 1000000000L) {
    t0_ts.tv_sec++;
    t0_ts.tv_nsec -= 1000000000L;
  }
  struct timespec real, mono;
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  double t0_epoch = (double)real.tv_sec * 1e3 + (double)real.tv_nsec / 1e6 +
                    ((double)(t0_ts.tv_sec - mono.tv_sec) * 1e3 + (double)(t0_ts.tv_nsec - mono.tv_nsec) / 1e6);
  printf("{\"t0EpochMs\":%.3f}\n", t0_epoch);
  fflush(stdout);

  int next = 0;
  arm(tfd, 0);
  struct epoll_event events[256];
  double last_sweep = 0;
  while (finished < total) {
    int n = epoll_wait(epfd, events, 256, 100);
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
    int due_now = (int)(t / interval) + 1;
    if (due_now > total) due_now = total;
    while (next < due_now) queue[qtail++] = next++;
    dispatch_queue();
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
  int32_t header[2] = {total, warmup};
  fwrite(header, sizeof header[0], 2, f);
  fwrite(&interval, sizeof interval, 1, f);
  fwrite(sent_ms, sizeof *sent_ms, (size_t)total, f);
  fwrite(done_ms, sizeof *done_ms, (size_t)total, f);
  fwrite(status_of, sizeof *status_of, (size_t)total, f);
  fwrite(error_of, sizeof *error_of, (size_t)total, f);
  fclose(f);
  for (int k = 0; k < nconns; k++)
    if (conns[k].fd >= 0 && conns[k].state != CLOSED) close(conns[k].fd);
  printf("{\"done\":true}\n");
  return 0;
}
