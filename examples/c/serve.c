/*
 * serve.c — a small inference service: one model file, loaded once, answered over a Unix
 * domain socket by a fixed pool of worker threads that all share the one reparo_model
 * (reparo_infer is thread-safe on a shared model).
 *
 *   serve MODEL.safetensors SOCKET [--threads N] [--max-requests R] [--lifetime SECONDS]
 *                                  [--idle-timeout SECONDS] [--request-timeout SECONDS]
 *
 *   --threads N            worker threads (default 4, 1 ... 64)
 *   --max-requests R       stop after answering R requests (default 0 = no limit)
 *   --lifetime S           stop after S seconds (default 0 = no limit)
 *   --idle-timeout S       close a connection that sends nothing for S seconds (default 30)
 *   --request-timeout S    the rest of a request, once it has started, and each reply must
 *                          get through within S seconds (default 5)
 *
 * Protocol. Integers are uint32 and floats float32, all little-endian. A connection carries
 * any number of requests, one at a time:
 *
 *   request    uint32 batch          1 ... 256
 *              uint32 payload bytes  must equal batch × C × H × W × 4 for this model
 *              payload               batch × C × H × W floats, NCHW
 *   response   uint32 status         0 OK, 1 BAD_REQUEST, 2 INFER_FAILED, 3 SHUTTING_DOWN
 *              uint32 payload bytes
 *              payload               OK: batch × classes logits; otherwise a UTF-8 message
 *
 * After BAD_REQUEST (batch out of range, a payload size that does not match the model, a
 * request cut short or too slow) and SHUTTING_DOWN the server closes the connection, since it
 * can no longer tell where the next request would start; after INFER_FAILED it keeps it.
 *
 * A worker serves one connection at a time, so at most N clients are served at once; further
 * connections wait in the listen backlog until a worker is free (or the server stops).
 * SIGINT or SIGTERM, the request limit and the lifetime all stop the server the same way: the
 * workers finish the request they are answering, close their connections and exit, and the
 * socket file is removed. Exit status 0 after such a stop, 1 if the server could not start.
 */
#define _POSIX_C_SOURCE 200809L

#include <reparo.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { MAX_BATCH = 256, MAX_THREADS = 64, HEADER_BYTES = 8, POLL_MS = 100 };
enum { STATUS_OK = 0, STATUS_BAD_REQUEST = 1, STATUS_INFER_FAILED = 2, STATUS_SHUTTING_DOWN = 3 };

/* Largest request payload a worker buffers; bounds memory for models with large inputs. */
static const size_t MAX_PAYLOAD_BYTES = 64u << 20;

typedef struct {
    reparo_model *model;
    int32_t channels, height, width, classes;
    size_t sample;   /* floats per image */
    int max_batch;   /* MAX_BATCH, or less when a large input would exceed MAX_PAYLOAD_BYTES */
    int listen_fd;
    double idle_timeout, request_timeout;
    long long max_requests;

    pthread_mutex_t lock; /* guards everything below */
    int stopping;
    const char *stop_reason;
    long long answered, ok, bad_requests, infer_failures, refused, connections;
} server;

typedef struct {
    server *server;
    pthread_t thread;
    float *images;           /* max_batch × sample */
    unsigned char *response; /* header + max_batch × classes floats */
} worker;

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* --- shared state ------------------------------------------------------------------------- */

static int is_stopping(server *s) {
    int stopping;
    pthread_mutex_lock(&s->lock);
    stopping = s->stopping;
    pthread_mutex_unlock(&s->lock);
    return stopping;
}

static void request_stop(server *s, const char *reason) {
    pthread_mutex_lock(&s->lock);
    if (!s->stopping) {
        s->stopping = 1;
        s->stop_reason = reason;
    }
    pthread_mutex_unlock(&s->lock);
}

/* Takes one of the --max-requests slots; 0 once they are all taken (the last one taken also
 * starts the shutdown, and the request holding it is still answered). */
