//! `medcard readers`: the smart-card readers and whether each holds a card.

use reader::{PcscContext, ReaderInfo};

use crate::cli::{CliError, Output, print_json};

pub fn readers(format: Output) -> Result<(), CliError> {
    let ctx = PcscContext::establish()?;
    let list: Vec<ReaderInfo> = ctx.readers()?;
    if format.json {
        print_json(&serde_json::to_value(&list).unwrap_or_default());
    } else if list.is_empty() {
        println!("no smart-card readers found");
    } else {
        for r in &list {
            let state = if r.card_present { "card present" } else { "no card" };
            println!("{}\t{state}", r.name);
        }
    }
    Ok(())
}
