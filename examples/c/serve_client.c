/*
 * serve_client.c — load test and correctness check for serve.c.
 *
 *   serve_client SOCKET MODEL.safetensors [--threads K] [--requests M] [--batch B]
 *                [--check-errors] [--timeout SECONDS]
 *
 *   --threads K       client threads, one connection each (default 4)
 *   --requests M      requests per thread (default 50)
 *   --batch B         images per request, 1 ... 256 (default 8)
 *   --check-errors    first send malformed requests (batch 0 and 257, a payload size that
 *                     does not match the model, a request cut short, a cut header) and check
 *                     that each is answered with BAD_REQUEST and that the server still answers
 *   --timeout S       connect retries, and every send and receive, give up after S seconds
 *                     (default 10)
 *
 * Request r (of K × M) carries images r·B ... r·B + B − 1 (modulo the set) of the bundled
 * digits test split (reparo_dataset_load "digits"). Before the timed run, the expected logits
 * of every request are computed with a local reparo_infer on MODEL, with the same batches; the
 * server's answers must be bit-identical to them (same library, same model file, same batch
 * shapes: the same float operations in the same order).
 *
 * Prints the latency of a request (send of the first byte to receipt of the last; p50, p99,
 * max) and the throughput over the whole run. Exit status 0 only if every answer matched and
 * every malformed request was rejected as expected.
 */
#define _POSIX_C_SOURCE 200809L

#include <reparo.h>

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { MAX_BATCH = 256, MAX_THREADS = 256, HEADER_BYTES = 8 };
enum { STATUS_OK = 0, STATUS_BAD_REQUEST = 1 };

typedef struct {
    const char *socket_path;
    double timeout;
    int threads, requests, batch;
    size_t sample;
    int32_t classes;
    const float *images; /* the digits test split */
    int64_t image_count;
    float *expected;     /* threads × requests × batch × classes logits from the local model */

    pthread_mutex_t lock; /* the start gate */
    pthread_cond_t gate;
    int open, ready;
} client;

typedef struct {
    client *client;
    int index;
    pthread_t thread;
    double *latencies;    /* seconds, one per request */
    int answered, mismatched, failed;
    char problem[320];    /* the first failure */
} session;

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* --- wire format (see serve.c) ------------------------------------------------------------ */

static uint32_t load_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_le32(unsigned char *p, uint32_t value) {
    p[0] = (unsigned char)value;
    p[1] = (unsigned char)(value >> 8);
    p[2] = (unsigned char)(value >> 16);
    p[3] = (unsigned char)(value >> 24);
}

/* Writes the bits of `count` floats as little-endian words. */
static void store_floats(unsigned char *p, const float *values, size_t count) {
    size_t i;
    for (i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], 4);
        store_le32(p + 4 * i, bits);
    }
}

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

/* Reads exactly `size` bytes (bounded by SO_RCVTIMEO). Returns the bytes read: `size` on
 * success, fewer if the peer closed or the timeout passed. */
