//! What the `ota` subcommands share: how releases, rollouts and device states are printed.

use ironclad_proto::ota::{DeviceOtaInfo, ReleaseInfo, RolloutInfo, RolloutStatus};

use crate::output::table;

/// One line per release.
pub(crate) fn releases_table(releases: &[ReleaseInfo]) -> String {
    let rows: Vec<Vec<String>> = releases
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.version.clone(),
                r.security_counter.to_string(),
                r.product_class.clone(),
                r.size.to_string(),
                r.wrap.clone(),
                r.note.clone(),
            ]
        })
        .collect();
    table(&["ID", "VERSION", "COUNTER", "PRODUCT CLASS", "BYTES", "KEY WRAP", "NOTE"], &rows)
}

/// A release in a few lines.
pub(crate) fn describe_release(r: &ReleaseInfo) -> String {
    format!(
        "release {}: version {} (security counter {}), product class {}\n  {} bytes, SHA-256 {}\n  \
         image hash {}, signed by key {}, content key wrap {}",
        r.id,
        r.version,
        r.security_counter,
        r.product_class,
        r.size,
        r.sha256,
        r.image_hash,
        r.signer,
        r.wrap
    )
}

/// One line per rollout.
pub(crate) fn rollouts_table(rollouts: &[RolloutInfo]) -> String {
    let rows: Vec<Vec<String>> = rollouts
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.release_id.clone(),
                r.version.clone(),
                r.group.clone(),
                format!("{}%", r.percentage),
                r.state.to_string(),
            ]
        })
        .collect();
    table(&["ID", "RELEASE", "VERSION", "GROUP", "STAGE", "STATE"], &rows)
}

/// A rollout in one line.
pub(crate) fn describe_rollout(r: &RolloutInfo) -> String {
    format!(
        "rollout {}: release {} ({}) to group {} at {}%, {}",
        r.id, r.release_id, r.version, r.group, r.percentage, r.state
    )
}

/// Device states.
pub(crate) fn devices_table(devices: &[DeviceOtaInfo]) -> String {
    let rows: Vec<Vec<String>> =
        devices.iter().map(|d| vec![d.device_id.clone(), d.state.to_string(), d.detail.clone()]).collect();
    table(&["DEVICE", "STATE", "DETAIL"], &rows)
}

/// A rollout with its devices.
pub(crate) fn describe_status(s: &RolloutStatus) -> String {
    let counts: Vec<String> = s.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let mut out = describe_rollout(&s.rollout);
    out.push_str(&format!(
        "\ndevices: {}",
        if counts.is_empty() { "none offered yet".to_owned() } else { counts.join(", ") }
    ));
    if !s.devices.is_empty() {
        out.push('\n');
        out.push_str(&devices_table(&s.devices));
    }
    out
}
