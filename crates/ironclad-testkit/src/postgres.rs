//! Throwaway PostgreSQL clusters for storage tests: `initdb` into a temporary directory, `pg_ctl
//! start` on a free loopback port (no Unix socket outside that directory, trust authentication
//! for the `ironclad` superuser), torn down on drop.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the cluster directory is
//! given to the `postgres` user and the server commands run through `runuser -u postgres`.
//!
//! Debian installs the server binaries in `/usr/lib/postgresql/<version>/bin`, not on PATH; the
//! newest version there is used (or `IRONCLAD_PG_BIN`, or `initdb` on PATH elsewhere). Missing
//! binaries skip the test unless `IRONCLAD_REQUIRE_PEERS=1`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The superuser of every test cluster (trust authentication on loopback).
pub const USER: &str = "ironclad";

/// A running throwaway cluster.
#[derive(Debug)]
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
}

/// The directory holding `initdb`, `pg_ctl` and `createdb`, if PostgreSQL is installed.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("IRONCLAD_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PgCluster {
    /// Starts a new cluster. `None` (the test skips) when PostgreSQL is not installed, unless
    /// `IRONCLAD_REQUIRE_PEERS=1`, which panics with what to install.
    pub fn start() -> Option<Self> {
        let Some(bin) = bin_dir() else {
            if crate::peers_required() {
                panic!(
                    "PostgreSQL (initdb) not found in /usr/lib/postgresql/*/bin or on PATH and \
                     IRONCLAD_REQUIRE_PEERS=1; run scripts/test to install Debian's postgresql"
                );
            }
            eprintln!("SKIP: PostgreSQL not installed (set IRONCLAD_REQUIRE_PEERS=1 to fail instead)");
            return None;
        };
        let run_as = running_as_root().then_some("postgres");
        let dir = unique_temp_dir();
        std::fs::create_dir_all(&dir).expect("create PostgreSQL test directory");
        if let Some(user) = run_as {
            let ok =
                Command::new("chown").arg(format!("{user}:")).arg(&dir).status().is_ok_and(|s| s.success());
            assert!(ok, "chown {user} {} failed", dir.display());
        }
        let mut cluster = PgCluster { dir, bin, port: 0, run_as };
        let data = cluster.data_dir();
        cluster.server_cmd(
            "initdb",
            &["-D", path_str(&data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync"],
        );
        for attempt in 0..5 {
            cluster.port = free_port();
            if cluster.pg_ctl_start() {
                return Some(cluster);
            }
            eprintln!("pg_ctl start failed on port {} (attempt {attempt}), retrying", cluster.port);
        }
        let log = std::fs::read_to_string(cluster.dir.join("server.log")).unwrap_or_default();
        panic!("PostgreSQL did not start:\n{log}");
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq-style connection string for database `dbname`.
    pub fn url(&self, dbname: &str) -> String {
        format!("host=127.0.0.1 port={} user={USER} dbname={dbname}", self.port)
    }

    /// Creates a new, empty database with a unique name and returns its connection string.
    pub fn fresh_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let port = self.port.to_string();
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", USER, &name])
            .output()
            .expect("run createdb");
        assert!(out.status.success(), "createdb failed: {}", String::from_utf8_lossy(&out.stderr));
        self.url(&name)
    }

    /// Starts the server again after [`PgCluster::stop`], on the same port.
    pub fn restart(&self) {
        assert!(self.pg_ctl_start(), "pg_ctl start failed (see above)");
    }

    fn pg_ctl_start(&self) -> bool {
        let data = self.data_dir();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -F -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        self.try_server_cmd(
            "pg_ctl",
            &["-D", path_str(&data), "-l", path_str(&log), "-w", "-t", "60", "-o", &opts, "start"],
        )
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`), as a crash would.
    pub fn stop(&self) {
        let data = self.data_dir();
        self.try_server_cmd("pg_ctl", &["-D", path_str(&data), "-m", "immediate", "-w", "stop"]);
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn try_server_cmd(&self, tool: &str, args: &[&str]) -> bool {
        let out = self.command(tool).args(args).stdin(Stdio::null()).output();
        match out {
            Ok(o) if o.status.success() => true,
            Ok(o) => {
                eprintln!(
                    "{tool} {args:?}: {}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                false
            }
            Err(e) => {
                eprintln!("cannot run {tool}: {e}");
                false
            }
        }
    }

    fn server_cmd(&self, tool: &str, args: &[&str]) {
        assert!(self.try_server_cmd(tool, args), "{tool} failed (see above)");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One cluster shared by every test of this test process, created on first use. It is stopped
/// and removed by a small watcher process when the test process exits (statics are never
/// dropped). `None` when PostgreSQL is missing and not required.
pub fn shared() -> Option<&'static PgCluster> {
    static CLUSTER: OnceLock<Option<PgCluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            let cluster = PgCluster::start()?;
            cluster.spawn_reaper();
            Some(cluster)
        })
        .as_ref()
}

/// A fresh database on the [`shared`] cluster, as a connection string.
pub fn fresh_database() -> Option<String> {
    shared().map(PgCluster::fresh_database)
}

impl PgCluster {
    fn spawn_reaper(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match self.run_as {
            Some(user) => format!("runuser -u {user} -- '{}'", pg_ctl.display()),
            None => format!("'{}'", pg_ctl.display()),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} -D '{data}' -m immediate stop; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data_dir().display(),
            dir = self.dir.display(),
        );
        let spawned = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Err(e) = spawned {
            eprintln!(
                "warning: cannot start the PostgreSQL reaper ({e}); stop {} by hand",
                self.dir.display()
            );
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free loopback port")
}

fn unique_temp_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    std::env::temp_dir().join(format!(
        "ironclad-pg-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}
