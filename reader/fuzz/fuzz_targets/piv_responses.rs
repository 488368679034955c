//! The reader's card-response parsing: a `Transport` whose card answers with fuzz bytes. The
//! input is the card's replies, one per command APDU, each framed as 2-byte big-endian length +
//! bytes (see `common::frames`); when they run out the card is "removed". The client runs
//! the operations of `piv_script::run` (SELECT's template, GET DATA objects and the credential
//! and consent token in them, GENERAL AUTHENTICATE signatures and ECDH points, GENERATE's
//! 7F49 key, status words incl. 61xx/GET RESPONSE paging and 63Cx counters) and must end every
//! one in `Ok` or a typed `Error`. Seeds: replies of a real issued card (`seedgen`).
#![no_main]

#[path = "common.rs"]
mod common;
#[path = "piv_script.rs"]
mod piv_script;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reader::piv::Piv;
use reader::transport::{Transport, TransportError};

struct FuzzCard<'a> {
    replies: std::vec::IntoIter<&'a [u8]>,
}

impl Transport for FuzzCard<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        assert!(apdu.len() >= 4, "the client sends whole APDU headers");
        self.replies.next().map(<[u8]>::to_vec).ok_or(TransportError::CardRemoved { reader: "fuzz".into() })
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
    fn reader_name(&self) -> &str {
        "fuzz"
    }
}

fn trust() -> &'static qr::TrustList {
    static T: OnceLock<qr::TrustList> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = qr::TrustList::new();
        let _ = t.add_file(include_bytes!("../fixtures/clinic-ca.der"), "fuzz-clinic");
        t
    })
}

fuzz_target!(|data: &[u8]| {
    let card = FuzzCard { replies: common::frames(data).into_iter() };
    let mut piv = Piv::new(card);
    piv_script::run(&mut piv, trust(), common::NOW);
});
