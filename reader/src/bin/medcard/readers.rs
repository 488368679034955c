//! `medcard readers`: the smart-card readers and whether each holds a card.

use reader::{PcscContext, ReaderInfo};

pub fn readers(json: bool) -> Result<(), reader::Error> {
    let ctx = PcscContext::establish()?;
    let list: Vec<ReaderInfo> = ctx.readers()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
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
