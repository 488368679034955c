//! BER-TLV as the reader parses card data (reader/src/tlv.rs) and status words (reader/src/sw.rs):
//! every reader accessor on any bytes returns a value or a typed `TlvError`; an item the
//! reader accepted re-encodes and reads back as the same tag and value; status words round-trip through the enum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reader::sw::StatusWord;
use reader::tlv;

fuzz_target!(|data: &[u8]| {
    if let Some((sw, _)) = data.split_first_chunk::<2>() {
        let v = u16::from_be_bytes(*sw);
        let s = StatusWord::from(v);
        assert_eq!(u16::from(s), v, "status word {v:04X} round-trips");
        let _ = s.to_string();
    }
    let mut r = tlv::TlvReader::new(data);
    let mut prev = r.offset();
    while let Some(item) = r.next_tlv() {
        let Ok(t) = item else { break };
        let used = r.offset() - prev;
        assert!(used >= 2 && r.offset() <= data.len(), "offsets stay inside the input");
        if let Some(enc) = tlv::encode(t.tag, t.value) {
            // BER allows a longer length form than needed (81 05), so compare items, not bytes.
            let again = tlv::TlvReader::new(&enc).read();
            assert_eq!(again.map(|a| (a.tag, a.value)), Ok((t.tag, t.value)), "tag {:X} re-encodes", t.tag);
        }
        prev = r.offset();
    }
    let _ = r.finish();
    if let Ok(all) = tlv::parse_all(data) {
        for tag in [0x61, 0x4F, 0x50, 0x7C, 0x82, 0x53, 0x7F49, 0x86] {
            let _ = tlv::find_unique(&all, tag);
        }
        if let Some(first) = all.first() {
            assert!(tlv::single(data, first.tag).is_ok() || all.len() > 1);
        }
    }
    let mut r = tlv::TlvReader::new(data);
    let _ = r.expect(0x7C).map(|inner| tlv::parse_all(inner));
});
