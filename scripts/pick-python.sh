#!/bin/sh
# Prints the interpreter `make` builds the venv with: the first of PREFERRED that runs here and is >= 3.11.
# Order (docs/performance.md, "Interpreters"): 3.13 and 3.12 measured better than 3.11 (immortal objects: sessions
# half the size, a quarter less CPU per login), the newest first; 3.11 is still supported. A pyenv install counts
# even when its shim is not active.
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
