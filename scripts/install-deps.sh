#!/bin/sh
# Installs the Debian packages proftpy needs to build and test, when they are missing and we are root:
#   libcap-dev     python-prctl's C extension does not build without it
#   lftp curl wget the integration tests' real FTP clients (openssl s_client too; `openssl ocsp` answers the OCSP stapling tests)
#   redis-server   shared bans, TLS sessions (TLSSessionCache redis:), OCSP responses (TLSStaplingCache redis:) and mod_wrap2's redis: tables across nodes (tests start their own on a private loopback port)
#   haproxy        the cluster test's load balancer (PROXY protocol)
#   proftpd-basic  Debian's ProFTPD, for interoperability tests and `make bench`
#   proftpd-mod-sqlite  its mod_sql and mod_sql_sqlite (shared objects only), for compare_proftpd.py's sql-* scenarios
#   proftpd-mod-crypto  its mod_sql_passwd, for the sql-passwd-* scenarios; its mod_tls_shmcache and
#                       mod_tls_memcache, for the stapling-* scenarios and the stapling side-by-side tests
#   proftpd-mod-ldap    its mod_ldap (a shared object only), for compare_proftpd.py's ldap-* scenarios
#   postgresql          PostgreSQL 15's server programs: mod_sql_postgres's tests run their own cluster (initdb in a
#                       temporary directory, a free loopback port; the packaged cluster is never started)
#   proftpd-mod-pgsql   its mod_sql_postgres, for compare_proftpd.py's sql-pg-* scenarios
#   mariadb-server      MariaDB's mariadbd and mariadb-install-db: mod_sql_mysql's tests run their own server (a
#                       temporary datadir, a free loopback port; the packaged service is never started); its
#                       auth_ed25519 plugin for the ed25519 logins
#   proftpd-mod-mysql   its mod_sql_mysql, for compare_proftpd.py's sql-my-* scenarios
#   slapd ldap-utils    OpenLDAP's server and ldapadd: mod_ldap's tests start their own slapd (never the packaged
#                       service) on a private loopback port
#   libsasl2-modules    Cyrus SASL's SCRAM, DIGEST-MD5, CRAM-MD5, PLAIN and LOGIN plugins (only Recommended by slapd's
#                       libsasl2-2): the test slapd's side of mod_ldap's LDAPUseSASL binds, and ProFTPD's in compare
#   libsodium23    argon2 for SQLAuthTypes argon2 (proftpy calls libsodium, as ProFTPD does); scrypt's test oracle;
#                  mod_sftp's ChaCha20-Poly1305, X25519 and Ed25519; mod_sql_mysql's MariaDB ed25519 login
#   openssh-client mod_sftp's tests drive OpenSSH's sftp and make keys with ssh-keygen (curl's libssh2 is the other
#                  client), hostbased logins sign through its ssh-keysign; proftpd-mod-crypto above has ProFTPD's
#                  mod_sftp.so and mod_sftp_sql.so
#   util-linux     setsid: the password tests give sftp no terminal, so it asks SSH_ASKPASS; unshare: the hostbased
#                  tests give ssh-keysign a test /etc/ssh in a private mount namespace
#   chromium       the status page test (headless)
#   prometheus     its promtool checks the exporter's text format (the Prometheus server itself is never started)
#   iproute2       ss: the mod_qos tests read the TOS byte of the daemon's sockets
#   acl            setfacl: the mod_facl tests give a file a POSIX ACL
#   libwrap0       TCP wrappers' library: the oracle the hosts.allow/hosts.deny matcher's tests compare against
#   oidentd        a real RFC 1413 identd for the mod_ident tests (run by the test in the foreground, on 127.0.0.113)
#   memcached      shared bans, TLS sessions and OCSP responses (TLSSessionCache/TLSStaplingCache memcache:) (tests start their
#                  own on a private loopback port)
#   libmemcached11 Debian's libmemcached (ProFTPD's; comes with proftpd-core): the MemcacheReplicas test asks it
#                  through ctypes where it puts a key's copies
#   freeradius freeradius-utils  a RADIUS server and radclient for mod_radius's tests and compare_proftpd.py's
#                  radius-* scenarios (the tests run their own instance from a copy of its configuration)
#   dnsmasq-base   a DNS server with TXT records for mod_dnsbl's reason test (run by the test on port 53 of a private
#                  network namespace it creates, never the machine's; the package has no service)
#   vsftpd         fetched and unpacked (not installed) for `make bench`, see below
# Packaged services are never started: while installing, a policy-rc.d refuses every start (Debian's mechanism,
# kept if the machine already has one), and the tests run their own instances on free loopback ports.
# As a normal user it only says what is missing.
set -e
missing=""
[ -f /usr/include/sys/capability.h ] || missing="$missing libcap-dev"
command -v lftp >/dev/null 2>&1 || missing="$missing lftp"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
command -v wget >/dev/null 2>&1 || missing="$missing wget"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v haproxy >/dev/null 2>&1 || missing="$missing haproxy"
[ -x /usr/sbin/proftpd ] || missing="$missing proftpd-basic"
[ -f /usr/lib/proftpd/mod_sql_sqlite.so ] || missing="$missing proftpd-mod-sqlite"
[ -f /usr/lib/proftpd/mod_sql_passwd.so ] || missing="$missing proftpd-mod-crypto"
[ -f /usr/lib/proftpd/mod_ldap.so ] || missing="$missing proftpd-mod-ldap"
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing="$missing postgresql"
[ -f /usr/lib/proftpd/mod_sql_postgres.so ] || missing="$missing proftpd-mod-pgsql"
[ -x /usr/sbin/mariadbd ] || missing="$missing mariadb-server"
[ -f /usr/lib/proftpd/mod_sql_mysql.so ] || missing="$missing proftpd-mod-mysql"
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || missing="$missing slapd"
command -v ldapadd >/dev/null 2>&1 || missing="$missing ldap-utils"
ls /usr/lib/*/sasl2/libscram.so >/dev/null 2>&1 || missing="$missing libsasl2-modules"
ldconfig -p 2>/dev/null | grep -q 'libsodium\.so\.23 ' || missing="$missing libsodium23"
command -v sftp >/dev/null 2>&1 || missing="$missing openssh-client"
[ -x /usr/lib/openssh/ssh-keysign ] || missing="$missing openssh-client"
command -v setsid >/dev/null 2>&1 || missing="$missing util-linux"
command -v unshare >/dev/null 2>&1 || missing="$missing util-linux"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v setfacl >/dev/null 2>&1 || missing="$missing acl"
command -v ss >/dev/null 2>&1 || missing="$missing iproute2"
ldconfig -p 2>/dev/null | grep -q 'libwrap\.so\.0 ' || missing="$missing libwrap0"
[ -x /usr/sbin/oidentd ] || missing="$missing oidentd"
[ -x /usr/bin/memcached ] || missing="$missing memcached"
ldconfig -p 2>/dev/null | grep -q 'libmemcached\.so\.11 ' || missing="$missing libmemcached11"
command -v freeradius >/dev/null 2>&1 || missing="$missing freeradius"
command -v radclient >/dev/null 2>&1 || missing="$missing freeradius-utils"
[ -x /usr/sbin/dnsmasq ] || missing="$missing dnsmasq-base"
# vsftpd for `make bench` only: Debian's package unpacked (dpkg -x) into a private directory, never installed as a
# service (scripts/bench.py find_vsftpd does the same when it runs first)
vsftpd_dir="${XDG_CACHE_HOME:-$HOME/.cache}/proftpy-bench/vsftpd"
if [ "$(id -u)" = 0 ] && [ ! -x /usr/sbin/vsftpd ] && [ ! -x "$vsftpd_dir/usr/sbin/vsftpd" ] \
        && command -v apt-get >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download -q vsftpd >/dev/null 2>&1); then
        mkdir -p "$vsftpd_dir" && dpkg -x "$tmp"/vsftpd_*.deb "$vsftpd_dir"
    else
        echo "note: could not fetch vsftpd's .deb; make bench measures without it" >&2
    fi
    rm -rf "$tmp"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    policy=/usr/sbin/policy-rc.d
    ours=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && ours=1
    fi
    apt-get update -qq || true
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    [ -n "$ours" ] && rm -f "$policy"
    exit 0
else
    echo "note: missing Debian packages:$missing (run 'make' as root, or apt-get install them)" >&2
fi
