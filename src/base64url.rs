//! Strict base64url without padding (RFC 7515 §2), decoded on every request: the JWT's header,
//! claims and signature. base64-simd decodes these about three times as fast as the base64
//! crate here (BENCHMARKS.md, issue 12) with the same strictness, which the test below checks
//! against the base64 crate on every input up to four characters: no padding, only the URL-safe
//! alphabet, no length an encoding can not have, and zero trailing bits.

/// The bytes `part` encodes, or `None` when it is not canonical unpadded base64url.
pub(crate) fn decode(part: &str) -> Option<Vec<u8>> {
    base64_simd::URL_SAFE_NO_PAD.decode_to_vec(part).ok()
}

/// Whether [`decode`] would accept `part`, without decoding it (the signature part is
/// decoded later, by the key that checks it).
pub(crate) fn is_canonical(part: &str) -> bool {
    base64_simd::URL_SAFE_NO_PAD.check(part.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// Every string of up to four characters from the alphabet plus characters near it that
    /// are not in it, longer ones around the sizes SIMD code handles in blocks, and every
    /// ASCII character at block edges of vector-length inputs: both decoders accept the same
    /// inputs and give the same bytes.
    #[test]
    fn agrees_with_the_base64_crate() {
        let chars: Vec<char> = "ABCDQRYZagwxyz0189-_+/=.~ \n\u{0}\u{80}é".chars().collect();
        let mut inputs = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..4 {
            let next: Vec<String> = last
                .iter()
                .flat_map(|s| chars.iter().map(move |c| format!("{s}{c}")))
                .collect();
            inputs.extend(next.iter().cloned());
            last = next;
        }
        let bytes: Vec<u8> = (0..=255).collect();
        for n in [
            15, 16, 17, 23, 24, 31, 32, 33, 47, 48, 63, 64, 65, 95, 96, 200, 256,
        ] {
            let good = URL_SAFE_NO_PAD.encode(&bytes[..n]);
            for (i, bad) in ["=", "+", "/", " ", ".", "\u{0}"].into_iter().enumerate() {
                // One character replaced at a position that moves with the length.
                let at = (n * 7 + i * 13) % good.len();
                inputs.push(format!("{}{bad}{}", &good[..at], &good[at + 1..]));
            }
            inputs.push(good.clone());
            inputs.push(format!("{good}="));
            inputs.push(format!("{good}A"));
        }
        // Inside the blocks SIMD code decodes: every ASCII character and a non-ASCII one at
        // both ends of a 16- and a 32-byte block, in inputs long enough for the vector path.
        for n in [48, 96] {
            let good = URL_SAFE_NO_PAD.encode(&bytes[..n]);
            for at in [0, 15, 16, 31, 32, 47] {
                for c in (0..=0x7f_u8).map(char::from).chain(['é']) {
                    inputs.push(format!("{}{c}{}", &good[..at], &good[at + 1..]));
                }
            }
        }
        for input in &inputs {
            let expected = URL_SAFE_NO_PAD.decode(input).ok();
            assert_eq!(super::is_canonical(input), expected.is_some(), "{input:?}");
            assert_eq!(super::decode(input), expected, "{input:?}");
        }
    }
}
