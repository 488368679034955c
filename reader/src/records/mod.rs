//! Records as the clinic keeps them: adding a document (seal, store, index, audit in one step)
//! and fetching one for a scan. The sealed format itself is [`crate::sealed`], re-exported here
//! so that `records::seal`, `records::open`, `records::RecordMeta` ... name one thing.

pub mod add;
pub mod fetch;

pub use crate::sealed::*;
pub use add::{AddError, AddedRecord, NewRecord, add_record, add_record_file, add_record_file_in, media_type_for};