static int take_request_slot(server *s) {
    int granted = 1;
    pthread_mutex_lock(&s->lock);
    if (s->max_requests > 0) {
        if (s->answered >= s->max_requests) {
            granted = 0;
        } else if (++s->answered == s->max_requests && !s->stopping) {
            s->stopping = 1;
            s->stop_reason = "the request limit was reached";
        }
    } else {
        s->answered++;
    }
    pthread_mutex_unlock(&s->lock);
    return granted;
}

static void count(server *s, long long *counter) {
    pthread_mutex_lock(&s->lock);
    (*counter)++;
    pthread_mutex_unlock(&s->lock);
}

/* --- wire format -------------------------------------------------------------------------- */

static int host_is_little_endian(void) {
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static uint32_t load_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_le32(unsigned char *p, uint32_t value) {
    p[0] = (unsigned char)value;
    p[1] = (unsigned char)(value >> 8);
    p[2] = (unsigned char)(value >> 16);
    p[3] = (unsigned char)(value >> 24);
}

/* Converts `count` 4-byte words between little-endian and host order, in place. */
static void swap_words_if_big_endian(void *data, size_t count) {
    unsigned char *p = data, t;
    size_t i;
    if (host_is_little_endian()) return;
    for (i = 0; i < count; i++, p += 4) {
        t = p[0], p[0] = p[3], p[3] = t;
        t = p[1], p[1] = p[2], p[2] = t;
    }
}

enum { IO_OK, IO_CLOSED, IO_SHORT, IO_TIMEOUT, IO_STOPPING, IO_ERROR };

/* Reads exactly `size` bytes before the monotonic `deadline`, waiting in slices of POLL_MS.
 * With `stop_when_idle`, gives up (IO_STOPPING) when the server stops before the first byte.
 * *got counts the bytes read. IO_CLOSED: the peer closed before sending anything;
 * IO_SHORT: it closed part way. */
static int receive(server *s, int fd, unsigned char *buffer, size_t size, double deadline, int stop_when_idle,
                   size_t *got) {
    *got = 0;
    while (*got < size) {
        struct pollfd ready;
        double remaining = deadline - now_seconds();
        ssize_t n;
        int wait_ms, polled;
        if (stop_when_idle && *got == 0 && is_stopping(s)) return IO_STOPPING;
        if (remaining <= 0) return IO_TIMEOUT;
        wait_ms = remaining * 1000 < POLL_MS ? (int)(remaining * 1000) + 1 : POLL_MS;
        ready.fd = fd;
        ready.events = POLLIN;
        ready.revents = 0;
        polled = poll(&ready, 1, wait_ms);
        if (polled < 0 && errno != EINTR) return IO_ERROR;
        if (polled <= 0) continue;
        n = recv(fd, buffer + *got, size - *got, 0);
        if (n == 0) return *got == 0 ? IO_CLOSED : IO_SHORT;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            return IO_ERROR;
        }
        *got += (size_t)n;
    }
    return IO_OK;
}

