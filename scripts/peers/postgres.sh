# Peer: PostgreSQL server binaries (initdb, pg_ctl, createdb) for the server's storage suite,
# which starts a throwaway cluster per test process. Sourced by scripts/test.
# Debian keeps initdb in /usr/lib/postgresql/<version>/bin, not on PATH, so check there.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null 2>&1; then
  apt_packages+=(postgresql)
fi
