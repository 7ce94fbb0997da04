#!/usr/bin/env bash
# Regenerates fuzz/corpus/<target>/ (the seed corpora of the fuzz targets) from the fixture
# repositories in testdata/ (made by real borg, see testdata/make-fixtures.sh) and from a
# session with a real `borg serve` (OXIBORG_BORG12 / OXIBORG_BORG14, or borg on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test fuzz_corpus -- --ignored --exact make_seed_corpus
find fuzz/corpus -type f | wc -l | xargs printf '%s seed files in fuzz/corpus\n'
