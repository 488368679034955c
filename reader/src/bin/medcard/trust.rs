//! `medcard trust list|fingerprint|add|remove|export|import`: the issuer keys whose card
//! credentials and QR codes this clinic accepts (its own CA plus other clinics' CA certificates
//! or keys in `<data>/trust/`). The checks, file names and audit entries are the library's
//! (`reader::trust`); this module parses flags and prints.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use reader::trust::{self, Trusted};

use reader::export::ExportError;

use crate::cli::{self, CliError, DataArg, Output, print_json};

#[derive(Subcommand)]
pub enum TrustCommand {
    /// List trusted issuers (this clinic first) with their clinic ids, kids and fingerprints.
    #[command(after_help = "Examples:\n  medcard trust list\n  medcard trust list --json")]
    List {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// Show the clinic id and SHA-256 fingerprint to read over the phone: this clinic's CA
    /// certificate, or the certificate, key or trust bundle in FILE.
    #[command(after_help = "Examples:\n  medcard trust fingerprint                      # read this to the other clinic\n  \
                            medcard trust fingerprint clinic-a-bundle.pem  # what an import would show\n\n\
                            The fingerprint of a certificate is SHA-256 over its DER (as `openssl x509 -noout -fingerprint -sha256`);\n\
                            of a bare key, SHA-256 over its SubjectPublicKeyInfo DER.")]
    Fingerprint {
        /// A certificate, key or trust bundle (default: this clinic's CA certificate).
        file: Option<PathBuf>,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// Trust another clinic: a CA certificate (PEM/DER), a public key (SPKI PEM/DER) or a
    /// COSE_Key. Shows the clinic id and fingerprint, and stores the entry (as
    /// trust/<clinic-id>.pem) only with --fingerprint, read to you by that clinic.
    #[command(
        after_help = "Examples:\n  medcard trust add clinic-b.pem                 # shows clinic-b's fingerprint, trusts nothing\n  \
                            medcard trust add clinic-b.pem --fingerprint 3f9a…c2   # as clinic B read it over the phone\n  \
                            medcard trust add lab.pub.pem --clinic-id lab-1 --fingerprint 71d0…9e\n\n\
                            A bare key names no clinic: --clinic-id says which clinic's key it is."
    )]
    Add {
        /// The file to trust.
        file: PathBuf,
        /// The SHA-256 fingerprint the other clinic read to you (64 hex digits, colons allowed).
        #[arg(long, value_name = "HEX")]
        fingerprint: Option<String>,
        /// The clinic the key belongs to (required for a bare key; for a certificate it must be
        /// the one the certificate names).
        #[arg(long, value_name = "ID")]
        clinic_id: Option<String>,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// Stop trusting an entry (by the name `trust list` shows).
    #[command(after_help = "Examples:\n  medcard trust remove clinic-b.pem")]
    Remove {
        /// The entry's name.
        name: String,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
    /// Write this clinic's CA certificate (PEM), or a signed trust bundle, for other clinics to
    /// `trust add`/`import`. Prints the fingerprint to read to them over the phone.
    #[command(after_help = "Examples:\n  medcard trust export --out st-mary.pem                 # the CA certificate\n  \
                            medcard trust export --bundle --out st-mary.bundle     # signed: this clinic only\n  \
                            medcard trust export --all --out st-mary-all.bundle    # signed: and every clinic it trusts\n\n\
                            A bundle is a COSE_Sign1 by this clinic's issuer key over its id, its CA certificate and\n\
                            (with --all) its trust entries; docs/clinic-keys.md \"Trust bundles\" has the byte format.")]
    Export {
        /// Output file (default: standard output): a new file (mode 0600), never over an existing
        /// file, never inside the data directory.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Write a signed trust bundle instead of the bare certificate.
        #[arg(long)]
        bundle: bool,
        /// A signed trust bundle that also lists every clinic this one trusts (an importer takes
        /// them only with `--include-partners`).
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Trust the clinic that signed a trust bundle (`trust export --bundle`/`--all`): shows its
    /// clinic id and CA fingerprint, and trusts it only with --fingerprint. The clinics it trusts
    /// in turn are listed and imported only with --include-partners.
    #[command(
        after_help = "Examples:\n  medcard trust import st-mary.bundle                        # shows id and fingerprint, trusts nothing\n  \
                            medcard trust import st-mary.bundle --fingerprint 3f9a…c2  # trusts St Mary only\n  \
                            medcard trust import st-mary-all.bundle --fingerprint 3f9a…c2 --include-partners"
    )]
    Import {
        /// The signed trust bundle (PEM `MEDCARD TRUST BUNDLE`, or its bytes).
        file: PathBuf,
        /// The SHA-256 fingerprint of the exporter's CA certificate, as it read it to you.
        #[arg(long, value_name = "HEX")]
        fingerprint: Option<String>,
        /// Also trust the clinics the exporter trusts (each is listed).
        #[arg(long)]
        include_partners: bool,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        format: Output,
    },
}

fn read(file: &Path) -> Result<Vec<u8>, CliError> {
    Ok(reader::fsutil::read_limited(file, 1024 * 1024)?)
}

fn label(file: &Path) -> String {
    file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned())
}

