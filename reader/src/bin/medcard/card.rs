//! `medcard card ...`: work with the card in a reader.

use clap::Subcommand;
use reader::{CardInfo, PcscContext, PinStatus, Piv};

#[derive(Subcommand)]
pub enum CardCommand {
    /// Show the card's serial, version, CHUID GUID, certificates, PIN tries left and patient
    /// objects. Needs no PIN and spends no try.
    Info {
        /// The reader's name, as `medcard readers` prints it.
        #[arg(long, value_name = "READER")]
        reader: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: CardCommand) -> Result<(), reader::Error> {
    match command {
        CardCommand::Info { reader, json } => card_info(&reader, json),
    }
}

pub fn card_info(reader_name: &str, json: bool) -> Result<(), reader::Error> {
    let ctx = PcscContext::establish()?;
    let mut transport = ctx.connect(reader_name)?;
    let info = transport.transaction(|tx| Piv::new(tx).info())??;
    // Leave no security status behind for the next application; a failure here changes nothing
    // for the user (the information was read).
    let _ = transport.disconnect();
    if json {
        println!("{}", serde_json::to_string_pretty(&info).unwrap_or_default());
    } else {
        print_info(&info);
    }
    Ok(())
}

fn print_info(info: &CardInfo) {
    println!("reader:           {}", info.reader);
    if let Some(label) = &info.label {
        println!("application:      {label}");
    }
    println!("serial:           {}", info.serial);
    println!("version:          {}", info.version);
    println!("CHUID GUID:       {}", info.chuid_guid.as_deref().unwrap_or("(no CHUID)"));
    let certs = if info.certificates.is_empty() { "none".to_owned() } else { info.certificates.join(", ") };
    println!("certificates:     {certs}");
    let pin = match info.pin {
        PinStatus::Verified => "verified in this session".to_owned(),
        PinStatus::NotVerified { tries_left } => format!("{tries_left} tries left"),
        PinStatus::Blocked => "blocked (unblock it with the PUK)".to_owned(),
    };
    println!("PIN:              {pin}");
    let obj = |n: Option<usize>| n.map_or("absent".to_owned(), |n| format!("present ({n} bytes)"));
    println!("card credential:  {}", obj(info.card_credential_bytes));
    println!("consent token:    {}", obj(info.consent_token_bytes));
}