static size_t receive_all(int fd, unsigned char *data, size_t size) {
    size_t got = 0;
    while (got < size) {
        ssize_t n = recv(fd, data + got, size - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    return got;
}

/* Connects to the server, retrying while it starts, for up to `timeout` seconds. */
static int connect_to(const char *path, double timeout) {
    struct sockaddr_un address;
    double give_up = now_seconds() + timeout;
    if (strlen(path) >= sizeof address.sun_path) {
        fprintf(stderr, "serve_client: socket path too long: %s\n", path);
        return -1;
    }
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    strcpy(address.sun_path, path);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct timeval t;
        struct timespec pause = {0, 20 * 1000 * 1000};
        if (fd < 0) return -1;
        if (connect(fd, (struct sockaddr *)&address, sizeof address) == 0) {
            t.tv_sec = (time_t)timeout;
            t.tv_usec = (suseconds_t)((timeout - (double)t.tv_sec) * 1e6);
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
            return fd;
        }
        close(fd);
        if (now_seconds() >= give_up) {
            fprintf(stderr, "serve_client: cannot connect to %s within %g s: %s\n", path, timeout, strerror(errno));
            return -1;
        }
        nanosleep(&pause, NULL);
    }
}

/* The images of request r: B consecutive test images, wrapping around the set. */
static void request_images(const client *c, int64_t request, float *out) {
    int b;
    for (b = 0; b < c->batch; b++) {
        int64_t index = (request * c->batch + b) % c->image_count;
        memcpy(out + (size_t)b * c->sample, c->images + (size_t)index * c->sample, c->sample * sizeof(float));
    }
}

/* --- the timed run ------------------------------------------------------------------------ */

static void *session_main(void *argument) {
    session *s = argument;
    client *c = s->client;
    size_t payload = (size_t)c->batch * c->sample * 4, logits = (size_t)c->batch * (size_t)c->classes;
    unsigned char *request = malloc(HEADER_BYTES + payload), *reply = malloc(HEADER_BYTES + logits * 4),
                  *expected = malloc(logits * 4);
    float *images = malloc(payload);
    int fd = -1, i;

    if (request && reply && expected && images) fd = connect_to(c->socket_path, c->timeout);
    pthread_mutex_lock(&c->lock); /* everyone connects first, then all start together */
    c->ready++;
    pthread_cond_broadcast(&c->gate);
    while (!c->open) pthread_cond_wait(&c->gate, &c->lock);
    pthread_mutex_unlock(&c->lock);
    if (fd < 0) {
        snprintf(s->problem, sizeof s->problem, "thread %d: no connection", s->index);
        s->failed = c->requests;
        goto done;
    }

    for (i = 0; i < c->requests; i++) {
        int64_t r = (int64_t)s->index * c->requests + i;
        double started;
        uint32_t status, length;
        request_images(c, r, images);
        store_le32(request, (uint32_t)c->batch);
        store_le32(request + 4, (uint32_t)payload);
        store_floats(request + HEADER_BYTES, images, (size_t)c->batch * c->sample);
        store_floats(expected, c->expected + (size_t)r * logits, logits);

        started = now_seconds();
        if (send_all(fd, request, HEADER_BYTES + payload) != 0 || receive_all(fd, reply, HEADER_BYTES) != HEADER_BYTES) {
            snprintf(s->problem, sizeof s->problem, "thread %d request %d: send or receive failed: %s", s->index, i,
                     strerror(errno));
            s->failed += c->requests - i;
            break;
        }
        status = load_le32(reply);
        length = load_le32(reply + 4);
        if (status != STATUS_OK || length != logits * 4) {
            char message[200] = "";
            size_t n = length < sizeof message - 1 ? length : sizeof message - 1;
            receive_all(fd, (unsigned char *)message, n);
            message[n] = '\0';
            snprintf(s->problem, sizeof s->problem, "thread %d request %d: status %lu, %lu bytes: %s", s->index, i,
                     (unsigned long)status, (unsigned long)length, message);
            s->failed += c->requests - i;
            break;
        }
        if (receive_all(fd, reply + HEADER_BYTES, logits * 4) != logits * 4) {
            snprintf(s->problem, sizeof s->problem, "thread %d request %d: logits cut short", s->index, i);
            s->failed += c->requests - i;
            break;
        }
        s->latencies[s->answered++] = now_seconds() - started;
        if (memcmp(reply + HEADER_BYTES, expected, logits * 4) != 0) {
            if (s->mismatched++ == 0)
                snprintf(s->problem, sizeof s->problem, "thread %d request %d: logits differ from the local model",
                         s->index, i);
        }
    }
done:
    if (fd >= 0) close(fd);
    free(request);
    free(reply);
    free(expected);
    free(images);
    return NULL;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *sorted, int count, double p) {
    int rank = (int)ceil(p / 100.0 * count);
    if (rank < 1) rank = 1;
    if (rank > count) rank = count;
    return sorted[rank - 1];
}

/* --- malformed requests ------------------------------------------------------------------- */

/* Sends `size` bytes on a new connection, optionally half-closes it, and expects a
 * BAD_REQUEST answer followed by the server closing the connection. Returns 1 if so. */
static int expect_rejection(const client *c, const char *what, const unsigned char *data, size_t size, int half_close) {
    unsigned char header[HEADER_BYTES], rest[1];
    char message[300] = "";
    int fd = connect_to(c->socket_path, c->timeout), ok = 0;
    size_t n;
    if (fd < 0) return 0;
    if (send_all(fd, data, size) == 0 && (!half_close || shutdown(fd, SHUT_WR) == 0) &&
        receive_all(fd, header, HEADER_BYTES) == HEADER_BYTES) {
        uint32_t length = load_le32(header + 4);
        n = length < sizeof message - 1 ? length : sizeof message - 1;
        n = receive_all(fd, (unsigned char *)message, n);
        message[n] = '\0';
        ok = load_le32(header) == STATUS_BAD_REQUEST && n == length && n > 0 &&
             receive_all(fd, rest, 1) == 0; /* and then the server hangs up */
    }
    printf("%s %-44s -> %s\n", ok ? "ok  " : "FAIL", what, message[0] ? message : "(no answer)");
    close(fd);
    return ok;
}

static int check_errors(const client *c) {
    size_t payload = c->sample * 4;
    unsigned char *request = calloc(1, HEADER_BYTES + 2 * payload);
    int passed = 0, total = 0;
    if (!request) return 0;

    store_le32(request, 0);
    store_le32(request + 4, 0);
    passed += expect_rejection(c, "batch 0", request, HEADER_BYTES, 0), total++;

    store_le32(request, MAX_BATCH + 1);
    store_le32(request + 4, (uint32_t)((MAX_BATCH + 1) * payload));
    passed += expect_rejection(c, "batch 257", request, HEADER_BYTES, 0), total++;

    store_le32(request, 1);
    store_le32(request + 4, (uint32_t)(payload - 4)); /* one float short of the model's input */
    passed += expect_rejection(c, "payload size does not match the model", request, HEADER_BYTES + payload - 4, 0),
        total++;

    store_le32(request, 1);
    store_le32(request + 4, 0xFFFFFFFFu);
    passed += expect_rejection(c, "payload size 4 GiB - 1", request, HEADER_BYTES, 0), total++;

    store_le32(request, 2);
    store_le32(request + 4, (uint32_t)(2 * payload));
    passed += expect_rejection(c, "short read: half the payload, then EOF", request, HEADER_BYTES + payload, 1),
        total++;

    passed += expect_rejection(c, "short read: 3 header bytes, then EOF", request, 3, 1), total++;

    free(request);
    printf("malformed requests: %d of %d rejected as expected\n", passed, total);
    return passed == total;
}

/* --- main --------------------------------------------------------------------------------- */

static int option(const char *name, const char *text, int low, int high) {
    char *end;
    long value;
    errno = 0;
    value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < low || value > high) {
        fprintf(stderr, "serve_client: %s must be an integer in %d ... %d, got '%s'\n", name, low, high, text);
        exit(1);
    }
    return (int)value;
}

