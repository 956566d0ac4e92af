//! A check of BER/DER element lengths before yasna reads bytes from outside.
//!
//! yasna adds an element's length to its position unchecked when it skips an element
//! (`read_der`, SET OF buffering): a length near `usize::MAX` overflows (a panic with
//! overflow checks, a wrapped position without). Every parser of outside bytes that uses
//! yasna checks the input here first. Found by the `ocsp_request` and `est_body` fuzz
//! targets.

/// How deep elements may nest.
const MAX_DEPTH: usize = 32;

/// Whether `data` is a series of elements whose lengths each fit in what holds them, at
/// every depth down to [`MAX_DEPTH`]. Lengths take at most four bytes. With `ber`,
/// constructed elements may also have the indefinite length, ended by `00 00`.
pub(crate) fn lengths_fit(data: &[u8], ber: bool) -> bool {
    elements_fit(data, 0, ber)
}

fn elements_fit(mut data: &[u8], depth: usize, ber: bool) -> bool {
    while !data.is_empty() {
        match element(data, depth, ber) {
            Some(n) => data = &data[n..],
            None => return false,
        }
    }
    true
}

/// The length of the element at the start of `data` (header and content), if it fits.
fn element(data: &[u8], depth: usize, ber: bool) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let constructed = *data.first()? & 0x20 != 0;
    let mut pos = 1;
    if data[0] & 0x1f == 0x1f {
        // High tag number: base-128 digits, the last without the top bit (at most 4).
        loop {
            let b = *data.get(pos)?;
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
            if pos > 5 {
                return None;
            }
        }
    }
    let first = *data.get(pos)?;
    pos += 1;
    if first == 0x80 {
        // Indefinite length: BER only, constructed only, contents until end-of-contents.
        if !ber || !constructed {
            return None;
        }
        loop {
            let rest = data.get(pos..)?;
            if rest.starts_with(&[0, 0]) {
                return Some(pos + 2);
            }
            pos += element(rest, depth + 1, ber)?;
        }
    }
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n > 4 {
            return None;
        }
        let bytes = data.get(pos..pos + n)?;
        pos += n;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let end = pos.checked_add(len).filter(|end| *end <= data.len())?;
    if constructed && !elements_fit(&data[pos..end], depth + 1, ber) {
        return None;
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::lengths_fit;

    #[test]
    fn lengths_must_fit_at_every_depth() {
        assert!(lengths_fit(&[0x30, 0x03, 0x02, 0x01, 0x05], false));
        assert!(lengths_fit(&[], false));
        // A length beyond the input, at the top and nested.
        assert!(!lengths_fit(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], false));
        assert!(!lengths_fit(&[0x30, 0x03, 0x04, 0x05, 0x00], false));
        // Five length bytes are refused.
        assert!(!lengths_fit(&[0x04, 0x85, 0, 0, 0, 0, 1, 0], false));
        // Indefinite lengths: BER only, constructed only, and they must end.
        let indefinite = [0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00];
        assert!(lengths_fit(&indefinite, true));
        assert!(!lengths_fit(&indefinite, false));
        assert!(!lengths_fit(&[0x30, 0x80, 0x02, 0x01, 0x05], true));
        assert!(!lengths_fit(&[0x04, 0x80, 0x00, 0x00], true));
        // Nesting deeper than the limit.
        let mut deep = Vec::new();
        for _ in 0..40 {
            deep.splice(0..0, [0x30, 0x80]);
            deep.extend([0x00, 0x00]);
        }
        assert!(!lengths_fit(&deep, true));
    }
}