fn trusted_json(t: &Trusted) -> serde_json::Value {
    serde_json::json!({
        "name": t.name, "clinic_id": t.clinic_id, "fingerprint": t.fingerprint.to_string(), "kid": t.kid,
        "partner_of": t.partner_of, "unchanged": t.unchanged,
    })
}

fn trusted_line(t: &Trusted) -> String {
    let how = if t.unchanged { "already trusted" } else { "trusted" };
    let via = t.partner_of.as_ref().map(|x| format!(" (partner of {x})")).unwrap_or_default();
    format!("{how} {} as {}{via}: fingerprint {}, kid {}", t.clinic_id, t.name, t.fingerprint, t.kid)
}

pub fn run(command: TrustCommand) -> Result<(), CliError> {
    match command {
        TrustCommand::List { data, format } => {
            let ks = data.keystore()?;
            let own = trust::own_entry(&ks)?;
            let mut rows = vec![serde_json::json!({
                "name": "(this clinic)",
                "clinic_id": ks.clinic_id(),
                "issuer": ks.clinic_id(),
                "kid": hex::encode(ks.issuer_kid()),
                "fingerprint": own.fingerprint.to_string(),
            })];
            for (name, bytes) in data.state()?.1.trust_files()? {
                let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
                let issuer = qr::trust::parse_trust_file(&bytes, &name).ok().and_then(|k| k.first().map(|e| e.issuer.clone()));
                match trust::entry_from_file(&bytes, None, &name).or_else(|_| trust::entry_from_file(&bytes, Some(stem), &name)) {
                    Ok(e) => rows.push(serde_json::json!({
                        "name": name, "clinic_id": e.clinic_id, "issuer": issuer.unwrap_or_default(), "kid": e.kid,
                        "fingerprint": e.fingerprint.to_string(),
                    })),
                    Err(e) => rows.push(serde_json::json!({ "name": name, "error": e.to_string() })),
                }
            }
            if format.json {
                print_json(&serde_json::Value::Array(rows));
            } else {
                for r in &rows {
                    let s = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
                    if r.get("error").is_some() {
                        println!("{}\tUNUSABLE: {}", s("name"), s("error"));
                    } else {
                        println!("{}\tclinic {}\tkid {}\tfingerprint {}", s("name"), s("clinic_id"), s("kid"), s("fingerprint"));
                    }
                }
            }
            Ok(())
        }
        TrustCommand::Fingerprint { file, data, format } => {
            let (clinic_id, what, fp, partners) = match file {
                None => {
                    let ks = data.keystore()?;
                    let e = trust::own_entry(&ks)?;
                    (e.clinic_id, "CA certificate (this clinic)", e.fingerprint, Vec::new())
                }
                Some(f) => {
                    let bytes = read(&f)?;
                    if trust::looks_like_bundle(&bytes) {
                        let b = trust::open_bundle(&bytes)?;
                        let partners = b.partners.iter().map(|p| (p.clinic_id.clone(), p.fingerprint.to_string())).collect();
                        (b.exporter.clinic_id, "signed trust bundle; CA certificate", b.exporter.fingerprint, partners)
                    } else {
                        // A bare key names no clinic: show its fingerprint all the same.
                        let e = trust::entry_from_file(&bytes, None, &label(&f))
                            .or_else(|_| trust::entry_from_file(&bytes, Some("unnamed"), &label(&f)))?;
                        let id = if e.kind == trust::EntryKind::Certificate { e.clinic_id.clone() } else { String::new() };
                        (id, e.kind.describe(), e.fingerprint, Vec::new())
                    }
                }
            };
            if format.json {
                let partners: Vec<_> = partners.iter().map(|(c, f)| serde_json::json!({"clinic_id": c, "fingerprint": f})).collect();
                print_json(
                    &serde_json::json!({ "clinic_id": clinic_id, "what": what, "fingerprint": fp.to_string(), "partners": partners }),
                );
            } else {
                let who = if clinic_id.is_empty() { "no clinic named".to_owned() } else { format!("clinic {clinic_id}") };
                println!("{who}, {what}\nSHA-256 fingerprint: {fp}");
                for (c, f) in &partners {
                    println!("  lists partner {c}: fingerprint {f}");
                }
            }
            Ok(())
        }
        TrustCommand::Add { file, fingerprint, clinic_id, data, format } => {
            let (ks, st) = data.state()?;
            let bytes = read(&file)?;
            let t = trust::add_file(&ks, &st, &bytes, clinic_id.as_deref(), fingerprint.as_deref(), &label(&file), cli::now()?)?;
            if format.json {
                print_json(&trusted_json(&t));
            } else {
                println!("{}", trusted_line(&t));
            }
            Ok(())
        }
        TrustCommand::Remove { name, data, format } => {
            let (_, st) = data.state()?;
            trust::remove(&st, &name, cli::now()?)?;
            if format.json {
                print_json(&serde_json::json!({ "removed": name }));
            } else {
                println!("removed {name}");
            }
            Ok(())
        }
        TrustCommand::Export { out, bundle, all, data } => {
            let (ks, st) = data.state()?;
            let deliver = |bytes: &[u8]| -> Result<(), ExportError> {
                match &out {
                    // A new file outside the data directory, as every export (docs/checkin-scan.md, "Exports").
                    Some(p) => reader::export::write_new_export(ks.data_dir(), p, bytes).map(|_| ()),
                    None => {
                        use std::io::Write;
                        std::io::stdout().write_all(bytes).map_err(ExportError::Stdout)
                    }
                }
            };
            let (fingerprint, what) = if bundle || all {
                let (fp, partners) = trust::export_bundle(&ks, &st, all, cli::now()?, deliver)?;
                let what = if partners.is_empty() {
                    "signed trust bundle".to_owned()
                } else {
                    format!("signed trust bundle listing {} partner(s): {}", partners.len(), partners.join(", "))
                };
                (fp, what)
            } else {
                (trust::export_certificate(&ks, &st, cli::now()?, deliver)?, "CA certificate".to_owned())
            };
            eprintln!(
                "medcard: clinic {}: {what}{}. Read the receiving clinic this SHA-256 fingerprint over the phone:\n  {fingerprint}",
                ks.clinic_id(),
                out.as_ref().map(|p| format!(", written to {}", p.display())).unwrap_or_default(),
            );
            Ok(())
        }
        TrustCommand::Import { file, fingerprint, include_partners, data, format } => {
            let (ks, st) = data.state()?;
            let bytes = read(&file)?;
            let r = trust::import_bundle(&ks, &st, &bytes, fingerprint.as_deref(), include_partners, &label(&file), cli::now()?)?;
            if format.json {
                let left: Vec<_> = r
                    .partners_not_imported
                    .iter()
                    .map(|(c, f)| serde_json::json!({ "clinic_id": c, "fingerprint": f.to_string() }))
                    .collect();
                print_json(&serde_json::json!({
                    "clinic_id": r.clinic_id,
                    "fingerprint": r.fingerprint.to_string(),
                    "trusted": r.trusted.iter().map(trusted_json).collect::<Vec<_>>(),
                    "partners_not_imported": left,
                    "skipped_own": r.skipped_own,
                }));
            } else {
                println!("signed trust bundle of clinic {} (CA fingerprint {}) verified", r.clinic_id, r.fingerprint);
                for t in &r.trusted {
                    println!("{}", trusted_line(t));
                }
                if !r.partners_not_imported.is_empty() {
                    println!("not imported: the clinics {} trusts (pass --include-partners to trust them too):", r.clinic_id);
                    for (c, f) in &r.partners_not_imported {
                        println!("  {c}: fingerprint {f}");
                    }
                }
            }
            Ok(())
        }
    }
}
