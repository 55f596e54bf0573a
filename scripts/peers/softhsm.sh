# Peer: SoftHSM2 (a PKCS#11 token in files) and OpenSC's pkcs11-tool, for the PKCS#11 backend's
# tests. Tests make their own token directories (SOFTHSM2_CONF per test); nothing global is
# configured here. Sourced by scripts/test.
need_apt softhsm2-util softhsm2
need_apt pkcs11-tool opensc
