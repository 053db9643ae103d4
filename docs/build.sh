#!/usr/bin/env sh
# Build the documentation as CI does: offline, warnings are errors, every example executed.
#   pip install -r docs/requirements.txt   (once)
#   sh docs/build.sh                        -> open docs/_build/html/index.html
# Real model outputs are read from ../shared/data (or $CALKIT_SHARED_DATA) when present;
# without them the guide and the gallery fall back to the example data shipped with calkit.
set -eu
cd "$(dirname "$0")"
exec python -m sphinx -W --keep-going -E -b html -d _build/doctrees . _build/html "$@"
