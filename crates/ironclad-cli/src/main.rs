//! `ironclad`: the chain of trust for connected devices, from key ceremony to device identity.
//! This file only parses arguments and dispatches; each subcommand lives in `cmd/`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod ca_ops;
mod ceremony;
mod cmd;
mod demo_firmware;
mod demo_media;
mod demo_messages;
mod demo_ota;
mod demo_pairing;
mod output;
mod pki_dir;
mod remote;
mod secrets;
mod station;

/// ironclad: keys that never leave a secure element, and the X.509 hierarchy that certifies them.
///
/// Start with `ironclad demo`, which runs the whole chain end to end in a temporary directory.
/// Every command has --help with an example; commands that print data take --json.
///
/// Secrets (store passphrases) are read from $IRONCLAD_PASSPHRASE, --passphrase-file or a
/// prompt, never from the command line.
#[derive(Parser, Debug)]
#[command(name = "ironclad", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// More log output (-v info, -vv debug); logs go to stderr and never contain secrets.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Demo(cmd::demo::DemoArgs),
    /// Certificate authorities: create the root and intermediates, publish CRLs.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Device certificates: issue from CSRs (one or a batch), revoke, verify, show.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Secure elements: create stores, generate keys inside, make CSRs.
    #[command(subcommand)]
    Se(SeCommand),
    /// Key ceremonies: run one from a script, verify its transcript, recover a backed-up root.
    #[command(subcommand)]
    Ceremony(CeremonyCommand),
    /// The factory line: production orders, provisioning under a quota, audit, console passwords.
    #[command(subcommand)]
    Factory(FactoryCommand),
    /// The device side: what runs on a provisioned device.
    #[command(subcommand)]
    Device(DeviceCommand),
    Serve(cmd::serve::ServeArgs),
    /// Operate a running server: API tokens, enrollments, manifest import, revocation.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Simulated fleets against a running server.
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Signed commands to devices: send, and see what each device reported.
    #[command(subcommand, name = "command")]
    Commands(CommandsCommand),
    /// Devices' encrypted log files: list uploads, read one decrypted.
    #[command(subcommand)]
    Logs(LogsCommand),
    /// The cloud's key vault: list managed keys (never their material), rotate them.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// A device owner's side (owner token): claim codes, your devices, their media keys.
    #[command(subcommand)]
    Owner(OwnerCommand),
    /// Media encryption: SAMPLE-AES HLS that players decrypt, elementary streams, G.711 frames.
    #[command(subcommand)]
    Media(MediaCommand),
    /// Firmware mastering: MCUboot images signed and encrypted with secure-element keys.
    #[command(subcommand)]
    Fw(FwCommand),
    /// Secure boot: a simulated device's A/B slots, trial boots, anti-rollback, recovery.
    #[command(subcommand)]
    Boot(BootCommand),
    /// Pairing (HomeKit-compatible): serve an accessory, or pair with one as a controller.
    #[command(subcommand)]
    Pair(PairCommand),
    /// Over-the-air updates: mastering keys, releases, staged rollouts.
    #[command(subcommand)]
    Ota(OtaCommand),
}

#[derive(Subcommand, Debug)]
enum OtaCommand {
    /// Firmware-verification (mastering) public keys releases are checked against.
    #[command(subcommand)]
    Key(OtaKeyCommand),
    EncryptionKey(cmd::ota_encryption_key::OtaEncryptionKeyArgs),
    /// Releases: upload a mastered image, list them and their devices.
    #[command(subcommand)]
    Release(OtaReleaseCommand),
    /// Rollouts to groups in stages: start, stage, pause, resume, abort, status.
    #[command(subcommand)]
    Rollout(OtaRolloutCommand),
}

#[derive(Subcommand, Debug)]
enum OtaKeyCommand {
    Add(cmd::ota_key_add::OtaKeyAddArgs),
    List(cmd::ota_key_list::OtaKeyListArgs),
}

#[derive(Subcommand, Debug)]
enum OtaReleaseCommand {
    Upload(cmd::ota_release_upload::OtaReleaseUploadArgs),
    List(cmd::ota_release_list::OtaReleaseListArgs),
}

#[derive(Subcommand, Debug)]
enum OtaRolloutCommand {
    Start(cmd::ota_rollout_start::OtaRolloutStartArgs),
    Stage(cmd::ota_rollout_stage::OtaRolloutStageArgs),
    Pause(cmd::ota_rollout_pause::OtaRolloutPauseArgs),
    Resume(cmd::ota_rollout_resume::OtaRolloutResumeArgs),
    Abort(cmd::ota_rollout_abort::OtaRolloutAbortArgs),
    Status(cmd::ota_rollout_status::OtaRolloutStatusArgs),
}

