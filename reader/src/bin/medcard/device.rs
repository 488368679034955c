//! `medcard device setup-db|join|status|sync`: a device of a clinic of many devices
//! (docs/deployment.md). Without `device join` a data directory stays in single-device mode.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use reader::clinic::ClinicState;
use reader::clinic_state::PgClinic;
use reader::deployment::{self, Deployment, PgConfig, Role, StoreConfig, Tls};
use reader::keystore::Holds;
use reader::store::{S3Config, S3Store};
use reader::{Keystore, keystore};
use zeroize::Zeroizing;

use crate::cli::{self, CliError, DataArg, Output, print_json};

/// Where the clinic database is (shared by `setup-db` and `join`).
#[derive(Args, Clone, Debug)]
pub struct DbArgs {
    /// The clinic database: postgresql://USER@HOST:PORT/DBNAME (no password in it).
    #[arg(long = "db", value_name = "URL")]
    url: String,
    /// TLS to the database: require (default; the server certificate is checked) or disable
    /// (only for a server on this host or a test).
    #[arg(long = "db-tls", value_name = "MODE", default_value = "require", value_parser = parse_tls)]
    tls: Tls,
    /// The CA certificate (PEM) that signed the database server's certificate (default: the
    /// system's CAs).
    #[arg(long = "db-ca", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// A file holding the database password (`-`: read it from stdin). Never on the command
    /// line, where `ps` would show it.
    #[arg(long = "db-password-file", value_name = "FILE")]
    password_file: PathBuf,
}

fn parse_tls(s: &str) -> Result<Tls, String> {
    match s {
        "require" => Ok(Tls::Require),
        "disable" => Ok(Tls::Disable),
        _ => Err(format!("{s:?}: use require or disable")),
    }
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: deployment::DeploymentError| e.to_string())
}

impl DbArgs {
    fn config(&self) -> Result<PgConfig, CliError> {
        deployment::check_pg_url(&self.url).map_err(|e| CliError::Invalid(format!("--db: {e}")))?;
        let ca_file = match &self.ca {
            Some(p) => Some(std::fs::canonicalize(p).map_err(|source| CliError::Io { operation: "find", path: p.clone(), source })?),
            None => None,
        };
        Ok(PgConfig { url: self.url.clone(), tls: self.tls, ca_file })
    }

    fn password(&self) -> Result<Zeroizing<String>, CliError> {
        read_secret_file(&self.password_file, "database password")
    }
}

/// The clinic's record store in an S3-compatible object store (`join`).
#[derive(Args, Clone, Debug)]
pub struct S3Args {
    /// The object store's S3 API: http(s)://host:port; repeat it for each node (a request that
    /// cannot be served by one is tried on the next).
    #[arg(long = "s3-endpoint", value_name = "URL", requires_all = ["s3_bucket", "s3_key_id", "s3_secret_file"])]
    s3_endpoint: Vec<String>,
    /// The bucket.
    #[arg(long = "s3-bucket", value_name = "NAME")]
    s3_bucket: Option<String>,
    /// The region the server signs for (Garage: `garage`).
    #[arg(long = "s3-region", value_name = "REGION", default_value = "garage")]
    s3_region: String,
    /// The access key id.
    #[arg(long = "s3-key-id", value_name = "ID")]
    s3_key_id: Option<String>,
    /// A file holding the secret key (`-`: stdin; not with --db-password-file -).
    #[arg(long = "s3-secret-file", value_name = "FILE")]
    s3_secret_file: Option<PathBuf>,
}

impl S3Args {
    fn config(&self) -> Option<S3Config> {
        if self.s3_endpoint.is_empty() {
            return None;
        }
        Some(S3Config {
            endpoints: self.s3_endpoint.clone(),
            bucket: self.s3_bucket.clone().unwrap_or_default(),
            region: self.s3_region.clone(),
            access_key_id: self.s3_key_id.clone().unwrap_or_default(),
        })
    }
}

fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<String>, CliError> {
    let raw = if path.as_os_str() == "-" {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().read_line(&mut line).map_err(|e| CliError::Secret(format!("cannot read the {what}: {e}")))?;
        line
    } else {
        Zeroizing::new(String::from_utf8_lossy(&Zeroizing::new(cli::read_file(path)?)).into_owned())
    };
    let p = Zeroizing::new(raw.trim_end_matches(['\r', '\n']).to_owned());
    if p.is_empty() {
        return Err(CliError::Secret(format!("the {what} file is empty")));
    }
    Ok(p)
}

/// `medcard device join`.
#[derive(Args)]
pub struct JoinArgs {
    /// kiosk, bedside or admin.
    #[arg(long, value_name = "ROLE", value_parser = parse_role)]
    role: Role,
    /// This device's name in the clinic (1-64 of A-Z a-z 0-9 . _ -), in every audit entry it writes.
    #[arg(long, value_name = "ID")]
    device_id: String,
    /// The clinic keystore to copy in (another device's <data>/keys).
    #[arg(long, value_name = "DIR")]
    keys: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
    /// The clinic's record store: a directory every device mounts (default: <data>/records).
    #[arg(long, value_name = "DIR", conflicts_with = "s3_endpoint")]
    store_dir: Option<PathBuf>,
    #[command(flatten)]
    s3: S3Args,
    #[command(flatten)]
    data: DataArg,
    #[command(flatten)]
    format: Output,
}

#[derive(Subcommand)]
pub enum DeviceCommand {
    /// Create the clinic's tables and device roles in PostgreSQL (once per clinic, as the
    /// database owner; running it again changes nothing).
    #[command(
        after_help = "Example:\n  medcard device setup-db --db postgresql://medcard_owner@db.clinic:5432/medcard --db-ca db-ca.pem --db-password-file owner.pw\n\n\
        Creates the tables and the group roles medcard_admin, medcard_kiosk and medcard_bedside with their\n\
        rights (docs/deployment.md). Give each device a login role that is a member of one group."
    )]
    SetupDb {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Make this data directory a device of a clinic: its role, its name, the clinic database
    /// and record store. The connection is tested first; nothing is written if it fails.
    #[command(after_help = "Examples:\n  medcard device join --role kiosk --device-id kiosk-1 --keys /media/usb/keys \\\n    \
        --db postgresql://kiosk1@db.clinic/medcard --db-ca db-ca.pem --db-password-file kiosk1.pw --store-dir /mnt/records\n  \
        medcard device join --role bedside --device-id ward3-bed --keys /media/usb/keys --db ... --db-password-file -\n\n\
        --keys: a copy of the admin PC's <data>/keys directory (the clinic keystore), carried over a secure\n\
        channel; not needed when this data directory already holds the clinic (the admin PC itself). A kiosk or\n\
        admin copies it whole; a bedside device copies only clinic.json and ca.crt and makes a device key of\n\
        its own (it never holds the master secret or the issuer key).")]
    Join(Box<JoinArgs>),
    /// Show the mode, this device, the clinic database's health and the queued audit entries.
    Status {
        #[command(flatten)]
        format: Output,
        #[command(flatten)]
        data: DataArg,
    },
    /// Send this device's queued audit entries to the clinic log (each exactly once).
    Sync {
        #[command(flatten)]
        format: Output,
        #[command(flatten)]
        data: DataArg,
    },
}

pub fn run(cmd: DeviceCommand) -> Result<(), CliError> {
    match cmd {
        DeviceCommand::SetupDb { db } => setup_db(&db),
        DeviceCommand::Join(args) => join(&args),
        DeviceCommand::Status { format, data } => status(&data, format),
        DeviceCommand::Sync { format, data } => sync(&data, format),
    }
}

fn setup_db(db: &DbArgs) -> Result<(), CliError> {
    let cfg = db.config()?;
    let password = db.password()?;
    let mut pg = PgClinic::connect_unchecked(&cfg, &password, "setup").map_err(reader::clinic::ClinicError::from)?;
    let v = pg.setup().map_err(reader::clinic::ClinicError::from)?;
    println!("clinic database {} ready: schema version {v}; roles medcard_admin, medcard_kiosk, medcard_bedside", pg.target());
    Ok(())
}