/* Writes all bytes; bounded by the socket's SO_SNDTIMEO. Returns 0 on success. */
static int send_all(int fd, const unsigned char *data, size_t size) {
    while (size > 0) {
        ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

/* Sends a status with a printf-formatted message as its payload. Returns 0 on success. */
static int send_message(int fd, uint32_t status, const char *format, ...) {
    unsigned char reply[HEADER_BYTES + 512];
    int length;
    va_list arguments;
    va_start(arguments, format);
    length = vsnprintf((char *)reply + HEADER_BYTES, sizeof reply - HEADER_BYTES, format, arguments);
    va_end(arguments);
    if (length < 0) length = 0;
    if ((size_t)length >= sizeof reply - HEADER_BYTES) length = (int)(sizeof reply - HEADER_BYTES - 1);
    store_le32(reply, status);
    store_le32(reply + 4, (uint32_t)length);
    return send_all(fd, reply, HEADER_BYTES + (size_t)length);
}

/* --- a connection ------------------------------------------------------------------------- */

static void set_timeout(int fd, int option, double seconds) {
    struct timeval t;
    t.tv_sec = (time_t)seconds;
    t.tv_usec = (suseconds_t)((seconds - (double)t.tv_sec) * 1e6);
    setsockopt(fd, SOL_SOCKET, option, &t, sizeof t);
}

/* Answers requests on `fd` until the peer closes, a request is bad, or the server stops. */
static void serve_connection(worker *w, int fd) {
    server *s = w->server;
    unsigned char header[HEADER_BYTES];
    size_t got;
    int result;

    set_timeout(fd, SO_SNDTIMEO, s->request_timeout);
    for (;;) {
        uint32_t batch, payload;
        size_t expected, logits;
        double deadline;
        reparo_status status;

        /* Wait for the first byte of a request as long as the idle timeout allows, then give
         * the rest of the request the request timeout. */
        result = receive(s, fd, header, 1, now_seconds() + s->idle_timeout, 1, &got);
        if (result != IO_OK) return; /* closed, idle, stopping or broken: nothing to answer */
        deadline = now_seconds() + s->request_timeout;
        result = receive(s, fd, header + 1, HEADER_BYTES - 1, deadline, 0, &got);
        if (result != IO_OK) {
            count(s, &s->bad_requests);
            if (result != IO_ERROR)
                send_message(fd, STATUS_BAD_REQUEST, "short read: the request header is %d bytes, got %zu",
                             HEADER_BYTES, got + 1);
            return;
        }
        batch = load_le32(header);
        payload = load_le32(header + 4);
        if (batch < 1 || batch > (uint32_t)s->max_batch) {
            count(s, &s->bad_requests);
            send_message(fd, STATUS_BAD_REQUEST, "batch %lu is outside 1 ... %d", (unsigned long)batch, s->max_batch);
            return;
        }
        expected = (size_t)batch * s->sample * sizeof(float);
        if ((size_t)payload != expected) {
            count(s, &s->bad_requests);
            send_message(fd, STATUS_BAD_REQUEST,
                         "payload is %lu bytes; a batch of %lu images of %d x %d x %d floats is %zu bytes",
                         (unsigned long)payload, (unsigned long)batch, (int)s->channels, (int)s->height,
                         (int)s->width, expected);
            return;
        }
        result = receive(s, fd, (unsigned char *)w->images, expected, deadline, 0, &got);
        if (result != IO_OK) {
            count(s, &s->bad_requests);
            if (result != IO_ERROR)
                send_message(fd, STATUS_BAD_REQUEST, "short read: %s after %zu of %zu payload bytes",
                             result == IO_TIMEOUT ? "timed out" : "the connection ended", got, expected);
            return;
        }
        if (!take_request_slot(s)) {
            count(s, &s->refused);
            send_message(fd, STATUS_SHUTTING_DOWN, "the server is shutting down");
            return;
        }

        swap_words_if_big_endian(w->images, (size_t)batch * s->sample);
        logits = (size_t)batch * (size_t)s->classes;
        status = reparo_infer(s->model, w->images, (int32_t)batch, (float *)(w->response + HEADER_BYTES), logits);
        if (status != REPARO_OK) {
            count(s, &s->infer_failures);
            if (send_message(fd, STATUS_INFER_FAILED, "%s: %s", reparo_status_name(status), reparo_last_error()) != 0)
                return;
        } else {
            swap_words_if_big_endian(w->response + HEADER_BYTES, logits);
            store_le32(w->response, STATUS_OK);
            store_le32(w->response + 4, (uint32_t)(logits * sizeof(float)));
            if (send_all(fd, w->response, HEADER_BYTES + logits * sizeof(float)) != 0) return;
            count(s, &s->ok);
        }
        if (is_stopping(s)) return;
    }
}

static void *worker_main(void *argument) {
    worker *w = argument;
    server *s = w->server;
    while (!is_stopping(s)) {
        struct pollfd ready;
        int fd, flags;
        ready.fd = s->listen_fd;
        ready.events = POLLIN;
        ready.revents = 0;
        if (poll(&ready, 1, POLL_MS) <= 0) continue; /* timeout or EINTR: check for a stop */
        fd = accept(s->listen_fd, NULL, NULL);       /* non-blocking: another worker may win */
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
                struct timespec pause = {0, 50 * 1000 * 1000}; /* e.g. EMFILE: do not spin */
                fprintf(stderr, "serve: accept: %s\n", strerror(errno));
                nanosleep(&pause, NULL);
            }
            continue;
        }
        flags = fcntl(fd, F_GETFL);
        if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        count(s, &s->connections);
        serve_connection(w, fd);
        close(fd);
    }
    return NULL;
}

