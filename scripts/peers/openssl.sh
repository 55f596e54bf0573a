# Peer: OpenSSL CLI (certificate, CSR and CRL interop). Sourced by scripts/test.
need_apt openssl openssl
