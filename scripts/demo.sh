#!/usr/bin/env bash
# `make demo`: the real harvest, offline. Starts the project's Hub emulator, runs
# `hfharvest fetch --sort likes --sort downloads --inference-provider hf-inference` against it,
# writes demo/models.jsonl, shows a jq one-liner on it, and always stops the emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

# The demo must not depend on the user's own Hub settings (HF_HUB_OFFLINE, a token, an endpoint).
while IFS='=' read -r name _; do
    case "$name" in HF_*) unset "$name" ;; esac
done < <(env)

mkdir -p demo
url_file=$(mktemp)
"$BIN/python" -m hfharvest.testing --port 0 >"$url_file" 2>/dev/null &
emulator=$!
trap 'kill "$emulator" 2>/dev/null || true; wait "$emulator" 2>/dev/null || true; rm -f "$url_file"' EXIT

for _ in $(seq 100); do
    [ -s "$url_file" ] && break
    sleep 0.1
done
endpoint=$(head -n 1 "$url_file")
[ -n "$endpoint" ] || { echo "demo: the emulator did not start" >&2; exit 1; }
echo "demo: Hub emulator at $endpoint (offline, synthetic catalog)" >&2
echo "+ hfharvest fetch --endpoint $endpoint --sort likes --sort downloads --inference-provider hf-inference -o demo/models.jsonl" >&2

"$BIN/hfharvest" fetch --endpoint "$endpoint" --sort likes --sort downloads \
    --inference-provider hf-inference -o demo/models.jsonl

echo "demo: wrote $(wc -l <demo/models.jsonl) records to demo/models.jsonl" >&2
if command -v jq >/dev/null 2>&1; then
    # One jq, no pipeline: a reader that stops early (head) would kill the writer before it
    # (SIGPIPE), and under pipefail the demo would fail or pass by the timing of the pipe.
    query='[.[] | select(.found_by.likes > 1000)] | sort_by(-.downloads) | .[:5][] | [.downloads, .likes, .id] | @tsv'
    echo "+ jq -rs '$query' demo/models.jsonl" >&2
    echo "  (models a top-1,000-by-likes script would miss, by downloads)" >&2
    jq -rs "$query" demo/models.jsonl
else
    echo "demo: install jq to query the result (apt-get install jq, or brew install jq)" >&2
fi
