#!/bin/sh
# Prints the interpreter `make` builds the venv with: the first of PREFERRED that runs here and is >= 3.11.
# Order (docs/performance.md, "Interpreters"): 3.13 and 3.12 measured better than 3.11 (immortal objects: sessions
# half the size, a quarter less CPU per login), the newest first; 3.11 is still supported. A pyenv install counts
# even when its shim is not active. An optimised build that `make python` made (scripts/build-python.sh, under
# /opt/proftpy, or BUILT_PYTHONS) comes first: it measured 10-20 % faster on the command path ("An optimised
# interpreter"); the newest that runs wins.
for py in $(ls -d "${BUILT_PYTHONS:-/opt/proftpy}"/python-3.1[1-9]*/bin/python3.1[1-9] 2>/dev/null | sort -rV); do
    if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
        echo "$py"
        exit 0
    fi
done
PREFERRED="3.13 3.12 3.11"
pyenv_root=$(pyenv root 2>/dev/null || true)
for v in $PREFERRED; do
    for py in "python$v" $( [ -n "$pyenv_root" ] && ls -d "$pyenv_root"/versions/$v*/bin/python$v 2>/dev/null | sort -r ); do
        if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
            command -v "$py"
            exit 0
        fi
    done
done
echo python3
