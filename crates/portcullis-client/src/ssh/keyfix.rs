//! OpenSSH writes an ECDSA private scalar as a minimal `mpint`: when its top
//! byte is zero (about one key in 256 … 600) the scalar is a byte short, and the
//! ssh-key crate under russh refuses such a key ("length invalid") that OpenSSH
//! itself uses without a word. For an unencrypted OpenSSH key this rewrites the
//! scalar at its full width (big-endian, leading zeros), which is the same
//! number; the key is otherwise untouched. Encrypted keys cannot be rewritten
//! before the passphrase opens them and are left as they are.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";
const MAGIC: &[u8] = b"openssh-key-v1\0";

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.bytes.split_at_checked(4)?;
        self.bytes = rest;
        Some(u32::from_be_bytes(head.try_into().ok()?))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        let (head, rest) = self.bytes.split_at_checked(len)?;
        self.bytes = rest;
        Some(head)
    }
}

fn put_string(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(value);
}

/// The key with its ECDSA scalar at full width, when it needed that; `None`
/// for every other key (already fine, not ECDSA, encrypted, or not parseable).
pub fn widen_ecdsa_scalar(text: &str) -> Option<Zeroizing<String>> {
    let body = text.trim().strip_prefix(BEGIN)?.strip_suffix(END)?;
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let blob = Zeroizing::new(STANDARD.decode(compact).ok()?);
    let rest = blob.strip_prefix(MAGIC)?;
    let mut outer = Reader { bytes: rest };
    let cipher = outer.string()?;
    let kdf = outer.string()?;
    let kdf_options = outer.string()?;
    if cipher != b"none" || kdf != b"none" || outer.u32()? != 1 {
        return None;
    }
    let public = outer.string()?;
    let private = outer.string()?;
    let mut inner = Reader { bytes: private };
    let check1 = inner.u32()?;
    let check2 = inner.u32()?;
    let key_type = inner.string()?;
    let width = match key_type {
        b"ecdsa-sha2-nistp256" => 32,
        b"ecdsa-sha2-nistp384" => 48,
        b"ecdsa-sha2-nistp521" => 66,
        _ => return None,
    };
    let curve = inner.string()?;
    let point = inner.string()?;
    let scalar = inner.string()?;
    let comment = inner.string()?;
    if scalar.is_empty() || scalar.len() >= width {
        return None;
    }
    let mut section = Zeroizing::new(Vec::with_capacity(private.len() + width));
    section.extend_from_slice(&check1.to_be_bytes());
    section.extend_from_slice(&check2.to_be_bytes());
    put_string(&mut section, key_type);
    put_string(&mut section, curve);
    put_string(&mut section, point);
    let mut wide = Zeroizing::new(vec![0u8; width - scalar.len()]);
    wide.extend_from_slice(scalar);
    put_string(&mut section, &wide);
    put_string(&mut section, comment);
    let mut pad = 1u8;
    while section.len() % 8 != 0 {
        section.push(pad);
        pad += 1;
    }
    let mut out = Zeroizing::new(MAGIC.to_vec());
    put_string(&mut out, cipher);
    put_string(&mut out, kdf);
    put_string(&mut out, kdf_options);
    out.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut out, public);
    put_string(&mut out, &section);
    let encoded = Zeroizing::new(STANDARD.encode(&*out));
    let mut text = Zeroizing::new(String::with_capacity(encoded.len() + 100));
    text.push_str(BEGIN);
    text.push('\n');
    for line in encoded.as_bytes().chunks(70) {
        text.push_str(std::str::from_utf8(line).ok()?);
        text.push('\n');
    }
    text.push_str(END);
    text.push('\n');
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unencrypted P-256 key as OpenSSH writes it, with the scalar `d`
    /// encoded minimally (as `mpint`).
    fn openssh_p256(d: &[u8; 32]) -> (String, Vec<u8>) {
        let secret = p256::SecretKey::from_slice(d).unwrap();
        let point = secret.public_key().to_sec1_bytes().to_vec();
        let mut public = Vec::new();
        put_string(&mut public, b"ecdsa-sha2-nistp256");
        put_string(&mut public, b"nistp256");
        put_string(&mut public, &point);
        let minimal: Vec<u8> = {
            let trimmed: Vec<u8> = d.iter().copied().skip_while(|b| *b == 0).collect();
            if trimmed[0] & 0x80 != 0 {
                [vec![0], trimmed].concat()
            } else {
                trimmed
            }
        };
        let mut section = Vec::new();
        section.extend_from_slice(&[1, 2, 3, 4, 1, 2, 3, 4]);
        put_string(&mut section, b"ecdsa-sha2-nistp256");
        put_string(&mut section, b"nistp256");
        put_string(&mut section, &point);
        put_string(&mut section, &minimal);
        put_string(&mut section, b"test@lab");
        let mut pad = 1u8;
        while section.len() % 8 != 0 {
            section.push(pad);
            pad += 1;
        }
        let mut blob = MAGIC.to_vec();
        put_string(&mut blob, b"none");
        put_string(&mut blob, b"none");
        put_string(&mut blob, b"");
        blob.extend_from_slice(&1u32.to_be_bytes());
        put_string(&mut blob, &public);
        put_string(&mut blob, &section);
        let text = format!("{BEGIN}\n{}\n{END}\n", STANDARD.encode(blob));
        (text, point)
    }

    #[test]
    fn an_ecdsa_key_whose_scalar_starts_with_a_zero_byte_is_usable() {
        let mut d = [0x5a_u8; 32];
        d[0] = 0;
        let (text, point) = openssh_p256(&d);
        // What russh makes of it as OpenSSH wrote it.
        assert!(russh::keys::decode_secret_key(&text, None).is_err());
        let widened = widen_ecdsa_scalar(&text).expect("rewritten");
        let key = russh::keys::decode_secret_key(&widened, None).expect("usable now");
        let public = key.public_key().to_openssh().unwrap();
        let (_, expected) = openssh_p256(&d);
        assert_eq!(point, expected);
        assert!(public.starts_with("ecdsa-sha2-nistp256 "), "{public}");
        // The same public key as OpenSSH's file names.
        let mut blob = Vec::new();
        put_string(&mut blob, b"ecdsa-sha2-nistp256");
        put_string(&mut blob, b"nistp256");
        put_string(&mut blob, &point);
        assert_eq!(public.split(' ').nth(1).unwrap(), STANDARD.encode(blob));
    }

    #[test]
    fn other_keys_are_left_alone() {
        let (full, _) = openssh_p256(&[0x5a; 32]);
        assert!(russh::keys::decode_secret_key(&full, None).is_ok());
        assert!(widen_ecdsa_scalar(&full).is_none(), "nothing to widen");
        assert!(widen_ecdsa_scalar("not a key").is_none());
        assert!(widen_ecdsa_scalar(&format!("{BEGIN}\n!!!\n{END}")).is_none());
        let truncated = &full[..full.len() / 2];
        assert!(widen_ecdsa_scalar(truncated).is_none());
    }
}
