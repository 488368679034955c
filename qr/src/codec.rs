//! Encoding a pointer: claims → COSE_Sign1 → zlib (only when smaller) → base45 → `MC1:`.

use zeroize::Zeroizing;

use crate::claims::{Claims, ClaimsError};
use crate::cose::{self, CoseError, Signer};
use crate::text;

/// Every layer of an encoded pointer (for docs and debugging).
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The CWT claims (CBOR). Secret if the claims carry a content key.
    pub claims_cbor: Zeroizing<Vec<u8>>,
    /// The tagged COSE_Sign1.
    pub cose: Vec<u8>,
    /// Whether zlib made it smaller (and so was used).
    pub compressed: bool,
    /// What base45 encodes: the zlib stream or the COSE bytes.
    pub packed: Vec<u8>,
    /// base45 of `packed`.
    pub base45: String,
    /// The QR text: `MC1:` + base45.
    pub text: String,
}

/// Why encoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The claims are invalid.
    #[error("claims: {0}")]
    Claims(#[from] ClaimsError),
    /// Signing failed.
    #[error("signing: {0}")]
    Cose(#[from] CoseError),
}

/// Signs and encodes `claims` with `signer`.
pub fn encode(claims: &Claims, signer: &dyn Signer) -> Result<Encoded, EncodeError> {
    let claims_cbor = claims.to_cbor()?;
    let cose = cose::sign(&claims_cbor, signer)?;
    let (packed, compressed) = text::compress_if_smaller(&cose);
    let base45 = text::base45_encode(&packed);
    let text = format!("{}{base45}", text::MEDCARD_PREFIX);
    Ok(Encoded { claims_cbor, cose, compressed, packed, base45, text })
}
