#!/bin/sh
# Installs the Debian packages proftpy needs to build and test, when they are missing and we are root:
#   libcap-dev  python-prctl's C extension does not build without it
#   lftp        used by the integration tests as a real FTP client
# As a normal user it only says what is missing.
set -e
missing=""
[ -f /usr/include/sys/capability.h ] || missing="$missing libcap-dev"
command -v lftp >/dev/null 2>&1 || missing="$missing lftp"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
command -v wget >/dev/null 2>&1 || missing="$missing wget"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq $missing >/dev/null
else
    echo "note: missing Debian packages:$missing (run 'make' as root, or apt-get install them)" >&2
fi
