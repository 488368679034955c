//! `medcard trust list|add|remove|export|import`: the issuer keys whose card credentials this
//! clinic accepts (its own CA plus other clinics' CA certificates or keys in `<data>/trust/`).

use std::path::PathBuf;

use clap::Subcommand;
use reader::clinic::ClinicFiles;
use reader::x509;

use crate::clinic_cli::{DataArg, print_json};

#[derive(Subcommand)]
pub enum TrustCommand {
    /// List trusted issuers (this clinic first) with their kids.
    #[command(after_help = "Examples:\n  medcard trust list\n  medcard trust list --json")]
    List {
        #[command(flatten)]
        data: DataArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Trust another clinic: a CA certificate (PEM/DER), a public key (SPKI PEM/DER) or a COSE_Key.
    #[command(after_help = "Examples:\n  medcard trust add clinic-b.pem\n  medcard trust add --name clinic-b key.cose")]
    Add {
        /// The file to trust.
        file: PathBuf,
        /// The entry's name (default: the file name).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        #[command(flatten)]
        data: DataArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting an entry (by the name `trust list` shows).
    #[command(after_help = "Examples:\n  medcard trust remove clinic-b.pem")]
    Remove {
        /// The entry's name.
        name: String,
        #[command(flatten)]
        data: DataArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write this clinic's CA certificate (PEM), for other clinics to `trust add`/`import`.
    #[command(after_help = "Examples:\n  medcard trust export --out st-mary.pem\n  medcard trust export --all > bundle.pem")]
    Export {
        /// Output file (default: standard output): a new file (mode 0600), never over an existing
        /// file, never inside the data directory.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Also include every other trusted entry (a bundle of PEM blocks).
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Trust every PEM block of a bundle (as written by `trust export --all`).
    #[command(after_help = "Examples:\n  medcard trust import bundle.pem")]
    Import {
        /// The PEM bundle.
        file: PathBuf,
        #[command(flatten)]
        data: DataArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn read(file: &std::path::Path) -> Result<Vec<u8>, reader::Error> {
    Ok(reader::fsutil::read_limited(file, 1024 * 1024)?)
}

fn invalid(e: impl std::fmt::Display) -> reader::Error {
    reader::Error::InvalidInput(e.to_string())
}

pub fn run(command: TrustCommand) -> Result<(), reader::Error> {
    match command {
        TrustCommand::List { data, json } => {
            let ks = data.keystore()?;
            let mut rows = vec![serde_json::json!({
                "name": "(this clinic)",
                "issuer": ks.clinic_id(),
                "kid": hex::encode(ks.issuer_kid()),
            })];
            for (name, bytes) in ClinicFiles::new(&ks).trust_files()? {
                match qr::trust::parse_trust_file(&bytes, &name) {
                    Ok(entries) => {
                        if let Some(e) = entries.first() {
                            rows.push(serde_json::json!({ "name": name, "issuer": e.issuer, "kid": hex::encode(&e.kid) }));
                        }
                    }
                    Err(e) => rows.push(serde_json::json!({ "name": name, "error": e.to_string() })),
                }
            }
            if json {
                print_json(&serde_json::Value::Array(rows));
            } else {
                for r in &rows {
                    let s = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
                    if r.get("error").is_some() {
                        println!("{}\tUNUSABLE: {}", s("name"), s("error"));
                    } else {
                        println!("{}\tkid {}\t{}", s("name"), s("kid"), s("issuer"));
                    }
                }
            }
            Ok(())
        }
        TrustCommand::Add { file, name, data, json } => {
            let ks = data.keystore()?;
            let bytes = read(&file)?;
            let name = name.unwrap_or_else(|| file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            let entries = qr::trust::parse_trust_file(&bytes, &name).map_err(invalid)?;
            ClinicFiles::new(&ks).add_trust_file(&name, &bytes)?;
            let kid = entries.first().map(|e| hex::encode(&e.kid)).unwrap_or_default();
            if json {
                print_json(&serde_json::json!({ "name": name, "kid": kid }));
            } else {
                println!("trusted {name} (kid {kid})");
            }
            Ok(())
        }
        TrustCommand::Remove { name, data, json } => {
            let ks = data.keystore()?;
            ClinicFiles::new(&ks).remove_trust_file(&name)?;
            if json {
                print_json(&serde_json::json!({ "removed": name }));
            } else {
                println!("removed {name}");
            }
            Ok(())
        }
        TrustCommand::Export { out, all, data } => {
            let ks = data.keystore()?;
            let mut pem = x509::to_pem("CERTIFICATE", ks.ca_certificate_der());
            if all {
                for (name, bytes) in ClinicFiles::new(&ks).trust_files()? {
                    if bytes.starts_with(b"-----BEGIN") {
                        pem.push_str(&String::from_utf8_lossy(&bytes));
                    } else if qr::trust::from_certificate_der(&bytes, &name).is_ok() {
                        pem.push_str(&x509::to_pem("CERTIFICATE", &bytes));
                    } else {
                        eprintln!("medcard: note: {name} is not PEM or a DER certificate; not exported");
                    }
                }
            }
            match out {
                Some(p) => {
                    reader::export::write_new_export(ks.data_dir(), &p, pem.as_bytes())?;
                }
                None => print!("{pem}"),
            }
            Ok(())
        }
        TrustCommand::Import { file, data, json } => {
            let ks = data.keystore()?;
            let text = String::from_utf8(read(&file)?).map_err(|_| invalid("the bundle is not PEM text"))?;
            let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "import".into());
            let own = hex::encode(ks.issuer_kid());
            let files = ClinicFiles::new(&ks);
            let mut added = Vec::new();
            for (i, block) in text.split("-----BEGIN ").skip(1).enumerate() {
                let pem = format!("-----BEGIN {block}");
                let entries = qr::trust::parse_trust_file(pem.as_bytes(), &stem).map_err(invalid)?;
                let kid = entries.first().map(|e| hex::encode(&e.kid)).unwrap_or_default();
                if kid == own {
                    continue;
                }
                let name = format!("{stem}-{}.pem", i + 1);
                files.add_trust_file(&name, pem.as_bytes())?;
                added.push(serde_json::json!({ "name": name, "kid": kid }));
            }
            if added.is_empty() {
                return Err(invalid("the bundle holds no PEM entry other than this clinic's own"));
            }
            if json {
                print_json(&serde_json::Value::Array(added));
            } else {
                for a in &added {
                    println!("trusted {} (kid {})", a["name"].as_str().unwrap_or(""), a["kid"].as_str().unwrap_or(""));
                }
            }
            Ok(())
        }
    }
}