#[derive(Subcommand, Debug)]
enum PairCommand {
    Accessory(cmd::pair_accessory::PairAccessoryArgs),
    /// The controller (phone) side: pair, verify, read and write, delegate, manage pairings.
    #[command(subcommand)]
    Controller(PairControllerCommand),
}

#[derive(Subcommand, Debug)]
enum PairControllerCommand {
    Pair(cmd::pair_controller_pair::PairControllerPairArgs),
    Verify(cmd::pair_controller_verify::PairControllerVerifyArgs),
    List(cmd::pair_controller_list::PairControllerListArgs),
    Remove(cmd::pair_controller_remove::PairControllerRemoveArgs),
    Get(cmd::pair_controller_get::PairControllerGetArgs),
    Put(cmd::pair_controller_put::PairControllerPutArgs),
    Delegate(cmd::pair_controller_delegate::PairControllerDelegateArgs),
}

#[derive(Subcommand, Debug)]
enum FwCommand {
    Keygen(cmd::fw_keygen::FwKeygenArgs),
    Sign(cmd::fw_sign::FwSignArgs),
    Verify(cmd::fw_verify::FwVerifyArgs),
    Inspect(cmd::fw_inspect::FwInspectArgs),
    Decrypt(cmd::fw_decrypt::FwDecryptArgs),
    Rewrap(cmd::fw_rewrap::FwRewrapArgs),
}

#[derive(Subcommand, Debug)]
enum BootCommand {
    Sim(cmd::boot_sim::BootSimArgs),
}

#[derive(Subcommand, Debug)]
enum MediaCommand {
    EncryptHls(cmd::media_encrypt_hls::MediaEncryptHlsArgs),
    DecryptHls(cmd::media_decrypt_hls::MediaDecryptHlsArgs),
    EncryptEs(cmd::media_encrypt_es::MediaEncryptEsArgs),
    DecryptEs(cmd::media_decrypt_es::MediaDecryptEsArgs),
}

#[derive(Subcommand, Debug)]
enum FactoryCommand {
    Order(cmd::factory_order::FactoryOrderArgs),
    Provision(cmd::factory_provision::FactoryProvisionArgs),
    Report(cmd::factory_report::FactoryReportArgs),
    ConsolePassword(cmd::factory_console_password::FactoryConsolePasswordArgs),
}

#[derive(Subcommand, Debug)]
enum DeviceCommand {
    ConsoleLogin(cmd::device_console::DeviceConsoleLoginArgs),
    Run(cmd::device_run::DeviceRunArgs),
    Update(cmd::device_update::DeviceUpdateArgs),
}

#[derive(Subcommand, Debug)]
enum ServerCommand {
    /// Operator API tokens.
    #[command(subcommand)]
    Token(ServerTokenCommand),
    /// Enroll a family CA (group) or one device certificate.
    #[command(subcommand)]
    Enroll(ServerEnrollCommand),
    ImportManifest(cmd::server_import_manifest::ServerImportManifestArgs),
    Revoke(cmd::server_revoke::ServerRevokeArgs),
    Disable(cmd::server_disable::ServerDisableArgs),
    /// CRLs of enrolled group CAs: publish to the registry, fetch to mirror for outsiders.
    #[command(subcommand)]
    Crl(ServerCrlCommand),
}

#[derive(Subcommand, Debug)]
enum ServerCrlCommand {
    Publish(cmd::server_crl_publish::ServerCrlPublishArgs),
    Get(cmd::server_crl_get::ServerCrlGetArgs),
}

#[derive(Subcommand, Debug)]
enum ServerTokenCommand {
    Create(cmd::server_token_create::ServerTokenCreateArgs),
}

#[derive(Subcommand, Debug)]
enum ServerEnrollCommand {
    Group(Box<cmd::server_enroll_group::ServerEnrollGroupArgs>),
    Cert(cmd::server_enroll_cert::ServerEnrollCertArgs),
}

#[derive(Subcommand, Debug)]
enum CommandsCommand {
    Send(cmd::command_send::CommandSendArgs),
    List(cmd::command_list::CommandListArgs),
}

#[derive(Subcommand, Debug)]
enum LogsCommand {
    List(cmd::logs_list::LogsListArgs),
    Show(cmd::logs_show::LogsShowArgs),
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    List(cmd::keys_list::KeysListArgs),
    Rotate(cmd::keys_rotate::KeysRotateArgs),
}

#[derive(Subcommand, Debug)]
enum OwnerCommand {
    ClaimCode(cmd::owner_claim_code::OwnerClaimCodeArgs),
    Devices(cmd::owner_devices::OwnerDevicesArgs),
    MediaKey(cmd::owner_media_key::OwnerMediaKeyArgs),
}

