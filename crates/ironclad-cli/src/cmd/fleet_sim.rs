//! `ironclad fleet sim`: provision, enroll and authenticate a simulated fleet against a server.

use std::sync::Arc;

use anyhow::{Result, bail, ensure};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ironclad_agent::{FleetOptions, FleetProgress, FleetStage, ProgressFn, simulate_fleet};

use crate::output::{print_json, table};
use crate::remote::{OperatorArgs, runtime};

/// Simulate a fleet against a running server: provision, enroll, authenticate N devices.
///
/// N devices are provisioned through the PKI (a root and a line CA, each device's P-256 key
/// generated in its own in-memory secure element, CSRs issued in one batch), the line CA is
/// enrolled as a group with proof of possession through the operator API (a token of role
/// operator or admin), then every device opens its own mutual-TLS connection and answers a
/// challenge, --concurrency at a time.
///
/// Prints a summary (authentications/s, p50, p99); with --json the whole report. Fails if
/// any device was refused.
///
/// Example:
///   ironclad fleet sim --devices 1000 --server 127.0.0.1:8443 \
///       --server-ca ironclad-server-ca.pem --token-file operator.token
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct FleetSimArgs {
    /// Number of simulated devices.
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Devices authenticating at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Product family written into the device certificates.
    #[arg(long, default_value = "sim-camera")]
    family: String,
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the report as JSON (no progress bar).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: FleetSimArgs) -> Result<()> {
    ensure!(args.devices > 0, "--devices must be at least 1");
    let endpoint = args.operator.server.endpoint()?;
    let token = args.operator.token.resolve()?;
    let mut options = FleetOptions::new(args.devices);
    options.concurrency = args.concurrency.max(1);
    options.family = args.family.clone();

    let bar = ProgressBar::with_draw_target(Some(args.devices as u64), ProgressDrawTarget::stderr());
    if args.json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{msg:>13} [{elapsed_precise}] {wide_bar} {pos}/{len}") {
        bar.set_style(style);
    }
    let shown = bar.clone();
    let progress: ProgressFn = Arc::new(move |p: FleetProgress| {
        let name = match p.stage {
            FleetStage::Provision => "provisioning",
            FleetStage::Enroll => "enrolling",
            FleetStage::Authenticate => "authenticating",
        };
        shown.set_message(name);
        shown.set_length(p.total as u64);
        shown.set_position(p.done as u64);
    });
    let report = runtime()?.block_on(simulate_fleet(&endpoint, &token, &options, Some(progress)))?;
    bar.finish_and_clear();

    if args.json {
        print_json(&report)?;
    } else {
        let a = &report.auth;
        let rows = vec![
            vec!["devices".into(), report.devices.to_string()],
            vec!["provisioning".into(), format!("{:.2} s", report.provision_secs)],
            vec!["group enrollment".into(), report.enrollment_id.clone()],
            vec!["authenticated".into(), format!("{} of {}", a.authenticated, a.attempted)],
            vec!["full authentications/s".into(), format!("{:.0}", a.auths_per_sec)],
            vec![
                "latency p50 / p99 / max".into(),
                format!("{:.1} / {:.1} / {:.1} ms", a.p50_ms, a.p99_ms, a.max_ms),
            ],
        ];
        println!("{}", table(&["FLEET", "RESULT"], &rows));
        for (device, error) in &a.failures {
            println!("refused: {device}: {error}");
        }
    }
    if report.auth.failed > 0 {
        bail!("{} of {} devices failed to authenticate", report.auth.failed, report.auth.attempted);
    }
    Ok(())
}