int main(int argc, char **argv) {
    client c;
    session *sessions = NULL;
    reparo_model *model = NULL;
    reparo_dataset *test = NULL;
    int32_t channels, height, width, data_channels, data_height, data_width;
    double *latencies = NULL, wall = 0, started;
    int i, check = 0, ok = 0, answered = 0, mismatched = 0, failed = 0, errors_ok = 1;
    float *images = NULL;

    memset(&c, 0, sizeof c);
    c.threads = 4;
    c.requests = 50;
    c.batch = 8;
    c.timeout = 10;
    if (argc < 3) {
        fprintf(stderr, "usage: serve_client SOCKET MODEL.safetensors [--threads K] [--requests M] [--batch B]\n"
                        "                    [--check-errors] [--timeout SECONDS]\n");
        return 1;
    }
    c.socket_path = argv[1];
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--check-errors") == 0) check = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) c.threads = option(argv[i], argv[i + 1], 1, MAX_THREADS), i++;
        else if (i + 1 < argc && strcmp(argv[i], "--requests") == 0) c.requests = option(argv[i], argv[i + 1], 1, 1000000), i++;
        else if (i + 1 < argc && strcmp(argv[i], "--batch") == 0) c.batch = option(argv[i], argv[i + 1], 1, MAX_BATCH), i++;
        else if (i + 1 < argc && strcmp(argv[i], "--timeout") == 0) c.timeout = option(argv[i], argv[i + 1], 1, 3600), i++;
        else {
            fprintf(stderr, "serve_client: unknown or incomplete option '%s'\n", argv[i]);
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);

#define CHECK(call)                                                                                            \
    do {                                                                                                       \
        reparo_status status_ = (call);                                                                        \
        if (status_ != REPARO_OK) {                                                                            \
            fprintf(stderr, "serve_client: %s failed: %s: %s\n", #call, reparo_status_name(status_),            \
                    reparo_last_error());                                                                      \
            goto done;                                                                                         \
        }                                                                                                      \
    } while (0)

    CHECK(reparo_model_load(argv[2], &model));
    CHECK(reparo_model_shape(model, &channels, &height, &width, &c.classes));
    CHECK(reparo_dataset_load("digits", NULL, "test", &test));
    CHECK(reparo_dataset_info(test, &c.image_count, &data_channels, &data_height, &data_width, NULL));
    CHECK(reparo_dataset_data(test, &c.images, NULL));
    if (channels != data_channels || height != data_height || width != data_width || c.image_count < 1) {
        fprintf(stderr, "serve_client: the model takes %d x %d x %d images, the digits are %d x %d x %d\n", (int)channels,
                (int)height, (int)width, (int)data_channels, (int)data_height, (int)data_width);
        goto done;
    }
    c.sample = (size_t)channels * (size_t)height * (size_t)width;

    /* The expected answers, from the same model file, with the same batches. */
    c.expected = malloc((size_t)c.threads * (size_t)c.requests * (size_t)c.batch * (size_t)c.classes * sizeof(float));
    images = malloc((size_t)c.batch * c.sample * sizeof(float));
    sessions = calloc((size_t)c.threads, sizeof *sessions);
    latencies = malloc((size_t)c.threads * (size_t)c.requests * sizeof *latencies);
    if (!c.expected || !images || !sessions || !latencies) {
        fprintf(stderr, "serve_client: out of memory\n");
        goto done;
    }
    for (i = 0; i < c.threads * c.requests; i++) {
        size_t logits = (size_t)c.batch * (size_t)c.classes;
        request_images(&c, i, images);
        CHECK(reparo_infer(model, images, c.batch, c.expected + (size_t)i * logits, logits));
    }

    if (check && !check_errors(&c)) errors_ok = 0;

    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.gate, NULL);
    for (i = 0; i < c.threads; i++) {
        sessions[i].client = &c;
        sessions[i].index = i;
        sessions[i].latencies = latencies + (size_t)i * (size_t)c.requests;
        if (pthread_create(&sessions[i].thread, NULL, session_main, &sessions[i]) != 0) {
            fprintf(stderr, "serve_client: cannot start thread %d\n", i);
            c.threads = i; /* join the ones that started */
            errors_ok = 0;
            break;
        }
    }
    pthread_mutex_lock(&c.lock);
    while (c.ready < c.threads) pthread_cond_wait(&c.gate, &c.lock);
    c.open = 1;
    started = now_seconds();
    pthread_cond_broadcast(&c.gate);
    pthread_mutex_unlock(&c.lock);
    for (i = 0; i < c.threads; i++) pthread_join(sessions[i].thread, NULL);
    wall = now_seconds() - started;
    pthread_cond_destroy(&c.gate);
    pthread_mutex_destroy(&c.lock);

    /* Gather each session's latencies into one sorted array. */
    for (i = 0; i < c.threads; i++) {
        memmove(latencies + answered, sessions[i].latencies, (size_t)sessions[i].answered * sizeof *latencies);
        answered += sessions[i].answered;
        mismatched += sessions[i].mismatched;
        failed += sessions[i].failed;
        if (sessions[i].problem[0]) fprintf(stderr, "serve_client: %s\n", sessions[i].problem);
    }
    printf("serve_client: %d threads x %d requests, batch %d: %d answered, %d bit-identical to the local "
           "reparo_infer, %d differ, %d failed\n",
           c.threads, c.requests, c.batch, answered, answered - mismatched, mismatched, failed);
    if (answered > 0) {
        qsort(latencies, (size_t)answered, sizeof *latencies, compare_doubles);
        printf("serve_client: latency ms p50 %.3f  p99 %.3f  max %.3f; throughput %.0f requests/s (%.0f images/s) "
               "over %.3f s\n",
               1e3 * percentile(latencies, answered, 50), 1e3 * percentile(latencies, answered, 99),
               1e3 * latencies[answered - 1], answered / wall, (double)answered * c.batch / wall, wall);
    }
    ok = errors_ok && mismatched == 0 && failed == 0 && answered == c.threads * c.requests;
    printf("serve_client: %s\n", ok ? "all answers matched" : "FAILED");

done:
    free(images);
    free(latencies);
    free(sessions);
    free(c.expected);
    reparo_dataset_free(test);
    reparo_model_free(model);
    return ok ? 0 : 1;
}
