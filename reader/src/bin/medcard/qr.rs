//! `medcard qr ...`: decode QR images, inspect MedCard (or EU DCC) codes layer by layer, and make
//! demo codes. Exit codes: 0 ok, 1 no code found (decode), 3 a code was refused (inspect), 2 on a
//! usage or file error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use p256::pkcs8::EncodePublicKey;
use qr::claims::{Claims, ContentKey, Pointer};
use qr::verify::{Profile, Verifier};
use qr::{Clock, Signer, SoftwareSigner, TrustList};

use crate::cli::{self, CliError};

#[derive(Subcommand)]
pub enum QrCommand {
    /// Print the raw text of every QR code in each image (one per line; "FILE: TEXT" when several files).
    ///
    /// Each image is scanned within a time budget (80 ms by default; docs/scanner.md): ZXing's
    /// detector first, then rqrr's binarizations, scales and rotations while time is left.
    /// Exit status 0 if at least one code was found, 1 if none, 2 on an unreadable file.
    Decode {
        /// Image files (PNG, JPEG).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Time budget per image in milliseconds; 0 = no budget (every attempt runs).
        #[arg(long, value_name = "MS", default_value_t = qr::scan::ScanOptions::FILE_BUDGET_MS)]
        budget_ms: u64,
        /// Also print, on stderr, how each image was scanned: attempts, time, the decoder that
        /// read each code, decoder panics caught, whether the budget stopped the scan.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Print a JSON report of every layer (ok, the error, or not reached) and the claims.
    ///
    /// The input is QR text, or an image file whose codes are each inspected.
    /// Exit status 0 if every code verified, 3 if one was refused, 2 on a usage or file error.
    Inspect {
        /// Expected text prefix. "HC1:" selects the EU DCC profile (zlib required, claims not ours).
        #[arg(long, default_value = "MC1:")]
        prefix: String,
        /// Trusted key: PEM/DER X.509 certificate, PEM/DER SubjectPublicKeyInfo, or COSE_Key (CBOR).
        /// Repeatable. A MedCard code's `iss` must be the clinic its key is bound to: a clinic CA
        /// certificate names it; bind a bare key with CLINIC=FILE (else its file name without
        /// extension is the clinic id).
        #[arg(long = "trust", value_name = "[CLINIC=]FILE")]
        trust: Vec<PathBuf>,
        /// Validation time, RFC 3339 (2026-11-23T10:00:00Z) or Unix seconds; default: now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Allowed clock skew in seconds.
        #[arg(long, default_value_t = 60)]
        skew: u32,
        /// Treat the payload as a foreign CWT (stop after signature and time; print no MedCard claims).
        #[arg(long)]
        foreign: bool,
        /// QR text, or an image file.
        input: String,
    },
    /// Demo and test tool: make a P-256 key; writes the secret scalar as hex to KEY and the public key (SPKI PEM) to KEY.pub.pem.
    Keygen {
        /// Where to write the secret key (hex, mode 0600).
        key: PathBuf,
    },
    /// Demo and test tool: sign and encode a pointer with a `keygen` key (the kiosk signs with the
    /// clinic's issuer key instead); prints the QR text (and writes a PNG with --png).
    Sign {
        /// Secret key file written by `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Issuer (clinic id).
        #[arg(long)]
        iss: String,
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Record locator (absolute URI).
        #[arg(long)]
        locator: String,
        /// SHA-256 of the record ciphertext (64 hex digits).
        #[arg(long)]
        record_sha256: String,
        /// SHA-256 of the consent token (64 hex digits).
        #[arg(long)]
        consent_sha256: String,
        /// Record category (repeatable).
        #[arg(long = "category")]
        categories: Vec<String>,
        /// Record content key (64 hex digits); omitted from the code if not given.
        #[arg(long)]
        content_key: Option<String>,
        /// Lifetime in minutes.
        #[arg(long, default_value_t = 30)]
        minutes: i64,
        /// Issue time (RFC 3339 or Unix seconds); default: now.
        #[arg(long)]
        at: Option<String>,
        /// Also write the QR code as PNG here.
        #[arg(long)]
        png: Option<PathBuf>,
    },
}

/// [`cli::read_file`], as `medcard qr`'s unusable input (exit 2); the same message.
fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    cli::read_file(path).map_err(usage)
}

fn hex32(s: &str, what: &str) -> Result<[u8; 32], CliError> {
    let b = hex::decode(s.trim()).map_err(|e| CliError::Usage(format!("{what}: not hex: {e}")))?;
    <[u8; 32]>::try_from(b).map_err(|b| CliError::Usage(format!("{what}: {} bytes, expected 32", b.len())))
}

