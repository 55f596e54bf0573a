//! One file per subcommand: its arguments (with --help text and an example) and `run()`.

pub(crate) mod ca_crl;
pub(crate) mod ca_init;
pub(crate) mod ca_intermediate;
pub(crate) mod ca_list;
pub(crate) mod ceremony_recover;
pub(crate) mod ceremony_run;
pub(crate) mod ceremony_verify;
pub(crate) mod cert_issue;
pub(crate) mod cert_issue_batch;
pub(crate) mod cert_revoke;
pub(crate) mod cert_show;
pub(crate) mod cert_verify;
pub(crate) mod demo;
pub(crate) mod device_console;
pub(crate) mod factory_console_password;
pub(crate) mod factory_order;
pub(crate) mod factory_provision;
pub(crate) mod factory_report;
pub(crate) mod se_csr;
pub(crate) mod se_init;
pub(crate) mod se_keygen;
pub(crate) mod se_list;
