#!/bin/sh
# Every weft_* metric that docs/operations.md uses (alert rules, queries) is one that
# `weft serve` exports (src/hub/metrics.c). Lists the unknown ones.
#   usage: metric_names.sh SOURCE_DIR
set -u
src=$1
status=0
names=$(grep -oE '\bweft_[a-z_]+' "$src/docs/operations.md" | sort -u)
[ -n "$names" ] || { echo "no metric found in docs/operations.md"; exit 1; }
for n in $names; do
    if ! grep -q "\"$n[{ \"]" "$src/src/hub/metrics.c"; then
        echo "docs/operations.md: $n is not a metric of src/hub/metrics.c"
        status=1
    fi
done
echo "$(echo "$names" | wc -l) metric names checked"
exit $status