/* --- setup -------------------------------------------------------------------------------- */

/* A listening, non-blocking Unix socket at `path` (a stale socket file left by a dead server
 * is replaced; a live server's socket or any other file is not). Returns -1 on failure. */
static int listen_on(const char *path) {
    struct sockaddr_un address;
    struct stat info;
    int fd;
    mode_t previous_mask;
    if (strlen(path) >= sizeof address.sun_path) {
        fprintf(stderr, "serve: socket path is %zu bytes, the limit is %zu\n", strlen(path),
                sizeof address.sun_path - 1);
        return -1;
    }
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    strcpy(address.sun_path, path);
    if (lstat(path, &info) == 0) {
        int probe;
        if (!S_ISSOCK(info.st_mode)) {
            fprintf(stderr, "serve: %s exists and is not a socket\n", path);
            return -1;
        }
        probe = socket(AF_UNIX, SOCK_STREAM, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&address, sizeof address) == 0) {
            fprintf(stderr, "serve: a server is already listening on %s\n", path);
            close(probe);
            return -1;
        }
        if (probe >= 0) close(probe);
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        fprintf(stderr, "serve: socket: %s\n", strerror(errno));
        return -1;
    }
    previous_mask = umask(077); /* the socket file: owner only */
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        fprintf(stderr, "serve: bind %s: %s\n", path, strerror(errno));
        umask(previous_mask);
        close(fd);
        return -1;
    }
    umask(previous_mask);
    if (listen(fd, 64) != 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        fprintf(stderr, "serve: listen %s: %s\n", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

/* Parses a decimal option value in [low, high]; exits with a message otherwise. */
static double number(const char *option, const char *text, double low, double high) {
    char *end;
    double value;
    errno = 0;
    value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(value >= low && value <= high)) {
        fprintf(stderr, "serve: %s must be a number in %g ... %g, got '%s'\n", option, low, high, text);
        exit(1);
    }
    return value;
}

static void usage(void) {
    fprintf(stderr, "usage: serve MODEL.safetensors SOCKET [--threads N] [--max-requests R] [--lifetime SECONDS]\n"
                    "             [--idle-timeout SECONDS] [--request-timeout SECONDS]\n");
}

int main(int argc, char **argv) {
    server s;
    worker workers[MAX_THREADS];
    int threads = 4, started = 0, i, exit_status = 1;
    double lifetime = 0, start;
    const char *model_path, *socket_path;
    sigset_t signals;
    reparo_status status;

    if (argc < 3 || argc % 2 == 0) {
        usage();
        return 1;
    }
    memset(&s, 0, sizeof s);
    memset(workers, 0, sizeof workers);
    s.listen_fd = -1;
    s.idle_timeout = 30;
    s.request_timeout = 5;
    model_path = argv[1];
    socket_path = argv[2];
    for (i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0) threads = (int)number(argv[i], argv[i + 1], 1, MAX_THREADS);
        else if (strcmp(argv[i], "--max-requests") == 0) s.max_requests = (long long)number(argv[i], argv[i + 1], 0, 1e15);
        else if (strcmp(argv[i], "--lifetime") == 0) lifetime = number(argv[i], argv[i + 1], 0, 1e7);
        else if (strcmp(argv[i], "--idle-timeout") == 0) s.idle_timeout = number(argv[i], argv[i + 1], 0.01, 1e7);
        else if (strcmp(argv[i], "--request-timeout") == 0) s.request_timeout = number(argv[i], argv[i + 1], 0.01, 1e7);
        else {
            fprintf(stderr, "serve: unknown option '%s'\n", argv[i]);
            usage();
            return 1;
        }
    }

    /* SIGINT and SIGTERM are taken by the main thread with sigtimedwait: block them before any
     * thread starts, so every worker inherits the mask. A peer that hangs up must not kill the
     * process either (send uses MSG_NOSIGNAL; this covers everything else). */
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    status = reparo_model_load(model_path, &s.model);
    if (status != REPARO_OK) {
        fprintf(stderr, "serve: cannot load %s: %s: %s\n", model_path, reparo_status_name(status), reparo_last_error());
        return 1;
    }
    if (reparo_model_shape(s.model, &s.channels, &s.height, &s.width, &s.classes) != REPARO_OK) {
        fprintf(stderr, "serve: reparo_model_shape: %s\n", reparo_last_error());
        goto done;
    }
    s.sample = (size_t)s.channels * (size_t)s.height * (size_t)s.width;
    s.max_batch = MAX_BATCH;
    while (s.max_batch > 1 && (size_t)s.max_batch * s.sample * sizeof(float) > MAX_PAYLOAD_BYTES) s.max_batch /= 2;
    if (s.sample * sizeof(float) > MAX_PAYLOAD_BYTES) {
        fprintf(stderr, "serve: one input image is %zu bytes, over the limit of %zu\n", s.sample * sizeof(float),
                MAX_PAYLOAD_BYTES);
        goto done;
    }
    if (pthread_mutex_init(&s.lock, NULL) != 0) goto done;
    if ((s.listen_fd = listen_on(socket_path)) < 0) goto destroy;

    for (i = 0; i < threads; i++) {
        workers[i].server = &s;
        workers[i].images = malloc((size_t)s.max_batch * s.sample * sizeof(float));
        workers[i].response = malloc(HEADER_BYTES + (size_t)s.max_batch * (size_t)s.classes * sizeof(float));
        if (!workers[i].images || !workers[i].response) {
            fprintf(stderr, "serve: out of memory for worker buffers\n");
            break;
        }
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            fprintf(stderr, "serve: cannot start worker thread %d\n", i);
            break;
        }
        started++;
    }
    if (started == threads) {
        printf("serve: listening on %s: %s (%d x %d x %d -> %d classes), %d worker threads, batch 1 ... %d\n",
               socket_path, model_path, (int)s.channels, (int)s.height, (int)s.width, (int)s.classes, threads,
               s.max_batch);
        fflush(stdout);
        exit_status = 0;
    } else {
        request_stop(&s, "start-up failed");
    }

    start = now_seconds();
    while (!is_stopping(&s)) {
        struct timespec slice = {0, POLL_MS * 1000 * 1000};
        int received = sigtimedwait(&signals, NULL, &slice);
        if (received == SIGINT) request_stop(&s, "SIGINT");
        else if (received == SIGTERM) request_stop(&s, "SIGTERM");
        else if (lifetime > 0 && now_seconds() - start >= lifetime) request_stop(&s, "the lifetime ran out");
    }
    for (i = 0; i < started; i++) pthread_join(workers[i].thread, NULL);
    close(s.listen_fd);
    unlink(socket_path);
    printf("serve: stopped (%s): %lld connections, %lld requests answered with logits, %lld bad requests, "
           "%lld inference failures, %lld refused while shutting down\n",
           s.stop_reason, s.connections, s.ok, s.bad_requests, s.infer_failures, s.refused);

destroy:
    pthread_mutex_destroy(&s.lock);
done:
    for (i = 0; i < MAX_THREADS; i++) {
        free(workers[i].images);
        free(workers[i].response);
    }
    reparo_model_free(s.model);
    return exit_status;
}