fn join(args: &JoinArgs) -> Result<(), CliError> {
    let JoinArgs { role, device_id, keys, db, store_dir, s3, data, format } = args;
    let (role, keys, store_dir, format) = (*role, keys.as_deref(), store_dir.as_deref(), *format);
    deployment::check_device_id(device_id).map_err(|e| CliError::Invalid(format!("--device-id: {e}")))?;
    let dir = data.dir()?;
    if Deployment::load(&dir).map_err(reader::clinic::ClinicError::from)?.is_some() {
        return Err(CliError::Invalid(format!(
            "{} is already a device of a clinic ({}): use another data directory",
            dir.display(),
            deployment::DEVICE_FILE
        )));
    }
    let cfg = db.config()?;
    let password = db.password()?;
    let s3_cfg = s3.config();
    let s3_secret = match (&s3_cfg, &s3.s3_secret_file) {
        (Some(_), Some(f)) => Some(read_secret_file(f, "record store secret key")?),
        _ => None,
    };
    let store = match (store_dir, &s3_cfg) {
        (Some(s), _) => {
            let d = std::fs::canonicalize(s).map_err(|source| CliError::Io {
                operation: "find the record store",
                path: s.to_path_buf(),
                source,
            })?;
            Some(StoreConfig { dir: Some(d), s3: None })
        }
        (None, Some(cfg)) => {
            // The bucket first: wrong endpoints, keys or bucket are reported and nothing is written.
            let secret = s3_secret.as_ref().ok_or_else(|| CliError::Secret("--s3-secret-file is needed with --s3-endpoint".into()))?;
            let st = S3Store::open(cfg, secret)?;
            st.check()?;
            Some(StoreConfig { dir: None, s3: Some(cfg.clone()) })
        }
        (None, None) => None,
    };
    // The connection first: a wrong URL, password, or a database without tables writes nothing.
    let pg = PgClinic::connect(&cfg, &password, device_id).map_err(reader::clinic::ClinicError::from)?;
    let target = pg.target().to_owned();
    drop(pg);
    // Least privilege: a bedside device gets the clinic id and CA certificate and a key of its
    // own, never the master secret or the issuer key (docs/deployment.md).
    let ks = match (keys, role) {
        (Some(k), Role::Bedside) => Keystore::join_device(&dir, k)?,
        (Some(k), _) => Keystore::join(&dir, k)?,
        (None, _) => Keystore::open(&dir)?,
    };
    if role == Role::Bedside && ks.holds() != Holds::Device {
        return Err(CliError::Invalid(format!(
            "{} holds the clinic's master secret and issuer key; a bedside device must not: join from a new data \
             directory with --keys (it copies only the clinic id and CA certificate)",
            dir.display()
        )));
    }
    Deployment::save_password(&dir, &password).map_err(reader::clinic::ClinicError::from)?;
    if let Some(secret) = &s3_secret {
        Deployment::save_s3_secret(&dir, secret).map_err(reader::clinic::ClinicError::from)?;
    }
    let d = Deployment { format: deployment::FORMAT, device_id: device_id.to_owned(), role, postgres: cfg, store };
    d.save(&dir).map_err(reader::clinic::ClinicError::from)?;
    // The device's own database (cache, queue) now, so the first scan does not pay for it; the
    // join is the first entry this device writes to the clinic log.
    let state = ClinicState::open(&ks)?.with_actor(&cli::actor());
    let where_ = reader::deployment::open_store(&dir, Some(&d)).map(|s| s.describe()).unwrap_or_default();
    let ev = state.event(
        cli::now()?,
        reader::audit::EventKind::DeviceJoined,
        device_id,
        reader::audit::Outcome::Ok,
        format!("role={} database={target} store={where_}", role.as_str()),
    );
    state.audit(std::slice::from_ref(&ev))?;
    // The admin PC's trust list so far becomes the clinic's (a name there already is kept).
    if role == Role::Admin {
        let now = cli::now()?;
        for (name, bytes) in state.local_trust_files()? {
            match state.add_trust_file(&name, &bytes) {
                Ok(()) => {
                    let ev = state.event(
                        now,
                        reader::audit::EventKind::TrustAdded,
                        &name,
                        reader::audit::Outcome::Ok,
                        format!("trust/{name} sent to the clinic database at join"),
                    );
                    state.audit(std::slice::from_ref(&ev))?;
                }
                Err(reader::clinic::ClinicError::TrustExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let copies = state.refresh_local_copies(cli::now()?)?.unwrap_or_default();
    if format.json {
        print_json(&serde_json::json!({"device_id": device_id, "role": role.as_str(), "clinic_id": ks.clinic_id(), "database": target,
            "revoked_cards": copies.revocations.len(), "trusted_clinics": copies.trust_files.len()}));
    } else {
        println!("{device_id} joined clinic {} as {} (clinic database {target})", ks.clinic_id(), role.as_str());
    }
    Ok(())
}

fn status(data: &DataArg, format: Output) -> Result<(), CliError> {
    let dir = data.dir()?;
    let ks = keystore::Keystore::open(&dir)?;
    let state = ClinicState::new(&ks);
    let queued = state.queued_audit_entries()?;
    let Some(d) = state.deployment()? else {
        if format.json {
            print_json(&serde_json::json!({"mode": "single-device", "clinic_id": ks.clinic_id(), "queued_audit_entries": queued}));
        } else {
            println!("mode: single-device (clinic {}; everything in {})", ks.clinic_id(), dir.display());
        }
        return Ok(());
    };
    let health = state.with_clinic_db(|pg| Ok(pg.target().to_owned()));
    let (db_ok, db_text) = match &health {
        Ok(Some(t)) => (true, format!("reachable ({t})")),
        Ok(None) => (false, "not configured".to_owned()),
        Err(e) => (false, e.to_string()),
    };
    // Reachable: refresh the copy of the lists; not: show how old the copy is.
    let copies = match db_ok {
        true => state.refresh_local_copies(cli::now()?).ok().flatten(),
        false => None,
    };
    let copies = match copies {
        Some(c) => c,
        None => state.local_copies()?,
    };
    let refreshed = copies.refreshed_at.map_or_else(|| "never".to_owned(), qr::time::format_rfc3339);
    let lists_text = format!(
        "{} revoked card{}, {} trusted clinic{}; this device's copy refreshed {refreshed}",
        copies.revocations.len(),
        if copies.revocations.len() == 1 { "" } else { "s" },
        copies.trust_files.len(),
        if copies.trust_files.len() == 1 { "" } else { "s" }
    );
    let store = match reader::deployment::open_store(&dir, Some(&d)) {
        Ok(s) => s.describe(),
        Err(e) => format!("unusable: {e}"),
    };
    if format.json {
        print_json(&serde_json::json!({
            "mode": "clinic", "clinic_id": ks.clinic_id(), "device_id": d.device_id, "role": d.role.as_str(),
            "database": {"ok": db_ok, "status": db_text, "tls": matches!(d.postgres.tls, Tls::Require)},
            "lists": {"revoked_cards": copies.revocations.len(), "trusted_clinics": copies.trust_files.len(), "refreshed_at": copies.refreshed_at},
            "store": store, "queued_audit_entries": queued,
        }));
    } else {
        println!("mode: clinic (clinic {})", ks.clinic_id());
        println!("device: {} ({})", d.device_id, d.role.as_str());
        println!("clinic database: {db_text}");
        println!("revocation and trust lists: {lists_text}");
        println!("record store: {store}");
        println!("audit entries queued on this device: {queued}");
    }
    Ok(())
}

fn sync(data: &DataArg, format: Output) -> Result<(), CliError> {
    let ks = data.keystore()?;
    let state = ClinicState::new(&ks);
    if !state.is_clinic()? {
        return Err(CliError::Invalid("this data directory is a single device: there is no clinic log to send entries to".into()));
    }
    let sent = state.flush_audit_queue(cli::now()?)?;
    state.refresh_local_copies(cli::now()?)?;
    if format.json {
        print_json(&serde_json::json!({"sent": sent}));
    } else {
        println!("{sent} queued audit entr{} sent to the clinic log", if sent == 1 { "y" } else { "ies" });
    }
    Ok(())
}