#[derive(Subcommand, Debug)]
enum FleetCommand {
    Sim(cmd::fleet_sim::FleetSimArgs),
}

#[derive(Subcommand, Debug)]
enum CeremonyCommand {
    Run(cmd::ceremony_run::CeremonyRunArgs),
    Verify(cmd::ceremony_verify::CeremonyVerifyArgs),
    Recover(cmd::ceremony_recover::CeremonyRecoverArgs),
}

#[derive(Subcommand, Debug)]
enum CaCommand {
    Init(cmd::ca_init::CaInitArgs),
    Intermediate(cmd::ca_intermediate::CaIntermediateArgs),
    Crl(cmd::ca_crl::CaCrlArgs),
    List(cmd::ca_list::CaListArgs),
}

#[derive(Subcommand, Debug)]
enum CertCommand {
    Issue(cmd::cert_issue::CertIssueArgs),
    IssueBatch(cmd::cert_issue_batch::CertIssueBatchArgs),
    Revoke(cmd::cert_revoke::CertRevokeArgs),
    Verify(cmd::cert_verify::CertVerifyArgs),
    Show(cmd::cert_show::CertShowArgs),
}

#[derive(Subcommand, Debug)]
enum SeCommand {
    Init(cmd::se_init::SeInitArgs),
    Keygen(cmd::se_keygen::SeKeygenArgs),
    List(cmd::se_list::SeListArgs),
    Csr(cmd::se_csr::SeCsrArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Ca(CaCommand::Init(args)) => cmd::ca_init::run(args),
        Command::Ca(CaCommand::Intermediate(args)) => cmd::ca_intermediate::run(args),
        Command::Ca(CaCommand::Crl(args)) => cmd::ca_crl::run(args),
        Command::Ca(CaCommand::List(args)) => cmd::ca_list::run(args),
        Command::Cert(CertCommand::Issue(args)) => cmd::cert_issue::run(args),
        Command::Cert(CertCommand::IssueBatch(args)) => cmd::cert_issue_batch::run(args),
        Command::Cert(CertCommand::Revoke(args)) => cmd::cert_revoke::run(args),
        Command::Cert(CertCommand::Verify(args)) => cmd::cert_verify::run(args),
        Command::Cert(CertCommand::Show(args)) => cmd::cert_show::run(args),
        Command::Se(SeCommand::Init(args)) => cmd::se_init::run(args),
        Command::Se(SeCommand::Keygen(args)) => cmd::se_keygen::run(args),
        Command::Se(SeCommand::List(args)) => cmd::se_list::run(args),
        Command::Se(SeCommand::Csr(args)) => cmd::se_csr::run(args),
        Command::Ceremony(CeremonyCommand::Run(args)) => cmd::ceremony_run::run(args),
        Command::Ceremony(CeremonyCommand::Verify(args)) => cmd::ceremony_verify::run(args),
        Command::Ceremony(CeremonyCommand::Recover(args)) => cmd::ceremony_recover::run(args),
        Command::Factory(FactoryCommand::Order(args)) => cmd::factory_order::run(args),
        Command::Factory(FactoryCommand::Provision(args)) => cmd::factory_provision::run(args),
        Command::Factory(FactoryCommand::Report(args)) => cmd::factory_report::run(args),
        Command::Factory(FactoryCommand::ConsolePassword(args)) => cmd::factory_console_password::run(args),
        Command::Device(DeviceCommand::ConsoleLogin(args)) => cmd::device_console::run(args),
        Command::Device(DeviceCommand::Run(args)) => cmd::device_run::run(args),
        Command::Device(DeviceCommand::Update(args)) => cmd::device_update::run(args),
        Command::Ota(OtaCommand::Key(OtaKeyCommand::Add(args))) => cmd::ota_key_add::run(args),
        Command::Ota(OtaCommand::Key(OtaKeyCommand::List(args))) => cmd::ota_key_list::run(args),
        Command::Ota(OtaCommand::EncryptionKey(args)) => cmd::ota_encryption_key::run(args),
        Command::Ota(OtaCommand::Release(OtaReleaseCommand::Upload(args))) => {
            cmd::ota_release_upload::run(args)
        }
        Command::Ota(OtaCommand::Release(OtaReleaseCommand::List(args))) => cmd::ota_release_list::run(args),
        Command::Ota(OtaCommand::Rollout(OtaRolloutCommand::Start(args))) => {
            cmd::ota_rollout_start::run(args)
        }
        Command::Ota(OtaCommand::Rollout(OtaRolloutCommand::Stage(args))) => {
            cmd::ota_rollout_stage::run(args)
        }
        Command::Ota(OtaCommand::Rollout(OtaRolloutCommand::Pause(args))) => {
            cmd::ota_rollout_pause::run(args)
        }
        Command::Ota(OtaCommand::Rollout(OtaRolloutCommand::Resume(args))) => {
            cmd::ota_rollout_resume::run(args)
        }
        Command::Ota(OtaCommand::Rollout(OtaRolloutCommand::Abort(args))) => {
            cmd::ota_rollout_abort::run(args)
        }
        Command::Ota(OtaCommand::Rollout(OtaRolloutCommand::Status(args))) => {
            cmd::ota_rollout_status::run(args)
        }
        Command::Serve(args) => cmd::serve::run(args),
        Command::Server(ServerCommand::Token(ServerTokenCommand::Create(args))) => {
            cmd::server_token_create::run(args)
        }
        Command::Server(ServerCommand::Enroll(ServerEnrollCommand::Group(args))) => {
            cmd::server_enroll_group::run(*args)
        }
        Command::Server(ServerCommand::Enroll(ServerEnrollCommand::Cert(args))) => {
            cmd::server_enroll_cert::run(args)
        }
        Command::Server(ServerCommand::ImportManifest(args)) => cmd::server_import_manifest::run(args),
        Command::Server(ServerCommand::Revoke(args)) => cmd::server_revoke::run(args),
        Command::Server(ServerCommand::Disable(args)) => cmd::server_disable::run(args),
        Command::Server(ServerCommand::Crl(ServerCrlCommand::Publish(args))) => {
            cmd::server_crl_publish::run(args)
        }
        Command::Server(ServerCommand::Crl(ServerCrlCommand::Get(args))) => cmd::server_crl_get::run(args),
        Command::Fleet(FleetCommand::Sim(args)) => cmd::fleet_sim::run(args),
        Command::Commands(CommandsCommand::Send(args)) => cmd::command_send::run(args),
        Command::Commands(CommandsCommand::List(args)) => cmd::command_list::run(args),
        Command::Logs(LogsCommand::List(args)) => cmd::logs_list::run(args),
        Command::Logs(LogsCommand::Show(args)) => cmd::logs_show::run(args),
        Command::Keys(KeysCommand::List(args)) => cmd::keys_list::run(args),
        Command::Keys(KeysCommand::Rotate(args)) => cmd::keys_rotate::run(args),
        Command::Owner(OwnerCommand::ClaimCode(args)) => cmd::owner_claim_code::run(args),
        Command::Owner(OwnerCommand::Devices(args)) => cmd::owner_devices::run(args),
        Command::Owner(OwnerCommand::MediaKey(args)) => cmd::owner_media_key::run(args),
        Command::Media(MediaCommand::EncryptHls(args)) => cmd::media_encrypt_hls::run(args),
        Command::Media(MediaCommand::DecryptHls(args)) => cmd::media_decrypt_hls::run(args),
        Command::Media(MediaCommand::EncryptEs(args)) => cmd::media_encrypt_es::run(args),
        Command::Media(MediaCommand::DecryptEs(args)) => cmd::media_decrypt_es::run(args),
        Command::Fw(FwCommand::Keygen(args)) => cmd::fw_keygen::run(args),
        Command::Fw(FwCommand::Sign(args)) => cmd::fw_sign::run(args),
        Command::Fw(FwCommand::Verify(args)) => cmd::fw_verify::run(args),
        Command::Fw(FwCommand::Inspect(args)) => cmd::fw_inspect::run(args),
        Command::Fw(FwCommand::Decrypt(args)) => cmd::fw_decrypt::run(args),
        Command::Fw(FwCommand::Rewrap(args)) => cmd::fw_rewrap::run(args),
        Command::Boot(BootCommand::Sim(args)) => cmd::boot_sim::run(args),
        Command::Pair(PairCommand::Accessory(args)) => cmd::pair_accessory::run(args),
        Command::Pair(PairCommand::Controller(command)) => match command {
            PairControllerCommand::Pair(args) => cmd::pair_controller_pair::run(args),
            PairControllerCommand::Verify(args) => cmd::pair_controller_verify::run(args),
            PairControllerCommand::List(args) => cmd::pair_controller_list::run(args),
            PairControllerCommand::Remove(args) => cmd::pair_controller_remove::run(args),
            PairControllerCommand::Get(args) => cmd::pair_controller_get::run(args),
            PairControllerCommand::Put(args) => cmd::pair_controller_put::run(args),
            PairControllerCommand::Delegate(args) => cmd::pair_controller_delegate::run(args),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IRONCLAD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