fn decode(images: &[PathBuf], budget_ms: u64, verbose: bool) -> Result<ExitCode, CliError> {
    let budget = (budget_ms > 0).then(|| std::time::Duration::from_millis(budget_ms));
    let scanner = qr::scan::Scanner::new(qr::scan::ScanOptions { budget, ..qr::scan::ScanOptions::default() });
    let mut found = 0;
    for path in images {
        let gray = qr::scan::decode_gray(&read(path)?).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
        let report = scanner.scan_gray(gray);
        if verbose {
            eprintln!("{}: {report}", path.display());
        }
        let texts = report.texts();
        found += texts.len();
        for t in texts {
            if images.len() > 1 {
                println!("{}: {t}", path.display());
            } else {
                println!("{t}");
            }
        }
    }
    Ok(if found > 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn inspect(prefix: &str, trust_files: &[PathBuf], at: Option<&str>, skew: u32, foreign: bool, input: &str) -> Result<ExitCode, CliError> {
    let mut trust = TrustList::new();
    for arg in trust_files {
        // `CLINIC=FILE` binds a bare key to a clinic id; else the file's name is its label (a
        // MedCard CA certificate names its clinic itself; docs/qr-format.md §5).
        let arg = arg.to_string_lossy();
        let (label, f) = match arg.split_once('=') {
            Some((clinic, file)) if !clinic.is_empty() && !clinic.contains('/') => (clinic.to_owned(), PathBuf::from(file)),
            _ => {
                let f = PathBuf::from(arg.as_ref());
                (f.file_name().map_or_else(|| arg.to_string(), |n| n.to_string_lossy().into_owned()), f)
            }
        };
        trust.add_file(&read(&f)?, &label).map_err(usage)?;
    }
    let clock = Clock::new(at.map(qr::time::parse_rfc3339).transpose().map_err(usage)?.map_or_else(cli::now, Ok)?, skew);
    let profile = if prefix == qr::text::HC1_PREFIX { Profile::dgc() } else { Profile::medcard().with_prefix(prefix) };
    let foreign = foreign || prefix == qr::text::HC1_PREFIX;
    let verifier = Verifier::new(profile, &trust);
    let path = Path::new(input);
    let (texts, source) = if path.is_file() {
        let texts = qr::scan::scan_bytes(&read(path)?).map_err(|e| CliError::Usage(format!("{input}: {e}")))?;
        if texts.is_empty() {
            return Err(CliError::Usage(format!("{input}: no QR code found")));
        }
        (texts, Some(input))
    } else {
        (vec![input.trim_end_matches(['\r', '\n']).to_owned()], None)
    };
    let reports: Vec<serde_json::Value> = texts
        .iter()
        .map(|t| {
            let mut r = verifier.inspect(t, clock, foreign);
            if let Some(obj) = r.as_object_mut() {
                // A MedCard code's text is a bearer secret (it carries the content key): only
                // foreign codes (EU DCC) are echoed.
                if foreign {
                    obj.insert("text".into(), t.clone().into());
                } else {
                    obj.insert("text_chars".into(), t.chars().count().into());
                }
                if let Some(s) = source {
                    obj.insert("image".into(), s.into());
                }
            }
            r
        })
        .collect();
    let all_ok = reports.iter().all(|r| r.get("verified") == Some(&serde_json::Value::Bool(true)));
    let out = if reports.len() == 1 { reports.into_iter().next().unwrap_or_default() } else { serde_json::Value::Array(reports) };
    println!("{}", serde_json::to_string_pretty(&out).map_err(usage)?);
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

fn keygen(key: &Path) -> Result<ExitCode, CliError> {
    let signer = SoftwareSigner::generate().map_err(usage)?;
    let secret = zeroize::Zeroizing::new(hex::encode(signer.signing_key().to_bytes()));
    write_private(key, secret.as_bytes())?;
    let pem = signer.public_key().to_public_key_pem(p256::pkcs8::LineEnding::LF).map_err(usage)?;
    let pub_path = PathBuf::from(format!("{}.pub.pem", key.display()));
    std::fs::write(&pub_path, pem).map_err(|e| CliError::Usage(format!("cannot write {}: {e}", pub_path.display())))?;
    println!("kid {}", hex::encode(qr::kid_for(&signer.public_key())));
    Ok(ExitCode::SUCCESS)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| CliError::Usage(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(bytes).map_err(|e| CliError::Usage(format!("cannot write {}: {e}", path.display())))
}

fn dispatch(cmd: QrCommand) -> Result<ExitCode, CliError> {
    match cmd {
        QrCommand::Decode { images, budget_ms, verbose } => decode(&images, budget_ms, verbose),
        QrCommand::Inspect { prefix, trust, at, skew, foreign, input } => inspect(&prefix, &trust, at.as_deref(), skew, foreign, &input),
        QrCommand::Keygen { key } => keygen(&key),
        QrCommand::Sign { key, iss, patient, locator, record_sha256, consent_sha256, categories, content_key, minutes, at, png } => {
            let secret = zeroize::Zeroizing::new(read(&key)?);
            let scalar = zeroize::Zeroizing::new(hex32(&String::from_utf8_lossy(&secret), "key file")?);
            let signer = SoftwareSigner::from_scalar(scalar.as_slice()).map_err(usage)?;
            let iat = at.as_deref().map(qr::time::parse_rfc3339).transpose().map_err(usage)?.map_or_else(cli::now, Ok)?;
            let claims = Claims {
                iss,
                iat,
                exp: iat.saturating_add(minutes.saturating_mul(60)),
                nbf: None,
                cti: qr::claims::random_cti().map_err(usage)?,
                pointer: Pointer {
                    patient_id: patient,
                    locator,
                    record_sha256: hex32(&record_sha256, "--record-sha256")?,
                    content_key: content_key.map(|k| hex32(&k, "--content-key").map(ContentKey::new)).transpose()?,
                    categories,
                    consent_sha256: hex32(&consent_sha256, "--consent-sha256")?,
                },
            };
            let enc = qr::encode(&claims, &signer).map_err(usage)?;
            if let Some(p) = png {
                let bytes = qr::render::render_png(&enc.text, 4).map_err(usage)?;
                std::fs::write(&p, bytes).map_err(|e| CliError::Usage(format!("cannot write {}: {e}", p.display())))?;
            }
            println!("{}", enc.text);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs one `medcard qr` command: its answer is the exit code (a found or verified code or
/// not); its errors are [`CliError::Usage`] (exit 2).
pub fn run(cmd: QrCommand) -> Result<ExitCode, CliError> {
    dispatch(cmd)
}

/// A `medcard qr` input that cannot be used (exit 2).
fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}
