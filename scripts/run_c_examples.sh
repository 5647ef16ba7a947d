#!/usr/bin/env bash
# Compiles and runs the C examples against libreparo.so; exits non-zero on any failure.
#
#   scripts/run_c_examples.sh
#
# Environment:
#   REPARO_LIBRARY   path to libreparo.so (default: .build-release/release/libreparo.so,
#                    built with scripts/build.sh if it is missing)
#   CC, CXX          compilers (default: cc, c++)
#
# Steps: reparo.h must compile as C99 and as C++17 with every warning as an error; each
# example in examples/c/ compiles with -std=c99 -Wall -Wextra -Werror -pedantic and runs:
#   train_digits  trains on the bundled digits, save/reload must give identical logits, ≥ 0.9
#   pipeline      dense → prune → expand → SP-KD fine-tune → collapse, logits checked
#   api_errors    every reparo.h function with bad arguments; checks its own coverage of
#                 the header's declarations; prints "N passed, M failed"
#   serve         started in the background on a temporary Unix socket with the collapsed
#                 model that pipeline saved; serve_client (4 threads × 50 requests of 8 digits)
#                 must get logits bit-identical to its own reparo_infer and see every malformed
#                 request rejected; then SIGTERM must stop the server with status 0 and remove
#                 the socket. A second server must stop by itself after --max-requests.
#                 Both programs time out on their own (--lifetime, --timeout).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
CC="${CC:-cc}"
CXX="${CXX:-c++}"

library="${REPARO_LIBRARY:-$root/.build-release/release/libreparo.so}"
if [[ ! -f "$library" ]]; then
    if [[ -n "${REPARO_LIBRARY:-}" ]]; then
        echo "REPARO_LIBRARY=$REPARO_LIBRARY is not a file" >&2
        exit 1
    fi
    echo "== $library is missing: building it with scripts/build.sh" >&2
    library="$(scripts/build.sh)"
fi
libdir="$(cd "$(dirname "$library")" && pwd)"
libname="$(basename "$library")"
libname="${libname#lib}"
libname="${libname%.so}"

work="$(mktemp -d "${TMPDIR:-/tmp}/reparo-c-examples.XXXXXX")"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

failures=0
step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

cflags=(-std=c99 -Wall -Wextra -Werror -pedantic -I "$root/include")
ldflags=(-L "$libdir" -l"$libname" -lm -Wl,-rpath,"$libdir")

step "reparo.h as C99 and as C++17"
printf '#include <reparo.h>\nint main(void) { return reparo_version()[0] == 0; }\n' > "$work/header_c.c"
"$CC" "${cflags[@]}" -fsyntax-only "$work/header_c.c" || fail "reparo.h does not compile as C99"
"$CXX" -x c++ -std=c++17 -Wall -Wextra -Werror -pedantic -fsyntax-only -I "$root/include" "$root/include/reparo.h" \
    || fail "reparo.h does not compile as C++17"
printf '#include <reparo.h>\nint main() { reparo_model *m = nullptr; return reparo_model_shape(m, nullptr, nullptr, nullptr, nullptr) == REPARO_OK; }\n' \
    > "$work/header_cpp.cpp"
"$CXX" -std=c++17 -Wall -Wextra -Werror -pedantic -I "$root/include" "$work/header_cpp.cpp" "${ldflags[@]}" \
    -o "$work/header_cpp" || fail "a C++17 program does not link against $library"
echo "ok"

for example in train_digits pipeline api_errors serve serve_client; do
    step "compile examples/c/$example.c"
    "$CC" "${cflags[@]}" -DREPARO_HEADER="\"$root/include/reparo.h\"" "$root/examples/c/$example.c" \
        "${ldflags[@]}" -pthread -o "$work/$example" || { fail "$example does not compile"; continue; }
    echo "ok"
done

if [[ -x "$work/train_digits" ]]; then
    step "run train_digits"
    "$work/train_digits" "$work" || fail "train_digits"
fi
if [[ -x "$work/pipeline" ]]; then
    step "run pipeline"
    "$work/pipeline" "$work" || fail "pipeline"
fi
if [[ -x "$work/api_errors" ]]; then
    step "run api_errors"
    mkdir -p "$work/api_errors_scratch"
    if "$work/api_errors" "$root/include/reparo.h" "$work/api_errors_scratch" > "$work/api_errors.log" 2>&1; then
        status=0
    else
        status=$?
    fi
    grep -v '^\.\.\. ' "$work/api_errors.log" | grep -v '^ok ' || true
    if [[ $status -ne 0 ]]; then
        if [[ $status -gt 128 ]]; then
            echo "api_errors died with signal $((status - 128)) during:" >&2
            grep '^\.\.\. ' "$work/api_errors.log" | tail -1 >&2
        fi
        fail "api_errors (exit status $status)"
    elif ! tail -1 "$work/api_errors.log" | grep -Eq '^[0-9]+ passed, 0 failed$'; then
        fail "api_errors did not end with 'N passed, 0 failed'"
    fi
fi

# Waits up to $2 seconds for background process $1 to exit and returns its exit status
# (124 after killing it when it does not exit in time).
wait_for_exit() {
    local pid=$1 tenths=$(($2 * 10)) i
    for ((i = 0; i < tenths; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            return $?
        fi
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 124
}

model="$work/reparo_pipeline_pruned.safetensors"
socket="$work/serve.sock"
if [[ ${#socket} -ge 100 ]]; then # sockaddr_un holds 107 bytes
    socket="$(mktemp -u /tmp/reparo-serve.XXXXXX).sock"
fi
if [[ -x "$work/serve" && -x "$work/serve_client" ]]; then
    step "run serve (4 worker threads) and serve_client (4 threads x 50 requests, batch 8)"
    if [[ ! -f "$model" ]]; then
        fail "serve: pipeline did not save $model"
    else
        "$work/serve" "$model" "$socket" --threads 4 --lifetime 120 > "$work/serve.log" 2>&1 &
        server_pid=$!
        "$work/serve_client" "$socket" "$model" --threads 4 --requests 50 --batch 8 --check-errors --timeout 10 \
            || fail "serve_client"
        kill -TERM "$server_pid" 2>/dev/null || true
        status=0
        wait_for_exit "$server_pid" 15 || status=$?
        server_pid=""
        cat "$work/serve.log"
        if [[ $status -ne 0 ]]; then
            fail "serve exited with status $status after SIGTERM"
        elif ! grep -q '^serve: stopped (SIGTERM)' "$work/serve.log"; then
            fail "serve did not report a stop by SIGTERM"
        fi
        [[ ! -e "$socket" ]] || fail "serve left $socket behind"

        step "serve stops by itself after --max-requests 20"
        "$work/serve" "$model" "$socket" --threads 2 --max-requests 20 --lifetime 60 > "$work/serve.log" 2>&1 &
        server_pid=$!
        "$work/serve_client" "$socket" "$model" --threads 2 --requests 10 --batch 1 --timeout 10 \
            || fail "serve_client against --max-requests 20"
        status=0
        wait_for_exit "$server_pid" 15 || status=$?
        server_pid=""
        cat "$work/serve.log"
        if [[ $status -ne 0 ]]; then
            fail "serve exited with status $status after --max-requests"
        elif ! grep -q '^serve: stopped (the request limit was reached)' "$work/serve.log"; then
            fail "serve did not stop at its request limit"
        fi
        [[ ! -e "$socket" ]] || fail "serve left $socket behind"
    fi
fi

echo
if [[ $failures -ne 0 ]]; then
    echo "C examples: $failures failure(s)"
    exit 1
fi
echo "C examples: all passed"
