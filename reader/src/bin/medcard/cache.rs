//! `medcard cache list|purge`: the bedside cache of verified records (docs/database.md).

use std::process::ExitCode;

use clap::Subcommand;
use reader::audit::EventKind;
use reader::category;

use crate::record::{Clinic, DataArg, finish, now};

#[derive(Subcommand)]
pub enum CacheCommand {
    /// List cached records with their provenance (never their contents).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Remove everything expired, revoked or no longer covered by consent.
    Purge {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArg,
    },
}

pub fn run(cmd: CacheCommand) -> ExitCode {
    match cmd {
        CacheCommand::List { json, data } => finish(list(data, json)),
        CacheCommand::Purge { json, data } => finish(purge(data, json)),
    }
}

fn list(data: DataArg, json: bool) -> Result<(), String> {
    let c = Clinic::open(data.data.as_deref())?;
    let rows = c.db.cache_list().map_err(|e| e.to_string())?;
    let t = now();
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({"qr_id": r.qr_id, "patient_id": r.patient_id, "locator": r.locator,
                    "categories": category::join(&r.categories), "issuer_kid": hex::encode(&r.issuer_kid),
                    "verified_at": r.verified_at, "expires_at": r.expires_at, "expired": r.expires_at <= t,
                    "media_type": r.media_type, "bytes": r.document.len()})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("{:<32}  {:<12}  {:<20}  {:<16}  {:>10}  {:>10}  state", "qr id", "patient", "categories", "issuer kid", "verified", "expires");
        for r in &rows {
            println!(
                "{:<32}  {:<12}  {:<20}  {:<16}  {:>10}  {:>10}  {}",
                r.qr_id,
                r.patient_id,
                category::join(&r.categories),
                hex::encode(&r.issuer_kid),
                r.verified_at,
                r.expires_at,
                if r.expires_at <= t { "expired" } else { "valid" }
            );
        }
        println!("{} cached record(s)", rows.len());
    }
    Ok(())
}

fn purge(data: DataArg, json: bool) -> Result<(), String> {
    let mut c = Clinic::open(data.data.as_deref())?;
    let n = c.db.cache_purge(now()).map_err(|e| e.to_string())?;
    c.audit(EventKind::CachePurge, "cache", "ok", format!("removed={n}"))?;
    if json {
        println!("{}", serde_json::json!({ "removed": n }));
    } else {
        println!("removed {n} cached record(s)");
    }
    Ok(())
}
